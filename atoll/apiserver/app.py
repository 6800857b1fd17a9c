"""The API server, wired: registry, watch cache, admission, storage, auth and the HTTP handler.

``APIServer`` builds the parts and owns their life cycle: ``run()`` starts the watch cache, then
the periodic compaction and the listeners (HTTPS, and the loopback Unix socket when configured),
and serves until cancelled; then it stops the listeners and closes its outgoing clients (the
proxy to node agents, the conversion webhooks'). What each part does lives in its sub-package (see
``docs/architecture.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from atoll.api.builtins import BUILTINS
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.registry import Registry
from atoll.apiserver.admission.builtin_schema import BuiltinSchemaAdmission
from atoll.apiserver.admission.chain import AdmissionChain, NamespaceLifecycle
from atoll.apiserver.admission.csr import CSRAdmission, signer_from
from atoll.apiserver.admission.domain_isolation import DomainIsolation
from atoll.apiserver.admission.kuscia import KusciaAdmission
from atoll.apiserver.admission.limits import ObjectLimits
from atoll.apiserver.admission.noderestriction import NodeRestriction
from atoll.apiserver.admission.quota import QuotaAdmission
from atoll.apiserver.admission.rbac_escalation import RBACEscalation
from atoll.apiserver.admission.storage import StorageAdmission
from atoll.apiserver.admission.workloads import DomainPlacement, PriorityAdmission
from atoll.apiserver.apiextensions.crds import CRD_PREFIX, CRDManager
from atoll.apiserver.apiextensions.webhook import WebhookClients
from atoll.apiserver.auth.authn import (
    ADMIN_USER,
    AuthenticatorChain,
    ClientCertAuthenticator,
    StaticTokenAuthenticator,
)
from atoll.apiserver.auth.nodegrants import NodeGrants
from atoll.apiserver.auth.rbac import RBACAuthorizer
from atoll.apiserver.auth.reviews import VIRTUAL, Reviews
from atoll.apiserver.auth.tokens import TokenIssuer
from atoll.apiserver.cache.trim import trim_periodically
from atoll.apiserver.cache.watchcache import CacheSettings, WatchCache
from atoll.apiserver.discovery.groups import Discovery
from atoll.apiserver.discovery.openapi import OpenAPI
from atoll.apiserver.http.gate import start_gated_tcp
from atoll.apiserver.http.gate import stop as stop_listener
from atoll.apiserver.http.limits import ConnectionLimits
from atoll.apiserver.http.listeners import start_loopback
from atoll.apiserver.http.local import InProcessReads
from atoll.apiserver.http.localwrites import InProcessWrites
from atoll.apiserver.http.podlogs import PodLogs
from atoll.apiserver.http.protocol import StatusServer
from atoll.apiserver.http.resources import ResourceHandlers
from atoll.apiserver.http.server import Frontends, RequestHandler, RouteHandler
from atoll.apiserver.http.watch import WatchStreamSettings
from atoll.apiserver.registry.storage import ResourceStorage
from atoll.apiserver.registry.strategies import builtin_strategies
from atoll.store.base import Store
from atoll.store.compactor import CompactionSettings, Compactor

log = logging.getLogger(__name__)

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Tuning of the server's parts (each documents its own defaults)."""

    cache: CacheSettings = field(default_factory=CacheSettings)
    watch: WatchStreamSettings = field(default_factory=WatchStreamSettings)
    compaction: CompactionSettings = field(default_factory=CompactionSettings)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6443
    ssl_context: ssl.SSLContext | None = None
    admin_token: str | None = None  # None: no authentication at all (in-process tests only)
    signing_key: Path | None = None  # ServiceAccount token signing key
    ca_file: Path | None = None  # cluster CA: verifies node agents (pod logs)
    kubelet_client_cert: tuple[Path, Path] | None = None  # (cert, key) presented to node agents
    ca_key: Path | None = None  # with ca_file: signs approved kubelet-serving CSRs (None: never signed)
    # loopback listener for in-process clients (the controller manager): plain HTTP on a Unix
    # socket in a 0700 directory, like kube-apiserver's loopback client; authentication unchanged
    unix_socket: Path | None = None
    settings: ServerSettings = field(default_factory=ServerSettings)
    clock: Clock = SYSTEM_CLOCK  # timestamps, token expiry, watch bookmarks and deadlines, compaction


