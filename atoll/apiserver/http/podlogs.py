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

import asyncio
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from atoll.apiserver.registry.subresources import StreamReply, UpgradeReply
from atoll.client import Client
from atoll.client.kubelet import STREAM_MESSAGE_MAX, client_ssl, copy_messages, relay_stream


class PodLogs:
    """Relays a log stream from a node agent over mutual TLS with the cluster CA."""

    def __init__(self, ca_file: Path | None, client_cert: tuple[Path, Path] | None) -> None:
        self._ssl: ssl.SSLContext | None = client_ssl(ca_file, client_cert) if ca_file is not None else None

    async def relay(self, request: web.Request, where: StreamReply) -> web.StreamResponse:
        async with Client(where.url, ssl_context=self._ssl, user_agent="atoll-apiserver") as client:
            upstream = await client.request("GET", where.path, params=where.params, stream=True, read_timeout=None)
            return await relay_stream(request, upstream)

    async def fetch_json(self, url: str, path: str) -> Any:
        """GET a JSON document from a node agent (``/stats/summary``)."""
        async with Client(url, ssl_context=self._ssl, user_agent="atoll-apiserver") as client:
            return await client.request("GET", path)

    async def relay_websocket(self, request: web.Request, where: UpgradeReply) -> web.StreamResponse:
        """``pods/exec``: open the node's WebSocket with the client's subprotocols, then accept the
        client's with the one the node chose and copy messages both ways until either side ends."""
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        async with Client(where.url, ssl_context=self._ssl, user_agent="atoll-apiserver") as client:
            upstream = await client.websocket(where.path, params=where.params, protocols=offered)
            try:
                downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                                   max_msg_size=STREAM_MESSAGE_MAX)
                await downstream.prepare(request)
                async with asyncio.TaskGroup() as tg:
                    up = tg.create_task(copy_messages(downstream, upstream))
                    down = tg.create_task(copy_messages(upstream, downstream))
                    await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
                    up.cancel()
                    down.cancel()
                await downstream.close()
            finally:
                await upstream.close()
            return downstream
