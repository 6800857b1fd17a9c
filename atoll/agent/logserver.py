"""The agent's log endpoint: the kubelet's ``GET /containerLogs/{namespace}/{pod}/{container}``.

Contract (``atoll/apiserver/http/podlogs.py``): HTTPS on the port published in the Node's
``status.daemonEndpoints.kubeletEndpoint.Port``; query ``follow``, ``tailLines``,
``sinceSeconds``, ``sinceTime``, ``previous``, ``timestamps``, ``limitBytes``; ``text/plain``,
chunked while following (a follow ends when the container attempt ends).

Trust, and why this option: the API server presents a client certificate ``CN=atoll-apiserver``
signed by the cluster CA, and verifies our serving certificate against that same CA. A lite node
has no CA key, so its serving certificate is issued **at ``atoll init`` time** from the master's
PKI (``atoll init --mode lite --master-data-dir DIR``, same machine) and stored in
``<dataDir>/pki/kubelet.{crt,key}`` with the CA certificate in ``<dataDir>/pki/ca.crt``. The
agent requires a client certificate signed by that CA with CN ``atoll-apiserver`` (or group
``system:masters``). Nothing secret travels at run time; a CSR flow (``certificates.k8s.io``)
can replace the init step later. Without a certificate the agent serves no logs and publishes
port 0, and the API server answers "does not publish a log endpoint".

The same listener serves the RunP agent's other kubelet routes, each behind the same check:
``/exec``, ``/attach`` and ``/portForward`` (WebSockets: :mod:`atoll.agent.execserver`,
:mod:`atoll.agent.attachserver`, :mod:`atoll.agent.portforward`) and ``/stats/summary``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from atoll.agent.attachserver import serve_attach
from atoll.agent.config import AgentConfig
from atoll.agent.execserver import serve_exec
from atoll.agent.portforward import serve_portforward
from atoll.agent.runp.logs import log_path, read_tail, stamp
from atoll.agent.runp.runtime import RunP
from atoll.agent.stats import Stats, serve_summary
from atoll.api.timestamps import parse_time
from atoll.client.kubelet import CONTAINER_LOGS_ROUTE, TLSListener, container_of, require_apiserver, serving_ssl
from atoll.runtime.metrics import REGISTRY

log = logging.getLogger(__name__)
FOLLOW_POLL_SECONDS = 0.2


def server_ssl(config: AgentConfig) -> ssl.SSLContext | None:
    if not (config.tls_cert and config.tls_key and config.client_ca):
        return None
    return serving_ssl(config.tls_cert, config.tls_key, config.client_ca)


def _bool(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


def _since(query: Any) -> float | None:
    if query.get("sinceTime"):
        try:
            return parse_time(str(query["sinceTime"]))
        except ValueError:
            raise web.HTTPBadRequest(text=f"sinceTime: invalid RFC 3339 time {query['sinceTime']!r}") from None
    if query.get("sinceSeconds"):
        return time.time() - int(query["sinceSeconds"])
    return None


class LogEndpoint:
    """The node's log port: bound when a serving certificate is configured (port 0 otherwise);
    subclasses answer :meth:`container_logs` from their runtime."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.port = 0
        self._listener: TLSListener | None = None

    async def start(self) -> int:
        """Bind (if a serving certificate is configured) and return the port, 0 when disabled."""
        context = server_ssl(self.config)
        if context is None:
            log.warning("agent %s: no serving certificate (pki/kubelet.crt); pod logs are not served",
                        self.config.name)
            return 0
        app = web.Application()
        app.router.add_get(CONTAINER_LOGS_ROUTE, self.container_logs)
        app.router.add_get("/metrics", self.metrics)
        self.add_routes(app)
        self._listener = TLSListener(app)
        self.port = await self._listener.start(self.config.address, self.config.log_port, context)
        return self.port

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    def add_routes(self, app: web.Application) -> None:
        """More kubelet routes a runtime serves (``/exec``, ``/stats/summary``)."""

    async def metrics(self, request: web.Request) -> web.Response:
        """The process's Prometheus registry (Envoy stats of this node's gateway, runtime metrics),
        as the kubelet serves ``/metrics`` on 10250: same client-certificate rule as the logs."""
        require_apiserver(request)
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class LogServer(LogEndpoint):
    def __init__(self, config: AgentConfig, runtime: RunP) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.stats = Stats(runtime)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_get("/attach/{namespace}/{pod}/{container}", self.attach)
        app.router.add_get("/portForward/{namespace}/{pod}", self.port_forward)
        app.router.add_get("/stats/summary", self.stats_summary)

    async def stats_summary(self, request: web.Request) -> web.StreamResponse:
        """Resource usage for ``kubectl top`` (:mod:`atoll.agent.stats`)."""
        require_apiserver(request)
        return await serve_summary(self.stats, request)

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """``kubectl exec`` / ``cp`` through the API server (:mod:`atoll.agent.execserver`)."""
        require_apiserver(request)
        return await serve_exec(self.runtime, request)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """``kubectl attach`` / ``run -i`` / ``debug -i`` (:mod:`atoll.agent.attachserver`)."""
        require_apiserver(request)
        return await serve_attach(self.runtime, request)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """``kubectl port-forward`` and the Python client's ``portforward()`` (:mod:`atoll.agent.portforward`)."""
        require_apiserver(request)
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        if self.runtime.worker(ns, pod) is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" is not running on this node')
        return await serve_portforward(pod, self.config.address, request)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        require_apiserver(request)
        ns, pod, container = container_of(request)
        worker = self.runtime.worker(ns, pod)
        rec = worker.record(container) if worker else None
        if worker is None or rec is None:
            raise web.HTTPNotFound(text=f'container "{container}" in pod "{pod}" not found on this node')
        query = request.query
        previous, follow = _bool(query.get("previous", "")), _bool(query.get("follow", ""))
        attempt = rec.attempt - 1 if previous else rec.attempt
        if attempt < 0:
            what = "previous terminated container" if previous else "container"
            raise web.HTTPBadRequest(text=f'{what} "{container}" in pod "{pod}" not found')
        path = log_path(self.config.root, ns, pod, worker.uid, container, attempt)
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None
        timestamps = _bool(query.get("timestamps", ""))
        content, offset = await asyncio.to_thread(read_tail, path, tail_lines=tail, since=_since(query),
                                                  timestamps=timestamps)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        if follow:
            response.enable_chunked_encoding()
        await response.prepare(request)
        sent = await _write(response, content, limit, 0)
        if follow and not previous:
            await self._follow(response, path, offset, worker, container, attempt, limit, sent, timestamps)
        await response.write_eof()
        return response

    async def _follow(
        self, response: web.StreamResponse, path: Path, offset: int, worker: Any, container: str, attempt: int,
        limit: int | None, sent: int, timestamps: bool,
    ) -> None:
        while limit is None or sent < limit:
            data, offset = await asyncio.to_thread(_read_from, path, offset)
            if data:
                sent = await _write(response, stamp(data, time.time()) if timestamps else data, limit, sent)
                continue
            rec = worker.record(container)
            if rec is None or rec.attempt != attempt or rec.state != "running" or worker.gone:
                data, offset = await asyncio.to_thread(_read_from, path, offset)
                await _write(response, data, limit, sent)
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size < offset:  # rotated (copy + truncate): continue from the start
                offset = 0
            f.seek(offset)
            data = f.read(1 << 20)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


async def _write(response: web.StreamResponse, data: bytes, limit: int | None, sent: int) -> int:
    if limit is not None:
        data = data[: max(limit - sent, 0)]
    if data:
        await response.write(data)
    return sent + len(data)
