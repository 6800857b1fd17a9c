"""Fleet instances served in-process by the management master (the ``PlaneFactory`` of
:mod:`atoll.fleet.plane`).

Each instance is a whole Atoll control plane — API server, its own SQLite store, CA, serving
certificate and admin token under ``<data>/fleet/<instance>/`` — on the management process's
event loop, bound to 127.0.0.1, or to the ``fleet.instanceHost`` address (an address of the
management host that Pull agents can reach; the serving certificate covers it). Its port is
chosen once and kept in ``port`` so the instance's endpoint survives management restarts. At
start it installs the Karmada CRDs and the namespaces a Karmada control plane has
(``karmada-system``, ``karmada-cluster``). It runs no nodes, scheduler or Kuscia controllers: a
Karmada API server with no nodes.

In-process rather than a child process: an idle instance then costs its watch cache and store
(a few MB, measured by ``bench/bench_fleet.py``) instead of a second interpreter (~40-60 MB).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from atoll.api import errors
from atoll.api.crd import karmada_crds
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.auth.authn import ADMIN_USER
from atoll.apiserver.auth.bootstrap import default_cluster_role_bindings, default_cluster_roles
from atoll.apiserver.discovery.version import VERSION_INFO
from atoll.apiserver.http import codec
from atoll.apiserver.http.server import RouteHandler
from atoll.apiserver.registry.storage import WriteOptions
from atoll.apiserver.registry.strategies import CustomResourceStrategy
from atoll.apiserver.registry.subresources import ProxySubresource
from atoll.fleet.admission import ClusterRemovalGuard, InstanceDeletionGuard
from atoll.fleet.constants import KAIRSHIP_GROUP
from atoll.fleet.karmada.manager import KarmadaSettings
from atoll.fleet.karmada.validation import PolicyValidation
from atoll.fleet.manager import FleetManager, FleetSettings
from atoll.fleet.plane import Upstream
from atoll.node.crd_install import ensure_crds, ensure_created
from atoll.pki import PKI, ensure_pki, server_ssl_context
from atoll.store.endpoint import open_store

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "karmada-system", "karmada-cluster")
HOST = "127.0.0.1"
IDLE_POLL_SECONDS = 30.0
JSON = dict[str, Any]


def fleet_settings(extra: dict[str, Any]) -> tuple[FleetSettings, KarmadaSettings]:
    """From the node config's ``fleet:`` block: ``clusterStatusPeriod``, ``statisticsPeriod``,
    ``instanceStartTimeout``, ``clusterFailureThreshold`` and ``clusterMonitorGracePeriod`` (seconds);
    ``instanceHost`` is read by :func:`install_fleet`."""
    block = extra.get("fleet") or {}
    fleet = FleetSettings(
        kubernetes_version=str(VERSION_INFO.get("gitVersion") or "v1.29.0"),
        start_timeout=float(block.get("instanceStartTimeout") or 30.0),
        statistics_period=float(block.get("statisticsPeriod") or 10.0),
    )
    return fleet, KarmadaSettings(
        cluster_status_period=float(block.get("clusterStatusPeriod") or 10.0),
        failure_threshold=float(block.get("clusterFailureThreshold") or 30.0),
        monitor_grace=float(block.get("clusterMonitorGracePeriod") or 40.0),
    )


def install_fleet(server: APIServer, data_dir: Path, extra: dict[str, Any] | None = None) -> FleetManager:
    """A fleet manager for this management API server: instances under ``data_dir/fleet`` (each with
    Karmada's controllers), the ``instances/proxy`` subresource and the deletion guard on ``server``."""
    settings, karmada = fleet_settings(extra or {})
    host = str((extra or {}).get("fleet", {}).get("instanceHost") or HOST)
    fleet = FleetManager(functools.partial(InProcessPlane, host=host), data_dir / "fleet", settings, karmada=karmada)
    server.add_route(SEARCH_PATH, _search_handler(fleet))
    server.admission.add(InstanceDeletionGuard(fleet))
    server.strategies.register(
        KAIRSHIP_GROUP, "Instance", CustomResourceStrategy(subresources={"proxy": ProxySubresource(fleet.upstream)})
    )
    return fleet


SEARCH_PATH = "/apis/search.kairship.io/v1alpha1/resources"


def _search_handler(fleet: FleetManager) -> RouteHandler:
    """``GET /apis/search.kairship.io/v1alpha1/resources?…``: the read path (:mod:`atoll.fleet.search`)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.MethodNotAllowed(f"{request.method} is not supported on {SEARCH_PATH}")
        return codec.json_response(fleet.search.search(request.query))

    return serve


class InProcessPlane:
    def __init__(self, name: str, data_dir: Path, *, host: str = HOST) -> None:
        self.host = host
        self.name = name
        self.data_dir = data_dir
        self.pki: PKI | None = None
        self.server: APIServer | None = None
        self._upstream: Upstream | None = None

    def upstream(self) -> Upstream:
        """Built once (every proxied request asks: no SSL context per request)."""
        assert self.server is not None and self.pki is not None
        cached = self._upstream
        if (
            cached is not None
            and cached.url.endswith(f":{self.server.bound_port}")
            and cached.unix_socket == self.server.loopback_socket
        ):
            return cached
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        self._upstream = Upstream(
            f"https://{_url_host(self.host)}:{self.server.bound_port}",
            ctx,
            self.pki.admin_token.read_text().strip(),
            self.pki.ca_cert,
            self.server.loopback_socket,
        )
        return self._upstream

    async def run(self, ready: asyncio.Event) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        extra = () if self.host == HOST else (self.host,)
        pki = self.pki = await asyncio.to_thread(ensure_pki, self.data_dir / "pki", extra_hosts=extra)
        # only this process writes an instance's store and local writes wake its poller: poll rarely
        store = open_store(None, self.data_dir, poll_interval=IDLE_POLL_SECONDS)
        await store.start()
        try:
            server = self.server = APIServer(
                store,
                ServerConfig(
                    self.host,
                    _port(self.data_dir, self.host),
                    server_ssl_context(pki),
                    admin_token=pki.admin_token.read_text().strip(),
                    signing_key=pki.signing_key,
                    ca_file=pki.ca_cert,
                    # the instance's own controllers (same process) skip TLS and TCP
                    unix_socket=self.data_dir / "run" / "loopback" / "apiserver.sock",
                ),
            )
            server.admission.add(ClusterRemovalGuard(_Bindings(server)))
            server.admission.add(PolicyValidation(_Bindings(server)))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(server.run(), name=f"fleet/{self.name}/server")
                await server.wait_ready()
                _keep_port(self.data_dir, server.bound_port)
                await _bootstrap(server)
                ready.set()
        finally:
            await store.close()


class _Bindings:
    """The instance's member clusters and the bindings targeting one, read from its watch cache."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    def cluster_names(self) -> set[str]:
        return {str(c.obj["metadata"]["name"]) for c in self.server.cache.list("/cluster.karmada.io/clusters/")}

    def bindings_targeting(self, cluster: str) -> list[str]:
        found = []
        for prefix in ("/work.karmada.io/resourcebindings/", "/work.karmada.io/clusterresourcebindings/"):
            for cached in self.server.cache.list(prefix):
                obj = cached.obj
                if any(t.get("name") == cluster for t in (obj.get("spec") or {}).get("clusters") or ()):
                    md = obj["metadata"]
                    found.append(f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"])
        return sorted(found)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _port(data_dir: Path, host: str) -> int:
    """The port this instance used before, if it is still free; else 0 (any free port)."""
    with contextlib.suppress(OSError, ValueError):
        port = int((data_dir / "port").read_text())
        with socket.socket() as probe:  # as the server binds it (connections in TIME_WAIT do not count)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        return port
    return 0


def _keep_port(data_dir: Path, port: int) -> None:
    (data_dir / "port").write_text(str(port))


async def _bootstrap(server: APIServer) -> None:
    objects, registry = server.objects, server.registry
    opts = WriteOptions(user=ADMIN_USER)
    ns_rd = registry.get("", "v1", "namespaces")
    assert ns_rd is not None
    for name in NAMESPACES:
        await ensure_created(objects.create(ns_rd, None, {"metadata": {"name": name}}, opts))
    rbac = (("clusterroles", default_cluster_roles()), ("clusterrolebindings", default_cluster_role_bindings()))
    for plural, objs in rbac:
        rbac_rd = registry.get("rbac.authorization.k8s.io", "v1", plural)
        assert rbac_rd is not None
        for obj in objs:
            await ensure_created(objects.create(rbac_rd, None, obj, opts))
    await ensure_crds(objects, registry, karmada_crds(), opts)
