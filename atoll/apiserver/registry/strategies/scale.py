"""The ``scale`` subresource of Deployments and ReplicaSets (``kubectl scale``): an
``autoscaling/v1`` ``Scale`` read from and written to the object's ``spec.replicas``.

GET answers the Scale; PUT sets ``spec.replicas`` (with the Scale's ``resourceVersion`` as a
precondition when given); PATCH applies a merge patch to the Scale (what ``kubectl scale`` sends;
for a Scale, merge and strategic patches are the same) and stores its replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.api.selectors import label_selector_from_spec, selector_from_labels
from atoll.apiserver.patch.merge import merge_patch
from atoll.apiserver.registry.subresources import Reply, StatusReply, SubresourceCall, method_not_allowed, require_body

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]


def to_scale(obj: JSON) -> JSON:
    """The ``autoscaling/v1`` Scale of a workload object."""
    md, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    raw = spec.get("selector")
    try:
        if isinstance(raw, dict) and raw and not {"matchLabels", "matchExpressions"} & set(raw):
            selector = str(selector_from_labels(raw))  # a ReplicationController's plain map
        else:
            selector = str(label_selector_from_spec(raw))
    except errors.BadRequest:
        selector = ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in md},
        "spec": {"replicas": int(spec.get("replicas") or 0)},
        "status": {"replicas": int(status.get("replicas") or 0), "selector": selector},
    }


def _replicas(rd_kind: str, name: str, scale: JSON) -> int:
    value = (scale.get("spec") or {}).get("replicas", 0) if isinstance(scale.get("spec") or {}, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.invalid("Scale", "autoscaling", name, [errors.cause(
            "FieldValueInvalid", "spec.replicas", f"Invalid value: {value!r}: must be greater than or equal to 0")])
    return value


@dataclass(frozen=True, slots=True)
class ScaleSubresource:
    verbs: tuple[str, ...] = ("get", "patch", "update")
    response_kind: tuple[str, str, str] | None = ("autoscaling", "v1", "Scale")
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        if call.method == "GET":
            return StatusReply(to_scale((await storage.current(call.rd, call.namespace, call.name)).obj))
        if call.method not in ("PUT", "PATCH"):
            raise method_not_allowed(call)
        body = require_body(call)
        pinned = str((body.get("metadata") or {}).get("resourceVersion") or "") if call.method == "PUT" else ""

        def mutate(current: JSON) -> JSON:
            if pinned and pinned != current["metadata"]["resourceVersion"]:
                raise errors.conflict(call.rd.plural, call.rd.group, call.name)
            wanted = body if call.method == "PUT" else merge_patch(to_scale(current), body)
            if not isinstance(wanted, dict):
                raise errors.BadRequest("the patch did not produce a Scale object")
            replicas = _replicas(call.rd.kind, call.name, wanted)
            return {**current, "spec": {**(current.get("spec") or {}), "replicas": replicas}}

        obj = await storage.modify(call.rd, call.namespace, call.name, mutate, call.opts, subresource="scale",
                                   pinned=bool(pinned))
        return StatusReply(to_scale(obj))


SCALE = ScaleSubresource()
