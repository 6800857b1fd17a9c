"""CustomResourceDefinitions: admission of CRDs, serving them at once, and schema admission of CRs.

Creating a CRD validates it, fills its status (NamesAccepted, Established, acceptedNames,
storedVersions) and — through a watch-cache listener that runs before the create returns —
registers its resources, so discovery and OpenAPI show them immediately, on every replica. The
resources of a CRD with a conversion webhook are given the API server's ``WebhookClients``, told
that the CRD's ``clientConfig`` is in use (its client is kept); the client of a ``clientConfig`` no
served CRD uses any more (changed, or its CRD deleted) is dropped.
Deleting a CRD removes all its custom resources first. Custom resources are pruned, defaulted and
validated against their version's structural schema, compiled once per CRD generation.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from atoll.api import errors, timestamps
from atoll.api.crd import crd_to_resource_defs, validate_crd
from atoll.api.registry import Registry, ResourceDef
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.apiextensions import webhook
from atoll.apiserver.apiextensions.schema import StructuralSchema
from atoll.apiserver.cache.watchcache import WatchEvent

log = logging.getLogger(__name__)

JSON = dict[str, Any]
CRD_GROUP = "apiextensions.k8s.io"
CRD_PREFIX = "/apiextensions.k8s.io/customresourcedefinitions/"


def crd_status(crd: JSON, old: JSON | None = None) -> JSON:
    """The status of an admitted CRD; ``storedVersions`` keeps those of ``old`` (the stored CRD):
    objects written at an earlier storage version stay stored at it until rewritten."""
    now = timestamps.now_time()
    spec = crd.get("spec") or {}
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    earlier = ((old or {}).get("status") or {}).get("storedVersions") or []
    storage = [v for v in earlier if isinstance(v, str) and v not in storage] + storage
    return {
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "acceptedNames": spec.get("names") or {},
        "storedVersions": storage,
    }


class CRDManager:
    """Keeps the registry in step with stored CRDs and admits CRDs and custom resources."""

    def __init__(self, registry: Registry, webhooks: webhook.WebhookClients) -> None:
        self._registry = registry
        self._webhooks = webhooks  # the clients of conversion webhooks, given to the CRDs' resources
        self._served: dict[str, list[ResourceDef]] = {}  # CRD name -> its resource defs
        self._schemas: dict[tuple[str, str, str], tuple[int, StructuralSchema]] = {}

    # ---- watch-cache listener ---------------------------------------------------------------

    def on_event(self, event: WatchEvent) -> None:
        crd = event.current.obj
        name = crd["metadata"]["name"]
        before = self._served.pop(name, [])
        for rd in before:
            self._registry.unregister(rd.group, rd.plural)
            self._schemas.pop((rd.group, rd.version, rd.plural), None)
        if event.type != "DELETED":
            self._serve(name, crd)
        if before and before[0].conversion_webhook is not None:
            self._release_webhook(before[0].conversion_webhook)

    def _serve(self, name: str, crd: JSON) -> None:
        try:
            rds = crd_to_resource_defs(crd)
        except Exception:
            log.exception("cannot serve CustomResourceDefinition %s", name)
            return
        rds = [replace(rd, webhook_clients=self._webhooks) if rd.conversion_webhook else rd for rd in rds]
        if rds and rds[0].conversion_webhook is not None:
            self._webhooks.use(rds[0].conversion_webhook)
        for rd in rds:
            self._registry.register(rd)
        self._served[name] = rds

    def _release_webhook(self, config: JSON) -> None:
        """Drop the client of a conversion webhook ``clientConfig`` that no served CRD uses any more."""
        key = webhook.client_key(config)
        for rds in self._served.values():
            if rds and rds[0].conversion_webhook is not None and webhook.client_key(rds[0].conversion_webhook) == key:
                return
        self._webhooks.drop(config)

    # ---- admission ----------------------------------------------------------------------------

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        """Admission acts on CRDs and custom resources only."""
        return (rd.group == CRD_GROUP and rd.kind == "CustomResourceDefinition") or not rd.builtin

    async def admit(self, attrs: Attributes) -> None:
        rd = attrs.rd
        if rd.group == CRD_GROUP and rd.kind == "CustomResourceDefinition":
            self._admit_crd(attrs)
        elif not rd.builtin and attrs.obj is not None and rd.schema is not None:
            self._admit_custom_resource(attrs)

    def _admit_crd(self, attrs: Attributes) -> None:
        crd = attrs.obj
        if crd is None:
            return
        if attrs.subresource == "status":
            self._check_stored_versions(attrs, crd)
            return
        causes = validate_crd(crd)
        if causes:
            raise errors.invalid("CustomResourceDefinition", CRD_GROUP, attrs.name, causes)
        spec = crd["spec"]
        group, plural = spec["group"], spec["names"]["plural"]
        for version in spec.get("versions") or []:
            existing = self._registry.get(group, version["name"], plural)
            if existing is not None and existing.builtin:
                raise errors.invalid(
                    "CustomResourceDefinition",
                    CRD_GROUP,
                    attrs.name,
                    [
                        errors.cause(
                            "FieldValueInvalid",
                            "spec.names.plural",
                            f'Invalid value: "{plural}": a built-in resource has this name',
                        )
                    ],
                )
        if attrs.operation == "CREATE" or attrs.old is None or attrs.old.get("spec") != crd.get("spec"):
            crd["status"] = crd_status(crd, attrs.old)
            self._check_stored_versions(attrs, crd)

    @staticmethod
    def _check_stored_versions(attrs: Attributes, crd: JSON) -> None:
        """As kube-apiserver: every version in ``status.storedVersions`` is still in ``spec.versions``
        (objects may be stored at it; drop it from the status once they are rewritten) and the storage
        version is among them."""
        spec = crd.get("spec") or {}
        names = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)]
        stored = (crd.get("status") or {}).get("storedVersions") or []
        causes = [
            errors.cause(
                "FieldValueInvalid",
                f"status.storedVersions[{i}]",
                f'Invalid value: "{v}": must appear in spec.versions',
            )
            for i, v in enumerate(stored)
            if v not in names
        ]
        storage = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("storage")]
        if not causes and storage and storage[0] not in stored:
            causes.append(
                errors.cause(
                    "FieldValueInvalid",
                    "status.storedVersions",
                    f"Invalid value: {stored}: must have the storage version {storage[0]}",
                )
            )
        if causes:
            raise errors.invalid("CustomResourceDefinition", CRD_GROUP, attrs.name, causes)

    def _schema(self, rd: ResourceDef) -> StructuralSchema:
        key = (rd.group, rd.version, rd.plural)
        marker = id(rd.schema)
        cached = self._schemas.get(key)
        if cached is None or cached[0] != marker:
            cached = self._schemas[key] = (marker, StructuralSchema(rd.schema or {}))
        return cached[1]

    def _admit_custom_resource(self, attrs: Attributes) -> None:
        obj = attrs.obj
        assert obj is not None
        rd = attrs.rd
        schema = self._schema(rd)
        unknown = schema.prune(obj)
        if unknown:
            if attrs.field_validation == "Strict":
                detail = ", ".join(f'unknown field "{f}"' for f in unknown)
                raise errors.BadRequest(f"strict decoding error: {detail}")
            if attrs.field_validation == "Warn":
                attrs.warnings.extend(f'unknown field "{f}"' for f in unknown)
        schema.default(obj)
        causes = schema.validate(obj)
        if causes:
            raise errors.invalid(rd.kind, rd.group, attrs.name, causes)
