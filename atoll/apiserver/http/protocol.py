"""aiohttp's low-level server with Kubernetes-style protocol errors and connection limits.

Requests aiohttp cannot parse never reach the handler: a request line over 8 KB, headers too
large, a malformed request. aiohttp answers those with plain text; this server answers a JSON
``Status`` (414 for an overlong URL, 431 for oversized headers, 400 otherwise), as clients of a
Kubernetes API expect, and closes the connection.

Each connection also enforces ``ConnectionLimits`` (see ``limits``): a complete request head
within the header timeout, the idle timeout between requests, and the cap on connections that
have not yet been authenticated (``authenticated()`` is called by the handler; over the cap the
oldest unauthenticated connection is evicted).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from atoll.apiserver.cache.trim import connection_closed
from atoll.apiserver.http.limits import ConnectionCounter, ConnectionLimits

_REQUEST_LINE = re.compile(rb"^([A-Z]+ )?/")  # the request line (or its target), not a header


def _status(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": message, "reason": reason, "code": code})


def _owner_only(transport: asyncio.BaseTransport) -> bool:
    """The loopback Unix socket (0600, the in-process controllers' and agent's): its connections
    are not counted against the cap, so a flood on the TCP port can never evict the master's own
    clients."""
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.family == socket.AF_UNIX


class StatusRequestHandler(RequestHandler):  # type: ignore[type-arg]
    def __init__(self, manager: Any, *, limits: ConnectionLimits, counter: ConnectionCounter, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.idle_timeout, **kwargs)
        self._limits = limits
        self._counter = counter
        self._counted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self.on_lost: set[Callable[[], None]] = set()
        """Called when the connection is lost (a watch stream's wake-up: no polling for a gone client)."""

    def counted(self) -> None:
        """The listener's gate already admitted this connection under the cap (keyed by this handler)."""
        self._counted = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._counted and not _owner_only(transport):  # not through the gate: admit here
            if not self._counter.admit(self, self.force_close):
                self.force_close()
                return
            self._counted = True
        self._header_timer = asyncio.get_running_loop().call_later(self._limits.header_timeout, self._header_deadline)

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._request_count == 0:  # no complete request head yet: slowloris or idle socket
            self.force_close()

    def authenticated(self) -> None:
        """The connection carried an authenticated request: it no longer counts against the cap."""
        if self._counted:
            self._counted = False
            self._counter.release(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.authenticated()
        super().connection_lost(exc)
        connection_closed()
        for callback in tuple(self.on_lost):
            callback()

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if a response already started
        code, reason, text = status, "BadRequest", "the request could not be parsed"
        if isinstance(exc, LineTooLong):
            line = exc.args[0] if exc.args else b""
            raw = bytes(line) if isinstance(line, bytes | bytearray) else str(line).encode()
            is_request_line = _REQUEST_LINE.match(raw) is not None
            code = 414 if is_request_line else 431
            reason = "RequestURITooLong" if code == 414 else "RequestHeaderFieldsTooLarge"
            text = "the request URL is too long" if code == 414 else "the request headers are too large"
        elif isinstance(exc, BadHttpMessage):
            text = f"the request could not be parsed: {exc.message}"
        elif status >= 500:
            code, reason, text = 500, "InternalError", "an internal error occurred; see the server log"
        response = web.Response(status=code, body=_status(code, reason, text), content_type="application/json")
        response.force_close()
        return response


class StatusServer(web.Server):
    """``web.Server`` whose connections answer protocol errors with a ``Status`` and enforce limits."""

    def __init__(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or ConnectionLimits()
        self.counter = ConnectionCounter(self.limits.max_unauthenticated)

    def __call__(self) -> RequestHandler:  # type: ignore[type-arg]
        handler: Any = StatusRequestHandler(self, loop=self._loop, limits=self.limits, counter=self.counter,
                                            **self._kwargs)
        return handler  # type: ignore[no-any-return]


def lost_callbacks(request: web.BaseRequest) -> set[Callable[[], None]] | None:
    """The set of callbacks run when ``request``'s connection is lost; None when the request did not
    come through :class:`StatusServer` (the caller must then poll the transport)."""
    protocol = request.protocol
    return protocol.on_lost if isinstance(protocol, StatusRequestHandler) else None


def mark_authenticated(request: web.BaseRequest) -> None:
    protocol = request.protocol
    if isinstance(protocol, StatusRequestHandler):
        protocol.authenticated()