class APIServer:
    """Composes registry, cache, storage, admission, auth and HTTP; ``run()`` serves until cancelled."""

    def __init__(self, store: Store, config: ServerConfig) -> None:
        self.store = store
        self.config = config
        self.registry = Registry()
        for rd in (*BUILTINS, *VIRTUAL):
            self.registry.register(rd)
        self.cache = WatchCache(store, config.settings.cache)
        self.compactor = Compactor(
            store, config.settings.compaction, clock=config.clock, on_compacted=self.cache.compacted
        )
        self.authorizer = RBACAuthorizer(self.cache)
        self.node_grants = NodeGrants(self.cache)
        self.authorizer.add_fallback(self.node_grants)
        self.authn, self.reviews = self._authentication(config)
        self.webhooks = WebhookClients()
        """The clients of CRDs' conversion webhooks (kept connections), closed when ``run`` ends."""
        self.crds = CRDManager(self.registry, self.webhooks)
        self.cache.add_listener(CRD_PREFIX, self.crds.on_event)
        self.admission = AdmissionChain()
        self.admission.add(ObjectLimits())
        self.admission.add(BuiltinSchemaAdmission(BUILTINS))  # their schemas compiled now
        self.admission.add(NamespaceLifecycle(self._namespace))
        self.admission.add(self.crds)
        self.admission.add(KusciaAdmission())
        self.admission.add(DomainPlacement(self._namespace))  # before isolation: it pins the domain's nodes
        self.admission.add(DomainIsolation(self.cache))
        self.admission.add(NodeRestriction(self.node_grants, self.cache))
        self.admission.add(RBACEscalation(self.authorizer, self.cache))
        self.admission.add(PriorityAdmission(self.cache))
        self.admission.add(StorageAdmission(self.cache))
        self.admission.add(QuotaAdmission(self.cache))
        self.admission.add(CSRAdmission(self.node_grants, self.cache, signer_from(config.ca_file, config.ca_key)))
        self.strategies = builtin_strategies(self.cache, reviews=self.reviews, clock=config.clock)
        self.objects = ResourceStorage(store, self.cache, self.admission, self.strategies, clock=config.clock)
        logs = PodLogs(config.ca_file, config.kubelet_client_cert)
        self.resources = ResourceHandlers(
            self.objects, logs, self.strategies, watch=config.settings.watch, clock=config.clock
        )
        self.local_reads = InProcessReads(self.resources, self.registry)
        """LIST/WATCH/GET without HTTP, for this process's own admin client only (``atoll.client.local``)."""
        self.local_writes = InProcessWrites(self.resources, self.local_reads)
        """Creates, updates, patches and deletes without HTTP, for the same client only."""
        self.frontends = Frontends(
            registry=self.registry,
            discovery=Discovery(self.registry, self.strategies),
            openapi=OpenAPI(self.registry),
            resources=self.resources,
            authorizer=self.authorizer,
            authn=self.authn,
            reviews=self.reviews,
            ready=self._is_ready,
            server_address=lambda: f"{self.config.host}:{self.bound_port}",
        )
        self.handler = RequestHandler(self.frontends, config.settings.limits)
        self.bound_port = 0
        self.loopback_socket: Path | None = None  # set once the Unix-socket listener is bound
        self._ready = asyncio.Event()
        # post-start work (e.g. the master's CRD and namespace bootstrap) that /readyz and /healthz
        # wait for, like kube-apiserver's poststarthooks; /livez only needs the listener
        self.readiness_gates: list[asyncio.Event] = []

    def _authentication(self, config: ServerConfig) -> tuple[AuthenticatorChain | None, Reviews | None]:
        if config.admin_token is None:
            return None, None
        authenticators: list[Any] = [StaticTokenAuthenticator({config.admin_token: ADMIN_USER})]
        reviews = None
        if config.signing_key is not None:
            issuer = TokenIssuer(config.signing_key, self.cache, clock=config.clock)
            authenticators.append(issuer)
            reviews = Reviews(self.authorizer, issuer, self.cache)
        authenticators.append(ClientCertAuthenticator())
        return AuthenticatorChain(authenticators), reviews

    def _namespace(self, name: str) -> JSON | None:
        cached = self.cache.get(f"/core/namespaces/{name}")
        return cached.obj if cached else None

    def _is_ready(self, live_only: bool) -> bool:
        return self._ready.is_set() and (live_only or all(g.is_set() for g in self.readiness_gates))

    def add_route(self, prefix: str, handler: RouteHandler) -> None:
        """Serve every request under ``prefix`` (a non-resource API) with ``handler``, after
        authentication and an RBAC check of the path (``nonResourceURLs``)."""
        self.frontends.routes[prefix.rstrip("/")] = handler

    def make_server(self) -> web.Server:
        return self.handler.make_server()

    # ---- life cycle ------------------------------------------------------------------------

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until cancelled: watch cache first, then the HTTP listeners."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.cache.run(), name="apiserver/watch-cache")
            await self.cache.wait_ready()
            tg.create_task(self.compactor.run(), name="apiserver/compactor")
            tg.create_task(trim_periodically(), name="apiserver/malloc-trim")
            runner = web.ServerRunner(self.make_server(), shutdown_timeout=1.0)
            await runner.setup()
            config = self.config
            assert isinstance(runner.server, StatusServer)
            listener, self.bound_port = await start_gated_tcp(runner.server, config.host, config.port,
                                                              config.ssl_context)
            if config.unix_socket is not None:
                self.loopback_socket = await start_loopback(runner, config.unix_socket)
            self._ready.set()
            log.info("API server listening on https://%s:%d", config.host, self.bound_port)
            if on_ready is not None:
                on_ready()
            try:
                await asyncio.Event().wait()
            finally:
                await self.local_writes.close()
                await stop_listener(listener)
                await runner.cleanup()
                await self.resources.relay.close()
                await self.webhooks.close()
                if self.loopback_socket is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(self.loopback_socket)

    async def wait_ready(self) -> None:
        await self._ready.wait()
