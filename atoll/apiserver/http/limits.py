"""Connection and request limits: a flood of connections or requests cannot take the server down.

* **Header timeout** — a connection must deliver a complete request head within
  ``header_timeout`` seconds of being accepted (slowloris connections that trickle bytes are
  closed); afterwards ``idle_timeout`` closes connections idle between requests.
* **Unauthenticated connections** — at most ``max_unauthenticated`` connections may be open that
  have not yet carried an authenticated request, so idle or hostile sockets cannot pin memory
  before anyone has proved who they are. When the cap is reached, a new connection evicts the
  *oldest* unauthenticated one (closed at once) rather than being refused: an attacker holding the
  cap with slowloris sockets cannot lock legitimate clients out — a client needs only to
  authenticate before the attacker has opened ``max_unauthenticated`` newer sockets — and
  connections that have authenticated are never evicted.
* **Requests in flight** — like kube-apiserver's ``--max-requests-inflight`` and
  ``--max-mutating-requests-inflight``: beyond the limits a request is answered 429
  ``TooManyRequests`` with ``Retry-After: 1`` (clients back off and retry). Long-running requests
  (watches, followed logs) are not counted, and ``system:masters`` is exempt, as upstream.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from atoll.api import errors
from atoll.apiserver.registry import params
from atoll.runtime.metrics import REGISTRY

log = logging.getLogger(__name__)
unauthenticated_connections = Gauge(
    "apiserver_unauthenticated_connections", "Open connections that have not carried an authenticated request",
    registry=REGISTRY,
)
evicted_connections = Counter(
    "apiserver_evicted_connections_total",
    "Unauthenticated connections closed to admit a newer one (the cap of unauthenticated connections was reached)",
    registry=REGISTRY,
)

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
    """Connections that have not (yet) carried an authenticated request, oldest first, each with
    the callable that closes it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: OrderedDict[object, Callable[[], None]] = OrderedDict()

    @property
    def unauthenticated(self) -> int:
        return len(self._open)

    def admit(self, connection: object, close: Callable[[], None]) -> bool:
        """Count ``connection``, closing the oldest unauthenticated ones over the cap; False (the
        caller closes it) only when the cap is zero."""
        if self.limit <= 0:
            return False
        while len(self._open) >= self.limit:
            _, evict = self._open.popitem(last=False)
            unauthenticated_connections.dec()
            evicted_connections.inc()
            try:
                evict()
            except Exception:  # already closing: nothing left to free
                log.debug("evicting an unauthenticated connection failed", exc_info=True)
        self._open[connection] = close
        unauthenticated_connections.inc()
        return True

    def release(self, connection: object) -> None:
        if self._open.pop(connection, None) is not None:
            unauthenticated_connections.dec()


def long_running(request: web.BaseRequest) -> bool:
    """A watch (a GET with ``watch``) or a followed log: exempt from the in-flight limits."""
    query = request.query
    if request.method != "GET":
        return False
    if params.flag(query.get("watch")):
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
