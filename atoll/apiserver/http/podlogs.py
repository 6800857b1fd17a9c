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

from aiohttp import web

from atoll.apiserver.registry.subresources import StreamReply
from atoll.client import Client
from atoll.client.kubelet import client_ssl, relay_stream


class PodLogs:
    """Relays a log stream from a node agent over mutual TLS with the cluster CA."""

    def __init__(self, ca_file: Path | None, client_cert: tuple[Path, Path] | None) -> None:
        self._ssl: ssl.SSLContext | None = client_ssl(ca_file, client_cert) if ca_file is not None else None

    async def relay(self, request: web.Request, where: StreamReply) -> web.StreamResponse:
        async with Client(where.url, ssl_context=self._ssl, user_agent="atoll-apiserver") as client:
            upstream = await client.request("GET", where.path, params=where.params, stream=True, read_timeout=None)
            return await relay_stream(request, upstream)
