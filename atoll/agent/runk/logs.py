"""The kubelet log endpoint of a RunK node: ``kubectl logs`` on the master reaches the real pod.

The same contract and TLS as RunP's :class:`atoll.agent.logserver.LogServer` (client certificate
of the API server required); the body is the institution cluster's ``pods/log`` of the mapped
pod (:mod:`atoll.mirror.logs`), streamed as it comes. ``runk.enableLogging: false`` answers 404.
"""

from __future__ import annotations

import logging
import socket

from aiohttp import web

from atoll.agent.config import AgentConfig
from atoll.agent.logserver import _authorized, server_ssl
from atoll.agent.runk.runtime import RunK
from atoll.api.errors import APIError
from atoll.client import ClientError
from atoll.mirror.logs import open_target_logs

log = logging.getLogger(__name__)


class RunKLogServer:
    def __init__(self, config: AgentConfig, runtime: RunK) -> None:
        self.config = config
        self.runtime = runtime
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        context = server_ssl(self.config)
        if context is None:
            log.warning("agent %s: no serving certificate (pki/kubelet.crt); pod logs are not served",
                        self.config.name)
            return 0
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.address, self.config.log_port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=context).start()
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        if not _authorized(request):
            raise web.HTTPForbidden(text="a client certificate of the API server is required")
        namespace, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        if not self.runtime.settings.enable_logging:
            raise web.HTTPNotFound(text="logs of runk pods are disabled on this node (runk.enableLogging: false)")
        pod = self.runtime.informer.cache.get(name, namespace)
        if pod is None:
            raise web.HTTPNotFound(text=f'pod "{name}" is not on this node')
        try:
            upstream = await open_target_logs(self.runtime.target, pod, container, request.query)
        except APIError as exc:
            raise web.HTTPBadRequest(text=exc.message) from None
        except ClientError as exc:
            raise web.HTTPServiceUnavailable(text=f"institution cluster unreachable: {exc}") from None
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for chunk in upstream.chunks():
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            upstream.close()
        return response
