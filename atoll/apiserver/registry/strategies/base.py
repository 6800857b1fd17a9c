"""``KindStrategy``: what differs between kinds, in one object per kind (kube-apiserver's REST
strategies). The storage asks the strategy of a resource, never the kind's name.

A strategy answers: defaults on create and update (``defaults_on_create``/``defaults_on_update``,
run through ``prepare_*`` which turns a body of the wrong JSON types into a 422), which name rule
applies, what ``generation`` tracks, what a subresource update may change, how long a deletion
is graceful, what holds a marked object back from removal, what DELETE answers, its table printer
and its subresources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.registry import meta
from atoll.apiserver.registry.subresources import StatusSubresource, Subresource
from atoll.apiserver.tables.columns import Printer

JSON = dict[str, Any]

STATUS = StatusSubresource()


@dataclass(frozen=True)
class KindStrategy:
    """The default behaviour: no defaults, DNS-subdomain names, ``generation`` tracks everything
    but metadata (and status when it is a subresource), deletion at once."""

    printer: Printer | None = None
    """Columns and cells of ``kubectl get`` (None: a CRD's printer columns, else Name and Age)."""
    name_rule: str = "subdomain"
    """``subdomain`` (DNS-1123), ``label`` (DNS-1123 label: Namespace, Service) or ``path`` (RBAC)."""
    returns_deleted_object: bool = False
    """DELETE answers the object (Pods, Services, custom resources) instead of a ``Status``."""
    subresources: Mapping[str, Subresource] = field(default_factory=dict)
    """Handlers of the kind's subresources; ``status`` is served for every kind that has one."""
    tracks_generation: bool = True
    """``metadata.generation`` is set and bumped (False for kinds upstream keeps without one:
    ConfigMaps, Secrets, Pods, Namespaces, Services, Nodes, RBAC, …)."""

    def subresource(self, name: str) -> Subresource | None:
        return self.subresources.get(name) or (STATUS if name == "status" else None)

    # ---- defaults ----------------------------------------------------------------------------

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        """Fill defaults and the initial status of a new object (mutates ``obj``)."""

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        """Normalise an updated object (mutates ``obj``)."""

    def prepare_create(self, rd: ResourceDef, obj: JSON) -> None:
        _run_hook(rd, self.defaults_on_create, obj)

    def prepare_update(self, rd: ResourceDef, obj: JSON) -> None:
        _run_hook(rd, self.defaults_on_update, obj)

    def check_update(self, rd: ResourceDef, old: JSON, new: JSON) -> None:
        """Refuse (422) an update that changes what the kind fixes at creation (after defaults)."""

    # ---- validation --------------------------------------------------------------------------

    def name_problems(self, name: str) -> list[str]:
        return meta.name_problems(name, self.name_rule)

    # ---- updates -----------------------------------------------------------------------------

    def generation_part(self, rd: ResourceDef, obj: JSON) -> JSON:
        """What ``generation`` tracks: everything but metadata (and status when it is a subresource)."""
        return {
            k: v
            for k, v in obj.items()
            if k not in ("metadata", "apiVersion", "kind") and not (k == "status" and rd.has_status)
        }

    def subresource_update(self, subresource: str, old: JSON, wanted: JSON) -> JSON:
        """The object stored by a write through ``subresource``: a status update changes only
        ``status``; other subresources are refused unless the kind's strategy says otherwise."""
        if subresource != "status":
            raise errors.MethodNotAllowed(f"updates through the {subresource} subresource are not supported")
        new = dict(old)
        new["status"] = wanted.get("status")
        if new["status"] is None:
            new.pop("status")
        new["metadata"] = dict(old["metadata"])
        return new

    # ---- deletion ----------------------------------------------------------------------------

    def deletion_grace(self, obj: JSON, options: JSON) -> int:
        """Seconds an object stays visible (with ``deletionTimestamp``) before removal; 0 = at once."""
        return 0

    def deletion_held(self, obj: JSON) -> bool:
        """True while something other than ``metadata.finalizers`` keeps a marked object."""
        return False

    def mark_deleting(self, obj: JSON) -> None:
        """Adjust an object being marked for deletion (mutates ``obj``)."""


@dataclass(frozen=True)
class CustomResourceStrategy(KindStrategy):
    """Custom resources: status only through ``/status`` when that subresource is enabled;
    DELETE answers the object."""

    returns_deleted_object: bool = True

    def prepare_create(self, rd: ResourceDef, obj: JSON) -> None:
        if rd.has_status:
            obj.pop("status", None)

    def prepare_update(self, rd: ResourceDef, obj: JSON) -> None:
        """Nothing: the CRD's structural schema (admission) checks custom resources."""


def _run_hook(rd: ResourceDef, hook: Any, obj: JSON) -> None:
    """Run a defaulting hook; a body whose fields have the wrong JSON types is a 422, not a crash."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    for fld in ("spec", "status"):
        if obj.get(fld) is not None and not isinstance(obj[fld], dict):
            raise errors.invalid(rd.kind, rd.group, name, [errors.cause(
                "FieldValueTypeInvalid", fld, f"Invalid value: {type(obj[fld]).__name__}: must be an object")])
    try:
        hook(rd, obj)
    except (AttributeError, TypeError, ValueError) as exc:
        raise errors.invalid(rd.kind, rd.group, name, [errors.cause(
            "FieldValueTypeInvalid", "", f"Invalid value: a field has the wrong type ({exc})")]) from None
