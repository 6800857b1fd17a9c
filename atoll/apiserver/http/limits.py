"""Connection and request limits: a flood of connections or requests cannot take the server down.

* **Header timeout** — a connection must deliver a complete request head within
  ``header_timeout`` seconds of being accepted (slowloris connections that trickle bytes are
  closed); afterwards ``idle_timeout`` closes connections idle between requests.
* **Unauthenticated connections** — at most ``max_unauthenticated`` connections may be open that
  have not yet carried an authenticated request; beyond that new connections are closed at once,
  so idle or hostile sockets cannot pin memory before anyone has proved who they are.
* **Requests in flight** — like kube-apiserver's ``--max-requests-inflight`` and
  ``--max-mutating-requests-inflight``: beyond the limits a request is answered 429
  ``TooManyRequests`` with ``Retry-After: 1`` (clients back off and retry). Long-running requests
  (watches, followed logs) are not counted, and ``system:masters`` is exempt, as upstream.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from atoll.api import errors

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MASTERS = "system:masters"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    idle_timeout: float = 120.0
    max_unauthenticated: int = 512
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200


class ConnectionCounter:
    """Connections that have not (yet) carried an authenticated request."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.unauthenticated = 0

    def admit(self) -> bool:
        if self.unauthenticated >= self.limit:
            return False
        self.unauthenticated += 1
        return True

    def release(self) -> None:
        self.unauthenticated = max(0, self.unauthenticated - 1)


def long_running(request: web.BaseRequest) -> bool:
    query = request.query
    if query.get("watch", "").lower() in ("true", "1"):
        return True
    return request.path.endswith("/log") and query.get("follow", "").lower() in ("true", "1")


class InflightLimiter:
    """Counts requests being served; ``enter`` refuses with 429 beyond the limits."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.readonly = 0
        self.mutating = 0

    def enter(self, request: web.BaseRequest, groups: tuple[str, ...]) -> str | None:
        """The counter taken (``"readonly"``/``"mutating"``), None when not counted; 429 when full."""
        if MASTERS in groups or long_running(request):
            return None
        if request.method in MUTATING:
            if self.mutating >= self.limits.max_mutating_requests_inflight:
                raise _too_many()
            self.mutating += 1
            return "mutating"
        if self.readonly >= self.limits.max_requests_inflight:
            raise _too_many()
        self.readonly += 1
        return "readonly"

    def leave(self, taken: str | None) -> None:
        if taken == "mutating":
            self.mutating -= 1
        elif taken == "readonly":
            self.readonly -= 1


def _too_many() -> errors.APIError:
    return errors.TooManyRequests(
        "Too many requests, please try again later.", details={"retryAfterSeconds": 1}
    )
