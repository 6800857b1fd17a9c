"""The TCP listener's gate: count and cap a connection before TLS costs anything.

asyncio's TLS server wraps every accepted socket in an ``SSLProtocol`` with a 256 KB read buffer
at once, and waits up to 60 s for a handshake: 2,000 idle sockets cost ~600 MB before any of
them has said a word. Here the listener accepts plain TCP; the gate counts the connection
under the cap of unauthenticated connections (over it, the oldest unauthenticated connection is
aborted to make room: a slowloris flood cannot lock new clients out), then starts TLS with the
header timeout as the handshake timeout, and hands the encrypted transport to the server's HTTP
protocol. The count is released when the connection authenticates or closes.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import ssl

from atoll.apiserver.cache.trim import connection_closed
from atoll.apiserver.http.protocol import StatusRequestHandler, StatusServer

log = logging.getLogger(__name__)


class _Gate(asyncio.Protocol):
    def __init__(self, server: StatusServer, context: ssl.SSLContext | None) -> None:
        self._server = server
        self._context = context

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        handler = self._server()
        assert isinstance(handler, StatusRequestHandler)
        if not self._server.counter.admit(handler, transport.abort):  # may evict the oldest
            transport.abort()
            return
        handler.counted()
        if self._context is None:
            transport.set_protocol(handler)
            handler.connection_made(transport)
            return
        transport.pause_reading()  # the ClientHello waits for the TLS protocol
        asyncio.get_running_loop().create_task(self._start_tls(transport, handler, self._context))

    async def _start_tls(self, transport: asyncio.Transport, handler: StatusRequestHandler,
                         context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        if transport.is_closing():  # evicted before its handshake began: no TLS protocol to start
            handler.authenticated()
            connection_closed()
            return
        try:
            tls = await loop.start_tls(transport, handler, context, server_side=True,
                                       ssl_handshake_timeout=self._server.limits.header_timeout)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            handler.authenticated()  # releases its place under the cap
            transport.abort()
            connection_closed()
            return
        if tls is None:
            handler.authenticated()
            transport.abort()
            connection_closed()
            return
        handler.connection_made(tls)

    def data_received(self, data: bytes) -> None:  # never: reading is paused until TLS starts
        pass


SSL_READ_BUFFER = 64 * 1024
"""asyncio's per-connection TLS read buffer (its default is 256 KB); TLS records are at most 16 KB,
so 64 KB reads lose nothing and a connection costs a quarter of the memory."""


async def start_gated_tcp(
    server: StatusServer, host: str, port: int, context: ssl.SSLContext | None
) -> tuple[asyncio.Server, int]:
    """Listen on ``host:port`` (0: a free port) through the gate; the server and the bound port."""
    loop = asyncio.get_running_loop()
    if context is not None:
        asyncio.sslproto.SSLProtocol.max_size = min(asyncio.sslproto.SSLProtocol.max_size, SSL_READ_BUFFER)
    listener = await loop.create_server(lambda: _Gate(server, context), host, port, backlog=1024,
                                        reuse_address=True)
    sockets = list(listener.sockets)
    return listener, int(sockets[0].getsockname()[1]) if sockets else port


async def stop(listener: asyncio.Server) -> None:
    listener.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(listener.wait_closed(), 1.0)
