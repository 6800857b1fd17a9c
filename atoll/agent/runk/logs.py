"""The kubelet log endpoint of a RunK node: ``kubectl logs`` on the master reaches the real pod.

The same contract and TLS as RunP's :class:`atoll.agent.logserver.LogServer` (client certificate
of the API server required); the body is the institution cluster's ``pods/log`` of the mapped
pod (:mod:`atoll.mirror.logs`), streamed as it comes. ``runk.enableLogging: false`` answers 404.
"""

from __future__ import annotations

from aiohttp import web

from atoll.agent.config import AgentConfig
from atoll.agent.logserver import LogEndpoint
from atoll.agent.runk.runtime import RunK
from atoll.client.kubelet import container_of, require_apiserver
from atoll.mirror.logs import relay_target_logs


class RunKLogServer(LogEndpoint):
    def __init__(self, config: AgentConfig, runtime: RunK) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        require_apiserver(request)
        namespace, name, container = container_of(request)
        if not self.runtime.settings.enable_logging:
            raise web.HTTPNotFound(text="logs of runk pods are disabled on this node (runk.enableLogging: false)")
        pod = self.runtime.informer.cache.get(name, namespace)
        if pod is None:
            raise web.HTTPNotFound(text=f'pod "{name}" is not on this node')
        return await relay_target_logs(request, self.runtime.target, pod, container, "institution cluster")
