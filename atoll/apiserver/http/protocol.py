"""aiohttp's low-level server with protocol errors answered as Kubernetes ``Status`` objects.

Requests aiohttp cannot parse never reach the handler: a request line over 8 KB, headers too
large, a malformed request. aiohttp answers those with plain text; this server answers a JSON
``Status`` (414 for an overlong URL, 431 for oversized headers, 400 otherwise), as clients of a
Kubernetes API expect, and closes the connection.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

_REQUEST_LINE = re.compile(rb"^([A-Z]+ )?/")  # the request line (or its target), not a header


def _status(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": message, "reason": reason, "code": code})


class StatusRequestHandler(RequestHandler):  # type: ignore[type-arg]
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
    """``web.Server`` whose connections answer protocol errors with a ``Status``."""

    def __call__(self) -> RequestHandler:  # type: ignore[type-arg]
        handler: Any = StatusRequestHandler(self, loop=self._loop, **self._kwargs)
        return handler  # type: ignore[no-any-return]
