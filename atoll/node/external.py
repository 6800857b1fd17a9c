"""``apiserver: external``: a master's controllers, scheduler profile and gateway against an
existing Kubernetes API server (Kuscia's "K8s controller mode", which Kuscia itself lacks).

The node runs no API server and no store: it joins the server of ``kubeconfig``, makes sure the
``cross-domain`` and own namespaces exist, and runs the same leader-elected controller manager as
an embedded master (:func:`atoll.node.control_plane.run_controllers`) plus, with a ``gateway:``
block, the gateway routing ``apiserver.master.svc`` to that server. Atoll's CRDs are installed
beforehand with ``atoll crds --kubeconfig FILE`` (or by this node at start with
``installCRDs: true``).

What the embedded server adds and this mode does not: admission of Kuscia objects (defaults and
validation beyond the CRDs' OpenAPI schemas), domain isolation of pod bindings, and signing of
agents' serving certificates (use the cluster's own kubelet-serving signer/approver). See
docs/kubernetes.md.

With ``metrics: {port: N}`` the node serves ``/metrics`` and ``/readyz`` (gated by its gateway's
``gateway`` check) on ``127.0.0.1:N``, as a lite does (:mod:`atoll.node.lite_metrics`).

While it runs, ``run/controller.identity`` in its data dir holds its Lease holderIdentity, so
``atoll status`` can tell whether this node leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from atoll.apiserver.http.health import HealthChecks
from atoll.client import Client
from atoll.client.errors import ConfigError as KubeconfigError
from atoll.node.config import ConfigError, NodeConfig
from atoll.node.control_plane import ensure_namespaces, install_crds, lease_identity, run_controllers
from atoll.node.lite_metrics import metrics_endpoint, metrics_port
from atoll.runtime.manager import Manager

log = logging.getLogger(__name__)


def identity_file(data_dir: Path) -> Path:
    """Where a running ``apiserver: external`` master keeps its Lease holderIdentity."""
    return data_dir / "run" / "controller.identity"


class ExternalMaster:
    def __init__(self, config: NodeConfig) -> None:
        if not config.kubeconfig:
            raise ConfigError("kubeconfig: required with apiserver: external")
        self.config = config
        self.ready = asyncio.Event()
        self.manager: Manager | None = None
        from atoll.node.gateway import prepare_gateway

        self.gateway_options = prepare_gateway(config, aliases=("master",))
        self.metrics_port = metrics_port(config.extra)
        self.health = HealthChecks()
        self.identity = lease_identity()

    def client(self) -> Client:
        try:
            return Client.from_kubeconfig(self.config.kubeconfig, user_agent="atoll-controller-manager")
        except KubeconfigError as exc:
            raise ConfigError(f"kubeconfig: {exc}") from None

    async def run(self) -> None:
        async with metrics_endpoint(self.metrics_port, self.config.domain_id, self.health):
            await self._run()

    async def _run(self) -> None:
        async with self.client() as client:
            if self.config.extra.get("installCRDs") is True:
                for line in await install_crds(client):
                    log.info("%s", line)
            await ensure_namespaces(client, self.config)
            async with asyncio.TaskGroup() as tg:
                gateway = self._gateway(client)
                if gateway is not None:
                    self.health.add(gateway.health_checks)  # gating, as on an embedded master
                    tg.create_task(gateway.run(), name="master/gateway")
                self.ready.set()
                log.info("master %s: controllers against %s", self.config.domain_id, client.server)
                marker = identity_file(self.config.data_dir)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(self.identity)
                try:
                    await run_controllers(client, self.config, on_manager=self._set_manager,
                                          identity=self.identity)
                finally:
                    with contextlib.suppress(OSError):
                        marker.unlink()

    def _set_manager(self, manager: Manager) -> None:
        self.manager = manager

    def _gateway(self, client: Client) -> Any:
        from atoll.gateway.model import LocalService
        from atoll.gateway.module import GatewayModule

        if self.gateway_options is None:
            return None
        url = urlsplit(client.server)
        host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
        api = LocalService("apiserver", self.config.domain_id, port, ((host, port),),
                           upstream_tls=url.scheme == "https")
        return GatewayModule(client, replace(self.gateway_options, static_services=(api,)))
