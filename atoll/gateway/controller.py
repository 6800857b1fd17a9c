"""The gateway's reconciler: API objects → Envoy config, then who loaded which token.

One key (``gateway``) for everything: any change of a Service, Endpoints or DomainRoute of the
gateway's namespace rebuilds the whole model (it is small), publishes it over ADS and waits for
Envoy's ACK. Only after the ACK does the gateway add its instance name to the tokens'
``effectiveInstances`` (so "ready" really means "loaded by every live gateway"), and hand the
routes it initiates to the :class:`Initiator`. A NACK leaves Envoy on its last good config and
becomes a Warning Event on this gateway's Gateway object.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors, kinds
from atoll.api.clock import Clock
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.gateway import objects
from atoll.gateway.drstatus import base_status, mutate_status, spec, token_status, tokens
from atoll.gateway.envoy_resources import snapshot
from atoll.gateway.initiator import Initiator
from atoll.gateway.model import GatewayModel, LocalService
from atoll.gateway.xds import CLUSTER, LISTENER, ROUTE, AdsServer, ConfigRejected
from atoll.runtime import Cache, ObjectKey, Result

log = logging.getLogger(__name__)
JSON = dict[str, Any]
KEY = ObjectKey(None, "gateway")
APPLY_TIMEOUT = 10.0
LISTENER_RETRY = 5.0
"""Seconds before listeners Envoy could not bind are offered again."""


@dataclass(slots=True)
class Caches:
    services: Cache
    endpoints: Cache
    domainroutes: Cache


class GatewayReconciler:
    def __init__(
        self,
        client: Client,
        base: GatewayModel,
        caches: Caches,
        ads: AdsServer,
        key: rsa.RSAPrivateKey,
        initiator: Initiator,
        clock: Clock,
        *,
        master_domain: str,
        master_endpoint: tuple[str, int, bool] | None = None,
        static_services: tuple[LocalService, ...] = (),
    ) -> None:
        self.client, self.base, self.c, self.ads, self.key = client, base, caches, ads, key
        self.initiator, self.clock = initiator, clock
        self.master_domain, self.master_endpoint = master_domain, master_endpoint
        self.static_services = static_services
        self.applied = asyncio.Event()
        self.last_model: GatewayModel | None = None  # the model of the last config Envoy took
        self.rejected: ConfigRejected | None = None  # the last round's NACK (cleared by a full ACK)

    @property
    def first_applied(self) -> bool:
        """Envoy has ACKed a configuration of this reconciler (the readiness check's start)."""
        return self.applied.is_set()

    def model(self, routes: list[JSON]) -> GatewayModel:
        ns = self.base.domain
        services = self.c.services.list(ns)
        endpoints = {str(e["metadata"]["name"]): e for e in self.c.endpoints.list(ns)}
        peers = [
            p for dr in routes if spec(dr).get("source") == ns
            if (p := objects.peer_route(dr, self.key, self.master_domain, self.master_endpoint)) is not None
        ]  # fmt: skip
        inbound = [objects.inbound_route(dr, self.key) for dr in routes if spec(dr).get("destination") == ns]
        return replace(
            self.base,
            services=(*self.static_services, *objects.local_services(services, endpoints)),
            peers=tuple(peers),
            inbound=tuple(inbound),
            egress=tuple(objects.egress_ports(services)),
        )

    async def reconcile(self, key: ObjectKey) -> Result:
        # one view of the routes for the config and for what follows its ACK: a route that arrives
        # meanwhile waits for the next round instead of being negotiated before Envoy knows it
        routes = list(self.c.domainroutes.list(self.base.domain))
        model = self.model(routes)
        requeue = Result()
        try:
            if not self.ads.publish(snapshot(model)) and self.rejected is not None:
                self.ads.retry_rejected()
        except ValueError as exc:
            log.error("gateway config does not build: %s", exc)
            return Result()
        try:
            async with asyncio.timeout(APPLY_TIMEOUT):
                await self.ads.wait_applied()
            self.rejected = None
        except ConfigRejected as exc:
            await self._rejected(exc)
            if exc.type_url != LISTENER or not await self._routes_applied():
                return Result()
            # Envoy applies every listener it can (one port taken by someone else must not stall the
            # domain): tokens and upstreams live in CDS/RDS, so routes are live once those are ACKed;
            # the rejected listeners are offered again in a while
            requeue = Result(requeue_after=LISTENER_RETRY)
        except TimeoutError:
            log.info("envoy has not applied the config yet; retrying")
            return Result(requeue_after=1.0)
        self.applied.set()
        self.last_model = model
        await asyncio.gather(*(self._mark_effective(dr) for dr in routes))
        self.initiator.update([dr for dr in routes if spec(dr).get("source") == self.base.domain])
        return requeue

    async def _routes_applied(self) -> bool:
        try:
            async with asyncio.timeout(APPLY_TIMEOUT):
                await self.ads.wait_applied((CLUSTER, ROUTE))
        except (ConfigRejected, TimeoutError):
            return False
        return True

    async def _mark_effective(self, dr: JSON) -> None:
        own = self.base.domain
        count = 1 if spec(dr).get("source") == own else 2
        wanted = {t.get("revision") for t in tokens(dr)[-count:] if t.get("token")}
        if not wanted or all(self.base.instance in (t.get("effectiveInstances") or []) for t in tokens(dr)[-count:]):
            return
        instance = self.base.instance

        def add(current: JSON) -> JSON | None:
            listed = tokens(current)
            changed = False
            for token in listed:
                if token.get("revision") in wanted and instance not in (token.get("effectiveInstances") or []):
                    token["effectiveInstances"] = [*(token.get("effectiveInstances") or []), instance]
                    changed = True
            if not changed:
                return None
            status = base_status(current)
            status["tokenStatus"] = {**token_status(current), "tokens": listed}
            return status

        try:
            await mutate_status(self.client, own, str(dr["metadata"]["name"]), add)
        except errors.APIError as exc:
            log.warning("domainroute %s: recording effective instance: %s", dr["metadata"]["name"], exc)

    async def _rejected(self, exc: ConfigRejected) -> None:
        first = self.rejected is None or (self.rejected.type_url, self.rejected.message) != (exc.type_url, exc.message)
        self.rejected = exc
        if not first:
            return
        now = format_time(self.clock.now())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{self.base.instance}.", "namespace": self.base.domain},
            "involvedObject": {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Gateway",
                               "name": self.base.instance, "namespace": self.base.domain},
            "reason": "EnvoyConfigRejected",
            "message": f"{exc}; Envoy keeps serving its previous configuration",
            "type": "Warning",
            "source": {"component": "atoll-gateway"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }  # fmt: skip
        try:
            await self.client.create(kinds.EVENTS, event, self.base.domain)
        except errors.APIError as err:
            log.warning("could not record the rejected config as an event: %s", err)
