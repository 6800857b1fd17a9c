"""Relaying ``…/proxy/<path>`` requests to another API server (``RelayReply``).

The method, query, body, ``Accept`` and ``Content-Type`` go upstream with the target's own
credentials (the caller was authorised on this server for ``<resource>/proxy`` of that object);
the upstream answer comes back with its status and content type, streamed chunk by chunk so
watches (and ``kubectl get -w``) work through the proxy. Upstream errors come back as the
upstream's ``Status``; an unreachable upstream is a 503 naming it.
"""

from __future__ import annotations

from aiohttp import web

from atoll.api import errors
from atoll.apiserver.registry.subresources import ProxyTarget, RelayReply
from atoll.client import Client, ClientError
from atoll.client.kubelet import relay_stream

_FORWARDED = ("Accept", "Content-Type")


class Relay:
    """One pooled client per upstream (URL and token), kept while the server runs."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], Client] = {}

    def _client(self, target: ProxyTarget) -> Client:
        key = (target.url, target.token)
        client = self._clients.get(key)
        if client is None:
            unix_socket = getattr(target, "unix_socket", None)  # an upstream in this process: no TLS/TCP
            if unix_socket is not None:
                client = Client("http://localhost", unix_socket=str(unix_socket), token=target.token,
                                user_agent="atoll-apiserver-proxy")
            else:
                client = Client(target.url, ssl_context=target.ssl_context, token=target.token,
                                user_agent="atoll-apiserver-proxy")
            self._clients[key] = client
        return client

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    async def relay(self, request: web.Request, reply: RelayReply, tail: str) -> web.StreamResponse:
        client = self._client(reply.target)
        body = await request.read() if request.can_read_body else None
        headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
        try:
            upstream = await client.request(
                request.method, "/" + tail, params=dict(request.query), body=body if body else None,
                content_type=request.headers.get("Content-Type"), stream=True, read_timeout=None, headers=headers,
            )
        except ClientError as exc:
            raise errors.ServiceUnavailable(f"the upstream {reply.target.url} is unreachable: {exc}") from None
        response = web.StreamResponse(status=upstream.status)
        for name in ("Content-Type", "Warning", "Audit-Id"):
            if name in upstream.headers:
                response.headers[name] = upstream.headers[name]
        return await relay_stream(request, upstream, response, tolerate=(ConnectionResetError, ClientError))
