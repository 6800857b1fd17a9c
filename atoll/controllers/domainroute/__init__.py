"""Route controllers (Kuscia §2.2-2.3): ClusterDomainRoute → DomainRoutes + Ready; DomainRoute
token rolling and readiness. Timers use an injectable clock (``setup(..., clock=...)``)."""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.controllers import ControllerContext
from atoll.controllers.domainroute import cdr, dr
from atoll.gateway.drstatus import CLUSTERDOMAINROUTES, DOMAINROUTES, GATEWAYS
from atoll.runtime import Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON

NAME = "domainroute"


def setup(
    manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK, monitor_period: float = 5.0
) -> None:
    cdrs = manager.informer(CLUSTERDOMAINROUTES)
    domains = manager.informer(kinds.DOMAINS)
    routes = manager.informer(DOMAINROUTES)
    gateways = manager.informer(GATEWAYS)

    def cdr_of_route(obj: JSON) -> Iterable[ObjectKey]:
        return (ObjectKey(None, str(obj["metadata"]["name"])),)

    def cdrs_of_domain(obj: JSON) -> Iterable[ObjectKey]:
        name = obj["metadata"]["name"]
        return [ObjectKey(None, str(c["metadata"]["name"])) for c in cdrs.cache
                if name in ((c.get("spec") or {}).get("source"), (c.get("spec") or {}).get("destination"))]  # fmt: skip

    def cdrs_of_gateway(obj: JSON) -> Iterable[ObjectKey]:
        ns = obj["metadata"].get("namespace")
        return [ObjectKey(None, str(c["metadata"]["name"])) for c in cdrs.cache
                if (c.get("spec") or {}).get("source") == ns]  # fmt: skip

    def routes_of_gateway(obj: JSON) -> Iterable[ObjectKey]:
        ns = obj["metadata"].get("namespace")
        return [ObjectKey(ns, str(r["metadata"]["name"])) for r in routes.cache.list(ns)]

    cdr_reconciler = cdr.ClusterDomainRouteReconciler(
        ctx.client, cdr.Caches(cdrs.cache, domains.cache, routes.cache, gateways.cache), clock,
        monitor_period=monitor_period,
    )  # fmt: skip
    cdr_controller: Controller[ObjectKey] = Controller("clusterdomainroute", cdr_reconciler, workers=ctx.workers)
    cdr_controller.watch(cdrs)
    cdr_controller.watch(routes, cdr_of_route)
    cdr_controller.watch(domains, cdrs_of_domain)
    cdr_controller.watch(gateways, cdrs_of_gateway)
    manager.add(cdr_controller)

    dr_reconciler = dr.DomainRouteReconciler(ctx.client, dr.Caches(routes.cache, gateways.cache), clock,
                                             monitor_period=monitor_period)  # fmt: skip
    dr_controller: Controller[ObjectKey] = Controller(NAME, dr_reconciler, workers=ctx.workers)
    dr_controller.watch(routes)
    dr_controller.watch(gateways, routes_of_gateway)
    manager.add(dr_controller)
