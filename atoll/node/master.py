"""A master node: store + API server (+ controllers, scheduler and gateway as they arrive).

All modules run as tasks of one ``TaskGroup``; the first crash stops the node loudly. At start
the node creates its certificates, opens the store named by ``datastoreEndpoint``, serves the API
and installs (or upgrades) the Kuscia and Kubeocean (pooling) CRDs shipped with Atoll, plus the
``default``, ``kube-system``, ``kube-public``, ``kube-node-lease``, ``cross-domain`` and own-domain
namespaces. Unless ``controllers`` excludes ``pooling``, it also runs the pooling manager
(:mod:`atoll.pooling.manager`, leader-elected on its own Lease). With ``ATOLL_VERIFY_CACHE=1`` it
checks that no reader mutates the watch cache's shared objects (:mod:`atoll.apiserver.cache.verify`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atoll.api import errors
from atoll.api.crd import fleet_crds, kuscia_crds, pooling_crds
from atoll.api.storage import STORAGE_CLASSES, default_local_path_class
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.auth.authn import ADMIN_USER
from atoll.apiserver.auth.bootstrap import SYSTEM_NAMESPACES, default_cluster_role_bindings, default_cluster_roles
from atoll.apiserver.cache import gcpolicy, verify
from atoll.apiserver.registry.storage import WriteOptions
from atoll.client import Client
from atoll.files import private_dir
from atoll.node import issuer
from atoll.node.config import NodeConfig, domain_key, external_port
from atoll.node.control_plane import CONTROLLER_LEASE, run_controllers
from atoll.node.crd_install import ensure_crds, ensure_created
from atoll.node.master_endpoint import MasterEndpoint, tls_context
from atoll.node.node_restriction import LiteNodeRestriction
from atoll.node.pki import server_hosts
from atoll.node.registration_messages import REGISTER_PATH, b64, unb64
from atoll.node.registration_server import Registrar, registration_routes
from atoll.pki import PKI, ensure_pki, server_ssl_context
from atoll.pooling.manager import PoolingManager
from atoll.pooling.node import pooling_settings
from atoll.runtime.manager import Manager
from atoll.store.endpoint import open_store

log = logging.getLogger(__name__)
__all__ = ["CONTROLLER_LEASE", "MasterNode"]
JSON = dict[str, Any]


def endpoint_file(data_dir: Path) -> Path:
    return data_dir / "run" / "apiserver.url"


def loopback_socket(data_dir: Path) -> Path:
    """The API server's Unix socket for this node's own controllers (in a 0700 directory)."""
    return data_dir / "run" / "loopback" / "apiserver.sock"


class MasterNode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        private_dir(config.data_dir)  # state.db holds Secrets: nobody else may read the data dir
        self.pki: PKI = ensure_pki(config.data_dir / "pki", extra_hosts=server_hosts(config))
        self.server: APIServer | None = None
        self.ready = asyncio.Event()
        self.manager: Manager | None = None
        from atoll.node.gateway import prepare_gateway

        self.gateway_options = prepare_gateway(config, aliases=("master",))
        self.gateway: Any = None  # the GatewayModule when the config has a gateway: block
        self.gateway_routes: list[Any] = []  # aiohttp routes for the handshake server (contract C3)
        self.pooling: PoolingManager | None = None
        self.fleet: Any = None  # the FleetManager (Kairship instances) unless controllers exclude "fleet"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://{self.config.api_host}:{self.server.bound_port}"

    async def run(self) -> None:
        store = open_store(self.config.datastore_endpoint or None, self.config.data_dir)
        await store.start()
        try:
            self.server = APIServer(
                store,
                ServerConfig(
                    self.config.api_host,
                    self.config.api_port,
                    server_ssl_context(self.pki),
                    admin_token=self.pki.admin_token.read_text().strip(),
                    signing_key=self.pki.signing_key,
                    ca_file=self.pki.ca_cert,
                    kubelet_client_cert=(self.pki.kubelet_client_cert, self.pki.kubelet_client_key),
                    ca_key=self.pki.ca_key,
                    unix_socket=loopback_socket(self.config.data_dir),
                ),
            )
            self.server.admission.add(LiteNodeRestriction())
            # /readyz stays 503 until the bootstrap (namespaces, Kuscia CRDs) is done
            self.server.readiness_gates.append(self.ready)
            if self.config.controllers is None or "fleet" in self.config.controllers:
                from atoll.node.fleet import install_fleet

                self.fleet = install_fleet(self.server, self.config.data_dir, self.config.extra)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.server.run(), name="master/apiserver")
                await self.server.wait_ready()
                await self._bootstrap()
                path = endpoint_file(self.config.data_dir)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.url)
                endpoint = await self._start_endpoint()
                self.ready.set()
                log.info("master %s ready at %s", self.config.domain_id, self.url)
                tg.create_task(gcpolicy.run(), name="master/gc-policy")  # after the cache's initial load
                if verify.enabled():  # ATOLL_VERIFY_CACHE: the end-to-end tests' check of in-place mutations
                    tg.create_task(verify.run(self.server.cache), name="master/verify-cache")
                self._start_gateway(tg)
                if self._pooling_enabled():
                    tg.create_task(self._run_pooling(), name="master/pooling")
                if self.fleet is not None:
                    tg.create_task(self._run_fleet(), name="master/fleet")
                # in the body, not a sibling task: on shutdown the controllers stop (and release
                # their lease) while the API server is still serving
                try:
                    await self._run_controllers()
                finally:
                    if endpoint is not None:
                        await endpoint.stop()
        finally:
            await store.close()

    def registrar(self) -> Registrar:
        """``/register`` for lites (mounted by the gateway's handshake server, or our endpoint)."""
        return Registrar(self.client, self.pki, domain_key(self.config), self.url)

    async def _start_endpoint(self) -> MasterEndpoint | None:
        """With ``gateway.enabled: false`` (no Envoy on this machine) the master still serves
        ``/register`` itself on ``gateway.externalPort``; otherwise the gateway mounts it."""
        block = self.config.extra.get("gateway")
        if not isinstance(block, dict) or block.get("enabled", True) or not self.config.domain_key_data:
            return None
        tls = tls_context(self.pki) if self.config.protocol in ("TLS", "MTLS") else None
        endpoint = MasterEndpoint(self.registrar(), self.config.api_host, external_port(self.config), tls)
        await endpoint.start()
        return endpoint

    def _start_gateway(self, tg: asyncio.TaskGroup) -> None:
        """The master's gateway (when the config has a ``gateway:`` block): routes
        ``apiserver.master.svc`` to this API server and serves ``gateway_routes`` (C3), among them
        the lites' ``/register``."""
        from dataclasses import replace

        from atoll.gateway.model import LocalService
        from atoll.gateway.module import GatewayModule

        if self.gateway_options is None:
            return
        assert self.server is not None
        host = "127.0.0.1" if self.config.api_host in ("0.0.0.0", "") else self.config.api_host
        port = self.server.bound_port
        api = LocalService("apiserver", self.config.domain_id, port, ((host, port),), upstream_tls=True)
        options = replace(self.gateway_options, static_services=(api,))
        taken = {getattr(route, "path", "") for route in self.gateway_routes}  # a caller's own routes win
        if self.config.domain_key_data and REGISTER_PATH not in taken:
            self.gateway_routes = [*self.gateway_routes, *registration_routes(self.registrar())]
        client = self.client()
        self.gateway = GatewayModule(client, options, extra_routes=self.gateway_routes)
        # gating: a master whose gateway does not serve cannot route Kuscia traffic (docs/gateway.md);
        # the API server alone is ``/readyz?exclude=gateway``
        self.server.frontends.health.add(self.gateway.health_checks)
        tg.create_task(_closing(client, self.gateway.run()), name="master/gateway")

    def client(self) -> Client:
        """An admin client of this node's own API server: LIST, WATCH and GET in-process
        (``APIServer.local_reads``: no encoding, socket or decoding of what the watch cache holds;
        objects from lists and watches are the cache's, read-only) and writes in-process too
        (``APIServer.local_writes``: straight to the registry, admission on); server-side apply,
        other subresources and raw requests over the loopback Unix socket when it is bound (no
        TLS or TCP for the in-process controllers), else over HTTPS. Only this admin
        (``system:masters``) client may get the in-process reads and writes: they are not
        authorized."""
        token = self.pki.admin_token.read_text().strip()
        assert self.server is not None
        local, writes = self.server.local_reads, self.server.local_writes
        if self.server.loopback_socket is not None:
            return Client(
                "http://localhost",
                unix_socket=str(self.server.loopback_socket),
                token=token,
                user_agent="atoll-controller-manager",
                local=local,
                local_writes=writes,
            )
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        return Client(
            self.url,
            ssl_context=ctx,
            token=token,
            user_agent="atoll-controller-manager",
            local=local,
            local_writes=writes,
        )

    async def _run_controllers(self) -> None:
        """Controllers and the scheduler run only on the replica holding the lease. With
        ``controllers: []`` there is no manager and no lease: the node is a plain API server (the
        controllers may then run elsewhere, ``apiserver: external``)."""
        if self.config.controllers == ():
            log.info("controllers: none (no controller manager, the lease is left free)")
            return
        async with self.client() as client:
            await run_controllers(client, self.config, on_manager=lambda m: setattr(self, "manager", m),
                                  address=self.url.removeprefix("https://"))

    def _pooling_enabled(self) -> bool:
        wanted = self.config.controllers
        return wanted is None or "pooling" in wanted

    async def _run_pooling(self) -> None:
        """The Kubeocean manager (ClusterBindings, syncers, proxiers), leader-elected on its own Lease."""
        settings = pooling_settings(self.config.extra, self.pki.directory)
        async with self.client() as client:
            self.pooling = PoolingManager(client, settings)
            if self.server is not None:  # per-binding checks, informational (atoll.pooling.health)
                self.server.frontends.health.add(self.pooling.health_checks, gating=False)
            await self.pooling.run()

    async def _run_fleet(self) -> None:
        """Kairship: Instances on this master, each an isolated control plane (:mod:`atoll.node.fleet`)."""
        async with self.client() as client:
            await self.fleet.run(client)

    async def _bootstrap(self) -> None:
        """Namespaces and Kuscia CRDs every master serves (idempotent; safe with several replicas)."""
        assert self.server is not None
        objects, registry = self.server.objects, self.server.registry
        opts = WriteOptions(user=ADMIN_USER)
        ns_rd = registry.get("", "v1", "namespaces")
        assert ns_rd is not None
        for name in (*SYSTEM_NAMESPACES, self.config.domain_id):
            await ensure_created(objects.create(ns_rd, None, {"metadata": {"name": name}}, opts))
        for plural, objs in (
            ("clusterroles", default_cluster_roles()),
            ("clusterrolebindings", default_cluster_role_bindings()),
        ):
            rbac_rd = registry.get("rbac.authorization.k8s.io", "v1", plural)
            assert rbac_rd is not None
            for obj in objs:
                await _ensure_rbac_default(objects, rbac_rd, obj, opts)
        await ensure_crds(objects, registry, (*kuscia_crds(), *pooling_crds(), *fleet_crds()), opts)
        # the default local-path class, as K3s ships it: created when missing, never overwritten
        await ensure_created(objects.create(STORAGE_CLASSES, None, default_local_path_class(), opts))
        if self.config.domain_key_data:
            await self._ensure_own_domain(opts)

    async def _ensure_own_domain(self, opts: WriteOptions) -> None:
        """The master's own Domain with ``spec.cert`` (its domain key, certified by the CA): routes
        to the master (``<lite>-kuscia-system``) take the destination's public key from it."""
        assert self.server is not None
        rd = self.server.registry.get("kuscia.secretflow", "v1alpha1", "domains")
        assert rd is not None
        name, key = self.config.domain_id, domain_key(self.config)
        try:
            current = self.server.objects.get(rd, None, name).obj
        except errors.NotFound:
            cert = b64(issuer.domain_certificate(self.pki, name, key.public_key()))
            body = {"apiVersion": rd.api_version, "kind": "Domain", "metadata": {"name": name},
                    "spec": {"cert": cert, "role": "", "master": name}}
            await ensure_created(self.server.objects.create(rd, None, body, opts))
            return
        existing = str((current.get("spec") or {}).get("cert") or "")
        try:
            matches = bool(existing) and issuer.same_key(unb64(existing, "spec.cert"), key.public_key())
        except ValueError:
            matches = False
        if not matches:
            cert = b64(issuer.domain_certificate(self.pki, name, key.public_key()))
            await self.server.objects.modify(rd, None, name, _with_cert(cert), opts)


async def _closing(client: Client, run: Any) -> None:
    async with client:
        await run


def _with_cert(cert: str) -> Callable[[JSON], JSON]:
    return lambda current: {**current, "spec": {**(current.get("spec") or {}), "cert": cert}}


async def _ensure_rbac_default(objects: Any, rd: Any, obj: JSON, opts: WriteOptions) -> None:
    """Create a default role or binding, or bring its rules/subjects back to the defaults (kube-apiserver's
    bootstrap-roles reconciliation; opt out with the ``rbac.authorization.kubernetes.io/autoupdate: "false"``
    annotation)."""
    name = obj["metadata"]["name"]
    try:
        current = objects.get(rd, None, name).obj
    except errors.NotFound:
        await ensure_created(objects.create(rd, None, obj, opts))
        return
    annotations = current["metadata"].get("annotations") or {}
    if annotations.get("rbac.authorization.kubernetes.io/autoupdate") == "false":
        return
    fields = {k: obj[k] for k in ("rules", "roleRef", "subjects") if k in obj}
    if any(current.get(k) != v for k, v in fields.items()):
        await objects.modify(rd, None, name, lambda cur: {**cur, **fields}, opts)
