"""Endpoints controller: each Service with a selector gets Endpoints of the same name listing the
IPs of its pods — Ready ones under ``addresses``, the others under ``notReadyAddresses`` — with
the ports its ``targetPort``s resolve to (:mod:`.subsets`). A Service's deletion deletes its
Endpoints; Services without a selector are left to their users. Endpoints are only written when
they differ from what they should be.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api.kinds import ENDPOINTS, PODS, SERVICES
from atoll.controllers import ControllerContext
from atoll.controllers.endpoints.reconciler import EndpointsReconciler, service_selector
from atoll.controllers.endpoints.subsets import desired_subsets, selector_matches
from atoll.runtime import Cache, Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON, Gated, Mapper, key_of, namespace_of

NAME = "endpoints"


def setup(manager: Manager, ctx: ControllerContext) -> None:
    """Informers on Services, pods and Endpoints (all namespaces) feed one ``endpoints`` controller."""
    services = manager.informer(SERVICES)
    pods = manager.informer(PODS)
    endpoints = manager.informer(ENDPOINTS)
    reconciler = EndpointsReconciler(
        ctx.client, services=services.cache, pods=pods.cache, endpoints=endpoints.cache, name=NAME
    )
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(services)
    controller.watch(pods, services_of(services.cache), update_predicate=_listing_may_change)
    controller.watch(endpoints, _if_service_exists(services.cache))
    manager.add(controller)


def services_of(services: Cache) -> Mapper:
    """Map a pod to the Services of its namespace whose selector matches its labels (gated: a pod
    in a namespace without Services maps to none)."""

    def mapper(pod: JSON) -> Iterable[ObjectKey]:
        namespace = key_of(pod).namespace
        if not namespace:
            return ()
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return [key_of(s) for s in services.list(namespace) if selector_matches(service_selector(s), labels)]

    return Gated(mapper, lambda pod: services.any_in(namespace_of(pod)))


def _if_service_exists(services: Cache) -> Mapper:
    """Endpoints changed by someone else are repaired — only when their Service exists, so
    Endpoints created ahead of a Service are not deleted."""

    def mapper(endpoints: JSON) -> Iterable[ObjectKey]:
        key = key_of(endpoints)
        return (key,) if services.get_key(key) is not None else ()

    return mapper


def _listing_may_change(old: JSON, new: JSON) -> bool:
    """Pod updates that can change an Endpoints listing (not every status heartbeat)."""
    return _view(old) != _view(new)


def _view(pod: JSON) -> tuple[object, ...]:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return (
        meta.get("labels"),
        meta.get("deletionTimestamp"),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
        [c.get("ports") for c in spec.get("containers") or []],
        status.get("podIP"),
        status.get("phase"),
        ready,
    )


__all__ = ["NAME", "EndpointsReconciler", "desired_subsets", "setup"]
