"""Pods: defaults and initial status, graceful deletion, and the ``binding``, ``log``, ``eviction``,
``exec``, ``attach``, ``portforward`` and ``ephemeralcontainers`` subresources.

A pod bound to a node and not yet finished is deleted gracefully, as in Kubernetes: it stays
visible with ``deletionTimestamp`` until its node agent has stopped the containers and confirms
with a delete of grace 0. ``binding`` sets ``spec.nodeName`` once (the scheduler's write);
``log`` streams from the node agent (see ``atoll.apiserver.http.podlogs``); ``eviction`` deletes
the pod with the eviction's DeleteOptions unless a PodDisruptionBudget forbids it (see
:mod:`.eviction`); ``exec``, ``attach`` and ``portforward`` are WebSockets relayed to the node
(:mod:`.podexec`, :mod:`.podstreams`); ``ephemeralcontainers`` adds debug containers (:mod:`.ephemeral`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.api.builtin_validation import require_valid
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.registry import ResourceDef
from atoll.api.timestamps import format_time
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry.podlog import log_location
from atoll.apiserver.registry.strategies.base import KindStrategy
from atoll.apiserver.registry.strategies.ephemeral import EphemeralContainersSubresource, ephemeral_update
from atoll.apiserver.registry.strategies.eviction import BudgetedEviction
from atoll.apiserver.registry.strategies.podexec import ExecSubresource
from atoll.apiserver.registry.strategies.podstreams import AttachSubresource, PortForwardSubresource
from atoll.apiserver.registry.strategies.podupdate import check_pod_update
from atoll.apiserver.registry.subresources import (
    Reply,
    StatusReply,
    StreamReply,
    Subresource,
    SubresourceCall,
    method_not_allowed,
    require_body,
)
from atoll.apiserver.tables.columns import Printer
from atoll.apiserver.tables.pod_printer import POD

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]

CREATED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _container_defaults(container: JSON) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def qos_class(spec: JSON) -> str:
    requests_set, guaranteed = False, True
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {} if isinstance(container, dict) else {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        if limits or requests:
            requests_set = True
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits.get(res)) != limits.get(res):
                guaranteed = False
    if not requests_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass(frozen=True, slots=True)
class BindingSubresource:
    """``POST pods/NAME/binding``: set ``spec.nodeName`` once (409 if already bound elsewhere)."""

    clock: Clock = SYSTEM_CLOCK
    verbs: tuple[str, ...] = ("create",)
    response_kind: tuple[str, str, str] | None = ("", "v1", "Binding")
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        if call.method != "POST":
            raise method_not_allowed(call)
        require_valid(require_body(call), "", "v1", "Binding", call.name)
        node = str((require_body(call).get("target") or {}).get("name") or "")
        if not node:
            raise errors.invalid("Binding", "", call.name, [errors.cause("FieldValueRequired", "target.name",
                                                                         "Required value")])
        name, now = call.name, format_time(self.clock.now())

        def bind(current: JSON) -> JSON:
            spec = current.get("spec") or {}
            if spec.get("nodeName"):
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already '
                    f'assigned to node "{spec["nodeName"]}"',
                    details={"name": name, "kind": "pods"},
                )
            if current["metadata"].get("deletionTimestamp"):
                raise errors.Conflict(f"pod {name} is being deleted, cannot be assigned to a host")
            status = dict(current.get("status") or {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": now})
            return {**current, "spec": {**spec, "nodeName": node}, "status": {**status, "conditions": conditions}}

        await storage.modify(call.rd, call.namespace, name, bind, call.opts, subresource="binding")
        return StatusReply(CREATED, 201)


@dataclass(frozen=True, slots=True)
class LogSubresource:
    """``GET pods/NAME/log``: where the node agent serves the container's log."""

    cache: WatchCache
    verbs: tuple[str, ...] = ("get",)
    response_kind: tuple[str, str, str] | None = None
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        if call.method != "GET":
            raise method_not_allowed(call)
        assert call.namespace is not None
        url, path, params = log_location(self.cache, call.namespace, call.name, call.query)
        return StreamReply(url, path, params)


def pod_subresources(cache: WatchCache, clock: Clock) -> dict[str, Subresource]:
    return {
        "binding": BindingSubresource(clock),
        "log": LogSubresource(cache),
        "eviction": BudgetedEviction(cache),
        "exec": ExecSubresource(cache),
        "attach": AttachSubresource(cache),
        "portforward": PortForwardSubresource(cache),
        "ephemeralcontainers": EphemeralContainersSubresource(),
    }


def _spec_defaults(obj: JSON) -> JSON:
    """Fill a pod's spec defaults (mutates ``obj``); the spec."""
    spec: JSON = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for fld in ("containers", "initContainers"):
        for container in spec.get(fld) or []:
            if isinstance(container, dict):
                _container_defaults(container)
    return spec


@dataclass(frozen=True)
class PodStrategy(KindStrategy):
    printer: Printer | None = POD
    returns_deleted_object: bool = True
    subresources: dict[str, Subresource] = field(default_factory=dict)  # type: ignore[assignment]

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        spec = _spec_defaults(obj)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        """The spec defaults again (an update decoded without them means them, as upstream decodes)."""
        _spec_defaults(obj)

    def check_update(self, rd: ResourceDef, old: JSON, new: JSON) -> None:
        check_pod_update(str(old["metadata"].get("name", "")), old.get("spec") or {}, new.get("spec") or {})

    def subresource_update(self, subresource: str, old: JSON, wanted: JSON) -> JSON:
        if subresource == "binding":  # the binding subresource wrote spec.nodeName and PodScheduled
            return dict(old, spec=wanted["spec"], status=wanted["status"], metadata=dict(old["metadata"]))
        if subresource == "ephemeralcontainers":
            return ephemeral_update(old, wanted, _container_defaults)
        return KindStrategy.subresource_update(self, subresource, old, wanted)

    def deletion_grace(self, obj: JSON, options: JSON) -> int:
        """``DeleteOptions.gracePeriodSeconds`` or ``spec.terminationGracePeriodSeconds`` (default 30)
        for a pod on a node that has not finished; a second delete may shorten it, never lengthen it."""
        spec, status, md = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        raw = options.get("gracePeriodSeconds")
        if raw is None:
            raw = spec.get("terminationGracePeriodSeconds", 30)
        try:
            grace = max(int(raw), 0)
        except (TypeError, ValueError):
            raise errors.BadRequest(f"gracePeriodSeconds: must be an integer (got {raw!r})") from None
        current = md.get("deletionGracePeriodSeconds")
        if md.get("deletionTimestamp") and isinstance(current, int):
            grace = min(grace, current)
        return grace
