"""The kubelet log endpoint, both sides: one TLS listener, one identity check, one byte relay.

Contract (see ``atoll/apiserver/http/podlogs.py``): HTTPS ``GET /containerLogs/{namespace}/{pod}/
{container}`` with the query ``follow``, ``tailLines``, ``sinceSeconds``, ``sinceTime``,
``previous``, ``timestamps`` and ``limitBytes``, answered ``text/plain`` (chunked while
following). The caller is the API server, authenticated by a client certificate signed by the
cluster CA (CN ``atoll-apiserver`` or group ``system:masters``); the same CA signs the serving
certificate. Served by the RunP agent (``atoll/agent/logserver.py``), the RunK agent
(``atoll/agent/runk/logs.py``) and the pool proxier (``atoll/pooling/proxier.py``); relayed by the
API server. It lives in the client layer because every one of those layers may import it.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from atoll.client.stream import StreamResponse as UpstreamStream
from atoll.pki import peer_identity

CONTAINER_LOGS_ROUTE = "/containerLogs/{namespace}/{pod}/{container}"
APISERVER_USER = "atoll-apiserver"
FORBIDDEN_TEXT = "a client certificate of the API server is required"
STREAM_MESSAGE_MAX = 16 << 20
"""The largest WebSocket message (after permessage-deflate) of a pod stream (exec, attach,
port-forward) the API server and the agents accept: clients send 32 KiB chunks; without a bound
one tenant's single message (or a small deflated one) is buffered whole in the shared master."""


def serving_ssl(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """A server context that requires a client certificate signed by ``client_ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ssl(ca_file: Path, client_cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """The API server's context toward a log endpoint (reached by IP: the cluster CA vouches)."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.check_hostname = False
    if client_cert is not None:
        ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    return ctx


def require_apiserver(request: web.Request) -> None:
    """403 unless the verified peer certificate is the API server's (or a cluster admin's)."""
    transport = request.transport
    peer: Any = transport.get_extra_info("peercert") if transport else None
    identity = peer_identity(peer)
    if identity is None or not (identity[0] == APISERVER_USER or "system:masters" in identity[1]):
        raise web.HTTPForbidden(text=FORBIDDEN_TEXT)


def container_of(request: web.Request) -> tuple[str, str, str]:
    """(namespace, pod, container) of a ``/containerLogs`` request."""
    info = request.match_info
    return info["namespace"], info["pod"], info["container"]


class TLSListener:
    """An aiohttp app bound to ``host:port`` (0 = a free port) over TLS; ``port`` is the bound one."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> int:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=context).start()
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def relay_stream(
    request: web.Request,
    upstream: UpstreamStream,
    response: web.StreamResponse | None = None,
    tolerate: tuple[type[BaseException], ...] = (ConnectionResetError,),
) -> web.StreamResponse:
    """Stream ``upstream``'s body to the caller chunk by chunk (default: ``200 text/plain``),
    ending quietly when the caller hangs up (or on ``tolerate``); ``upstream`` is closed."""
    if response is None:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in upstream.chunks():
            await response.write(chunk)
        await response.write_eof()
    except tolerate:
        pass
    finally:
        upstream.close()
    return response


async def copy_messages(source: Any, sink: Any) -> None:
    """Binary and text messages from one WebSocket to the other (a pod stream's relay, in the API
    server and the pool proxier), until ``source`` closes."""
    async for msg in source:
        if msg.type == WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await sink.send_str(msg.data)
        else:
            break
