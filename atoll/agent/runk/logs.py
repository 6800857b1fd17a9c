"""The kubelet log endpoint of a RunK node: ``kubectl logs`` on the master reaches the real pod.

The same contract and TLS as RunP's :class:`atoll.agent.logserver.LogServer` (client certificate
of the API server required); the body is the institution cluster's ``pods/log`` of the mapped
pod (:mod:`atoll.mirror.logs`), streamed as it comes. ``runk.enableLogging: false`` answers 404.
"""

from __future__ import annotations

from aiohttp import web

from atoll.agent.config import AgentConfig
from atoll.agent.logserver import start_listener
from atoll.agent.runk.runtime import RunK
from atoll.client.kubelet import CONTAINER_LOGS_ROUTE, TLSListener, container_of, require_apiserver
from atoll.mirror.logs import relay_target_logs


class RunKLogServer:
    def __init__(self, config: AgentConfig, runtime: RunK) -> None:
        self.config = config
        self.runtime = runtime
        self.port = 0
        self._listener: TLSListener | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get(CONTAINER_LOGS_ROUTE, self.container_logs)
        self._listener = await start_listener(self.config, app)
        self.port = self._listener.port if self._listener else 0
        return self.port

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        require_apiserver(request)
        namespace, name, container = container_of(request)
        if not self.runtime.settings.enable_logging:
            raise web.HTTPNotFound(text="logs of runk pods are disabled on this node (runk.enableLogging: false)")
        pod = self.runtime.informer.cache.get(name, namespace)
        if pod is None:
            raise web.HTTPNotFound(text=f'pod "{name}" is not on this node')
        return await relay_target_logs(request, self.runtime.target, pod, container, "institution cluster")
