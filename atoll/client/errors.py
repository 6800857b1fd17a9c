"""Client-side errors, kept apart from the server's ``APIError`` tree.

Two kinds of failure reach a caller of :mod:`atoll.client`:

* the server answered and refused: an :class:`atoll.api.errors.APIError` subclass rebuilt from the
  ``Status`` body (``NotFound``, ``Conflict``, ``Gone`` …), exactly as the server raised it;
* the request never got an answer, or the answer could not be read: a :class:`ClientError`.

aiohttp's own exceptions never escape this package; they are chained (``raise … from exc``) so the
root cause stays visible in tracebacks without leaking the HTTP library into callers::

    ClientError
    ├── ConfigError              bad or unsupported kubeconfig
    └── ClientConnectionError    connect/TLS/reset/disconnect while sending or streaming
        └── ClientTimeoutError   no byte within the read timeout (watch inactivity included)

:func:`error_from_response` is the one place a refusal's body becomes its ``APIError``.
"""

from __future__ import annotations

import orjson

from atoll.api.errors import APIError, from_status


class ClientError(Exception):
    """Base of every client-side failure (the server did not answer with a Status)."""


class ConfigError(ClientError):
    """The kubeconfig (or in-cluster environment) is missing, invalid or unsupported."""


class ClientConnectionError(ClientError):
    """The connection to the API server failed or broke."""


class ClientTimeoutError(ClientConnectionError):
    """The API server stayed silent for longer than the read timeout."""


ERROR_TEXT_LIMIT = 256
"""Non-Status error bodies are truncated: proxies echo requests, and requests carry secrets."""


def error_from_response(status: int, body: bytes) -> APIError:
    """A ``Status`` body → its APIError; anything else → the APIError class of the HTTP code."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return from_status(parsed, status)
    text = body[:ERROR_TEXT_LIMIT].decode("utf-8", "replace").strip() or f"HTTP {status}"
    return from_status({"code": status, "message": text}, status)
