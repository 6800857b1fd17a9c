"""``pods/ephemeralcontainers`` (``kubectl debug -it POD --image=…``): GET, PUT and PATCH of the
pod through the subresource change only ``spec.ephemeralContainers``, as kube-apiserver's
``EphemeralContainersStrategy``.

Rules (upstream's): ephemeral containers can only be added — an existing one may not be changed
or removed; a new one needs a ``name`` (a DNS label unique among all the pod's containers) and an
``image``, and may not declare ``ports``, probes, ``lifecycle``, ``resources`` or a
``restartPolicy``. Defaults as for other containers. The node agent runs each new one once as an
extra process in the pod's sandbox and reports it in ``status.ephemeralContainerStatuses``
(:mod:`atoll.agent.runp.pod`); it is attachable like any container (:mod:`.podstreams`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.apiserver.registry.subresources import SAME_KIND, Reply, SubresourceCall, method_not_allowed

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]
FIELD = "spec.ephemeralContainers"
FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "restartPolicy")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class EphemeralContainersSubresource:
    verbs: tuple[str, ...] = ("get", "patch", "update")
    response_kind: tuple[str, str, str] | None = SAME_KIND
    generic_methods: frozenset[str] = frozenset({"GET", "PUT", "PATCH"})

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        raise method_not_allowed(call)


def _new_container_causes(index: int, c: Any, taken: set[str]) -> list[JSON]:
    path = f"{FIELD}[{index}]"
    if not isinstance(c, dict):
        return [errors.cause("FieldValueInvalid", path, "must be an object")]
    causes = []
    name = c.get("name")
    if not isinstance(name, str) or not name:
        causes.append(errors.cause("FieldValueRequired", f"{path}.name", "Required value"))
    elif not DNS_LABEL.match(name):
        causes.append(errors.cause("FieldValueInvalid", f"{path}.name",
                                   f'Invalid value: "{name}": must be a lowercase RFC 1123 label'))
    elif name in taken:
        causes.append(errors.cause("FieldValueDuplicate", f"{path}.name", f'Duplicate value: "{name}"'))
    if not c.get("image"):
        causes.append(errors.cause("FieldValueRequired", f"{path}.image", "Required value"))
    for key in FORBIDDEN:
        if c.get(key):
            causes.append(errors.cause("FieldValueForbidden", f"{path}.{key}",
                                       "Forbidden: cannot be set for an Ephemeral Container"))
    if any((c.get("resources") or {}).values()):
        causes.append(errors.cause("FieldValueForbidden", f"{path}.resources",
                                   "Forbidden: cannot be set for an Ephemeral Container"))
    return causes


def ephemeral_update(old: JSON, wanted: JSON, defaults: Callable[[JSON], None]) -> JSON:
    """The pod stored by a write through ``pods/ephemeralcontainers``: ``old`` with only
    ``spec.ephemeralContainers`` taken from ``wanted`` (422 naming the field when not allowed)."""
    spec = old.get("spec") or {}
    before = {c.get("name"): c for c in spec.get("ephemeralContainers") or []}
    after = (wanted.get("spec") or {}).get("ephemeralContainers") or []
    name = old["metadata"]["name"]
    if not isinstance(after, list):
        raise errors.invalid("Pod", "", name, [errors.cause("FieldValueInvalid", FIELD, "must be a list")])
    taken = {c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []}
    causes: list[JSON] = []
    seen: set[str] = set()
    for index, c in enumerate(after):
        cname = c.get("name") if isinstance(c, dict) else None
        if isinstance(cname, str) and cname in before and cname not in seen:
            seen.add(cname)
            if c != before[cname]:
                defaulted = dict(c)
                defaults(defaulted)
                if defaulted != before[cname]:
                    causes.append(errors.cause("FieldValueForbidden", f"{FIELD}[{index}]",
                                               f'Forbidden: existing ephemeral container "{cname}" may not be changed'))
            continue
        causes += _new_container_causes(index, c, taken | seen)
        if isinstance(cname, str):
            seen.add(cname)
    for gone in before.keys() - seen:
        causes.append(errors.cause("FieldValueForbidden", FIELD,
                                   f'Forbidden: existing ephemeral container "{gone}" may not be removed'))
    if causes:
        raise errors.invalid("Pod", "", name, causes)
    containers = []
    for c in after:
        if c["name"] not in before:
            c = dict(c)
            defaults(c)
        containers.append(before.get(c["name"], c))
    return {**old, "metadata": dict(old["metadata"]), "spec": {**spec, "ephemeralContainers": containers}}
