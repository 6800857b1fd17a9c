"""The TCP listener's gate: count and cap a connection before TLS costs anything.

asyncio's TLS server wraps every accepted socket in an ``SSLProtocol`` with a 256 KB read buffer
at once, and waits up to 60 s for a handshake: 2,000 idle sockets cost ~600 MB before any of
them has said a word. Here the listener accepts plain TCP; the gate counts the connection
under the cap of unauthenticated connections (over it, the oldest unauthenticated connection is
aborted to make room: a slowloris flood cannot lock new clients out), and when the client's first
bytes arrive puts the loop's TLS protocol in its place (asyncio's, or uvloop's under uvloop) with
the header timeout as the handshake timeout; the TLS protocol hands the encrypted transport to the
server's HTTP protocol. The count is released when the connection authenticates or closes.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import ssl
from typing import Any, cast

from atoll.apiserver.cache.trim import connection_closed
from atoll.apiserver.http.protocol import StatusRequestHandler, StatusServer

log = logging.getLogger(__name__)


def _tls_protocol_class(loop: asyncio.AbstractEventLoop) -> type[Any]:
    """The loop's own TLS protocol: uvloop's compiled one under uvloop, asyncio's otherwise."""
    if type(loop).__module__.startswith("uvloop"):
        import uvloop.loop

        return cast("type[Any]", getattr(uvloop.loop, "SSLProtocol"))  # noqa: B009 (not in its stubs)
    return asyncio.sslproto.SSLProtocol


def _feed(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    """Hand ``data`` to a buffered protocol as its transport would."""
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]


class _Gate(asyncio.Protocol):
    """Counts the connection; on its first bytes (the ClientHello) puts the loop's TLS protocol in
    its place and feeds it those bytes. Nothing is allocated for TLS until the client speaks, and
    the hand-over is synchronous, so it works whether the loop starts reading before or after
    ``connection_made`` returns (asyncio after a ``call_soon``, uvloop right after it)."""

    def __init__(self, server: StatusServer, context: ssl.SSLContext | None) -> None:
        self._server = server
        self._context = context
        self._transport: asyncio.Transport | None = None
        self._handler: StatusRequestHandler | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
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
        self._transport, self._handler = transport, handler
        timeout = self._server.limits.header_timeout  # a socket that never speaks
        self._timer = asyncio.get_running_loop().call_later(timeout, transport.abort)

    def data_received(self, data: bytes) -> None:
        transport, handler, context = self._transport, self._handler, self._context
        if transport is None or handler is None or context is None or transport.is_closing():
            return
        self._stop_timer()
        self._transport = self._handler = None  # from here on the TLS protocol owns the connection
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        waiter.add_done_callback(lambda done: _handshake_done(done, transport, handler))
        tls = _tls_protocol_class(loop)(loop, handler, context, waiter, server_side=True,
                                        ssl_handshake_timeout=self._server.limits.header_timeout)
        transport.set_protocol(tls)
        tls.connection_made(transport)
        _feed(tls, data)

    def connection_lost(self, exc: BaseException | None) -> None:  # closed before any TLS began
        self._stop_timer()
        handler, self._transport, self._handler = self._handler, None, None
        if handler is not None:
            handler.authenticated()  # releases its place under the cap
            connection_closed()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _handshake_done(waiter: asyncio.Future[None], transport: asyncio.Transport,
                    handler: StatusRequestHandler) -> None:
    """A failed or timed-out handshake never reached the handler: release its count here (after a
    successful one the TLS protocol has called ``handler.connection_made`` and the handler's own
    ``connection_lost`` releases it)."""
    exc = None if waiter.cancelled() else waiter.exception()
    if not waiter.cancelled() and exc is None:
        return
    log.debug("TLS handshake failed: %s", exc)
    handler.authenticated()
    transport.abort()
    connection_closed()


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
