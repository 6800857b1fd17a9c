"""The proxier: the kubelet log and exec endpoints of a binding's virtual nodes.

The computing cluster's API server reaches a node's "kubelet" at ``InternalIP:daemonEndpoints
.kubeletEndpoint.Port`` with the same contract Atoll's agents serve (``atoll/apiserver/http/
podlogs.py``): HTTPS ``GET /containerLogs/{namespace}/{pod}/{container}`` with ``follow``,
``tailLines``, ``previous``, ``sinceSeconds``, ``sinceTime``, ``timestamps`` and ``limitBytes``,
authenticated by a client certificate of the API server (CN ``atoll-apiserver`` or group
``system:masters``) signed by the cluster CA, which also signs our serving certificate. The vnodes
of a binding publish this listener's address and port; logs are read from the worker cluster's
``pods/log`` of the mapped physical pod (:mod:`atoll.mirror.logs`), never from a worker kubelet.
``GET /exec/{namespace}/{pod}/{container}`` (a WebSocket, remotecommand v5/v4, same identity
check) is relayed to the worker's ``pods/exec`` of the mapped pod (:mod:`atoll.mirror.execs`), so
``kubectl exec`` and ``kubectl cp`` reach pooled pods. Kubeocean opens one listener per vnode (for
per-node metrics); one per binding serves logs alike.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from atoll.client.kubelet import CONTAINER_LOGS_ROUTE, TLSListener, container_of, require_apiserver, serving_ssl
from atoll.files import write_atomic
from atoll.mirror.execs import relay_target_exec
from atoll.mirror.logs import relay_target_logs
from atoll.pooling.context import SyncContext

log = logging.getLogger(__name__)
JSON = dict[str, Any]
EXEC_ROUTE = "/exec/{namespace}/{pod}/{container}"


@dataclass(frozen=True, slots=True)
class ProxierTLS:
    cert: Path
    key: Path
    client_ca: Path

    def context(self) -> ssl.SSLContext:
        return serving_ssl(self.cert, self.key, self.client_ca)


class Proxier:
    def __init__(self, ctx: SyncContext, tls: ProxierTLS | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ctx = ctx
        self.tls = tls
        self.host = host
        self.port = port
        self._listener: TLSListener | None = None

    async def start(self) -> int:
        """Bind and return the port (0 when no TLS material is configured: logs are then not served)."""
        if self.tls is None:
            log.warning("binding %s: no proxier certificate; kubectl logs of pooled pods is unavailable",
                        self.ctx.binding_name)
            return 0
        app = web.Application()
        app.router.add_get(CONTAINER_LOGS_ROUTE, self.container_logs)
        app.router.add_get(EXEC_ROUTE, self.exec)
        app.router.add_get("/healthz", self.healthz)
        self._listener = TLSListener(app)
        self.port = await self._listener.start(self.host, self.port, self.tls.context())
        return self.port

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _pod(self, request: web.Request) -> tuple[JSON, str]:
        """The virtual pod of a kubelet request (404 unless it is on one of our vnodes), container."""
        require_apiserver(request)
        namespace, name, container = container_of(request)
        pod = self.ctx.vpods.get(name, namespace)
        if pod is None or self.ctx.vnodes.get((pod.get("spec") or {}).get("nodeName") or "") is None:
            raise web.HTTPNotFound(text=f'pod "{name}" is not on a virtual node of binding {self.ctx.binding_name}')
        return pod, container

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        pod, container = self._pod(request)
        return await relay_target_logs(request, self.ctx.worker, pod, container, "worker cluster")

    async def exec(self, request: web.Request) -> web.StreamResponse:
        pod, container = self._pod(request)
        return await relay_target_exec(request, self.ctx.worker, pod, container, "worker cluster")


def proxier_tls_from_ca(pki_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> ProxierTLS:
    """The proxier's serving certificate, issued once from the computing cluster's CA in ``pki_dir``
    (``pool-proxier.{crt,key}``, key written atomically with mode 0600)."""
    from atoll.pki import PKI, issue_serving_cert

    pki = PKI(pki_dir)
    cert, key = pki_dir / "pool-proxier.crt", pki_dir / "pool-proxier.key"
    if not (cert.exists() and key.exists()):
        cert_pem, key_pem = issue_serving_cert(pki, "atoll-pool-proxier", hosts)
        write_atomic(key, key_pem)
        cert.write_bytes(cert_pem)
    return ProxierTLS(cert, key, pki.ca_cert)
