"""``GatewayModule``: one node's gateway — Envoy, its ADS control plane, the handshake server,
the route reconciler, the handshake initiator and the Gateway heartbeat — in one TaskGroup.

The node (master, lite, autonomy) builds a :class:`GatewayOptions` from its config and runs
``GatewayModule(client, options, extra_routes=...).run()`` as one of its tasks. ``extra_routes``
are aiohttp routes the node adds to the handshake server (contract C3: ``/register`` ...).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.client import Client
from atoll.gateway import crypto, instance
from atoll.gateway.controller import KEY, Caches, GatewayReconciler
from atoll.gateway.drstatus import DOMAINROUTES
from atoll.gateway.envoy_resources import bootstrap
from atoll.gateway.handshake import HandshakeServer
from atoll.gateway.initiator import HEARTBEAT_PERIOD, Initiator
from atoll.gateway.model import GatewayModel, ListenerOptions, LocalService
from atoll.gateway.readiness import CHECK, gateway_problem
from atoll.gateway.stats import ENVOY_STATS
from atoll.gateway.supervisor import EnvoySupervisor, SupervisorOptions
from atoll.gateway.xds import AdsServer
from atoll.runtime import Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON

log = logging.getLogger(__name__)


@dataclass(slots=True)
class GatewayOptions:
    domain: str
    domain_key: rsa.RSAPrivateKey
    run_dir: Path
    listeners: ListenerOptions = field(default_factory=ListenerOptions)
    instance: str = field(default_factory=socket.gethostname)
    address: str = "127.0.0.1"
    master_domain: str = "kuscia-system"
    master_endpoint: tuple[str, int, bool] | None = None  # lite: where the master's gateway is
    static_services: tuple[LocalService, ...] = ()  # master: apiserver.master.svc → the API server
    domain_aliases: tuple[str, ...] = ()  # master: ("master",)
    envoy_binary: str | None = None
    envoy_concurrency: int = 1
    heartbeat_period: float = HEARTBEAT_PERIOD
    handshake_ready_wait: float = 30.0  # how long a handshake waits for every live gateway to load the token


def _hop(_: JSON) -> list[ObjectKey]:
    """Every watched object maps to the gateway's one key: the whole model is rebuilt."""
    return [KEY]


class GatewayModule:
    def __init__(
        self,
        client: Client,
        options: GatewayOptions,
        *,
        extra_routes: Sequence[web.RouteDef] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.client, self.options, self.clock = client, options, clock
        self.supervisor = EnvoySupervisor(
            SupervisorOptions(options.run_dir, options.envoy_binary, options.envoy_concurrency), self._bootstrap
        )
        self.ads = AdsServer()
        self.handshake = HandshakeServer(
            client, options.domain, options.domain_key, clock, extra_routes=extra_routes,
            ready_wait=options.handshake_ready_wait,
        )  # fmt: skip
        self.public_key = crypto.public_key_b64(options.domain_key.public_key())
        self.reconciler: GatewayReconciler | None = None
        self.ready = asyncio.Event()

    def health_checks(self) -> list[tuple[str, str | None]]:
        """The node's ``gateway`` readiness check (:mod:`atoll.gateway.readiness`)."""
        return [(CHECK, gateway_problem(self.supervisor, self.reconciler, self.ads.current_rejection()))]

    def _nacked(self, controller: Controller[ObjectKey]) -> None:
        """A NACK the reconciler does not know of (a restarted Envoy whose port is now taken NACKs
        the snapshot it is re-sent): a round records it and offers the listener again every 5 s."""
        if self.reconciler is not None and self.reconciler.rejected is None:
            controller.queue.add(KEY)

    def _bootstrap(self) -> dict[str, object]:
        return bootstrap(f"{self.options.domain}/{self.options.instance}", self.options.domain, self.ads.port)

    def _internal_url(self) -> str:
        lo = self.options.listeners
        return f"http://{lo.internal_host if lo.internal_host != '0.0.0.0' else '127.0.0.1'}:{lo.internal_port}"

    async def _network_status(self) -> list[dict[str, object]]:
        model = self.reconciler.last_model if self.reconciler is not None else None
        if model is None or not model.peers:
            return []
        stats = await self.supervisor.admin_get("/stats?filter=^cluster%5C.to-")
        return instance.network_status(stats, self.options.domain, model.peers)

    async def run(self) -> None:
        opts = self.options
        await self.ads.start()
        hs_port = await self.handshake.start()
        try:
            base = GatewayModel(opts.domain, opts.instance, hs_port, opts.listeners, domain_aliases=opts.domain_aliases)
            manager = Manager(self.client)
            informers = {
                "services": manager.informer(kinds.SERVICES, opts.domain),
                "endpoints": manager.informer(kinds.ENDPOINTS, opts.domain),
                "domainroutes": manager.informer(DOMAINROUTES, opts.domain),
            }
            initiator = Initiator(
                self.client, opts.domain, opts.instance, opts.domain_key, self.clock, self._internal_url,
                heartbeat_period=opts.heartbeat_period,
            )  # fmt: skip
            self.reconciler = GatewayReconciler(
                self.client, base, Caches(**{k: i.cache for k, i in informers.items()}), self.ads, opts.domain_key,
                initiator, self.clock, master_domain=opts.master_domain, master_endpoint=opts.master_endpoint,
                static_services=opts.static_services,
            )  # fmt: skip
            controller: Controller[ObjectKey] = Controller(f"gateway-{opts.domain}", self.reconciler)
            for informer in informers.values():
                controller.watch(informer, _hop)
            controller.queue.add(KEY)  # render once even when the namespace holds nothing yet
            self.ads.on_nack = lambda _: self._nacked(controller)
            manager.add(controller)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.supervisor.run(), name=f"gateway/{opts.domain}/envoy")
                tg.create_task(manager.run(), name=f"gateway/{opts.domain}/routes")
                tg.create_task(initiator.run(), name=f"gateway/{opts.domain}/initiator")
                tg.create_task(
                    ENVOY_STATS.poll(opts.domain, self.supervisor.admin_get), name=f"gateway/{opts.domain}/stats"
                )
                tg.create_task(
                    instance.heartbeat(
                        self.client, opts.domain, opts.instance, self.clock, address=opts.address,
                        public_key=self.public_key, version=f"atoll/envoy-{self.supervisor.version}",
                        period=opts.heartbeat_period, network=self._network_status,
                    ),
                    name=f"gateway/{opts.domain}/heartbeat",
                )  # fmt: skip
                await self.reconciler.applied.wait()
                self.ready.set()
                log.info("gateway %s/%s ready (external :%d, internal :%d)", opts.domain, opts.instance,
                         opts.listeners.external_port, opts.listeners.internal_port)  # fmt: skip
        finally:
            await self.handshake.stop()
            await self.ads.stop()
