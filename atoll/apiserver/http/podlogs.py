"""``GET …/pods/NAME/log``: container logs streamed from the node that runs the pod.

The contract between the API server and a node agent is the kubelet's own: the agent serves HTTPS
``GET /containerLogs/{namespace}/{pod}/{container}`` on the port its Node publishes in
``status.daemonEndpoints.kubeletEndpoint.Port`` (address: the Node's ``InternalIP``), accepting
the query parameters ``follow``, ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``previous``,
``timestamps`` and ``limitBytes`` and answering ``text/plain`` (chunked while following). The API
server authenticates with a client certificate signed by the cluster CA
(``CN=atoll-apiserver, O=system:masters``); the agent's serving certificate must be signed by the
same CA. The API server relays the body unchanged and ends when the agent ends.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from atoll.api import errors
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.http import params
from atoll.client import Client

JSON = dict[str, Any]
FORWARDED = ("follow", "tailLines", "sinceSeconds", "sinceTime", "previous", "timestamps", "limitBytes")
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def pick_container(pod: JSON, wanted: str) -> str:
    name = pod["metadata"]["name"]
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    inits = [c.get("name", "") for c in (pod.get("spec") or {}).get("initContainers") or []]
    if not wanted:
        wanted = ((pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER) or "") or (
            containers[0] if len(containers) == 1 else ""
        )
        if not wanted:
            raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: {containers}")
    if wanted not in containers and wanted not in inits:
        raise errors.BadRequest(f"container {wanted} is not valid for pod {name}")
    return wanted


def check_started(pod: JSON, container: str, previous: bool) -> None:
    name = pod["metadata"]["name"]
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.BadRequest(f"pod {name} does not have a host assigned")
    status = pod.get("status") or {}
    statuses = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    for cs in statuses:
        if cs.get("name") != container:
            continue
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and not previous and not cs.get("lastState", {}).get("terminated"):
            reason = waiting.get("reason") or "ContainerCreating"
            raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return
    if not previous:
        raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')


def node_endpoint(node: JSON) -> str:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    if not port or not address:
        raise errors.BadRequest(f'node "{node["metadata"]["name"]}" does not publish a log endpoint')
    return f"https://{address}:{port}"


class PodLogs:
    def __init__(self, cache: WatchCache, ca_file: Path | None, client_cert: tuple[Path, Path] | None) -> None:
        self._cache = cache
        self._ssl: ssl.SSLContext | None = None
        if ca_file is not None:
            self._ssl = ssl.create_default_context(cafile=str(ca_file))
            self._ssl.check_hostname = False  # agents are reached by IP; the cluster CA vouches for them
            if client_cert is not None:
                self._ssl.load_cert_chain(str(client_cert[0]), str(client_cert[1]))

    async def serve(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        cached = self._cache.get(f"/core/pods/{namespace}/{name}")
        if cached is None:
            raise errors.not_found("pods", "", name)
        pod = cached.obj
        query = request.query
        params.pod_log(query)
        container = pick_container(pod, query.get("container", ""))
        check_started(pod, container, query.get("previous", "").lower() == "true")
        node = self._cache.get(f"/core/nodes/{pod['spec']['nodeName']}")
        if node is None:
            raise errors.BadRequest(f'node "{pod["spec"]["nodeName"]}" of pod {name} is not registered')
        forwarded = {k: query[k] for k in FORWARDED if k in query}
        async with Client(node_endpoint(node.obj), ssl_context=self._ssl, user_agent="atoll-apiserver") as client:
            path = f"/containerLogs/{namespace}/{name}/{container}"
            upstream = await client.request("GET", path, params=forwarded, stream=True, read_timeout=None)
            response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
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
