"""Kubernetes time on the wire, in one place: ``metav1.Time`` and ``metav1.MicroTime``.

``Time`` is RFC 3339 in UTC with seconds precision (``2026-11-22T10:04:05Z``): creation and
deletion timestamps, condition transition times, event timestamps. ``MicroTime`` keeps
microseconds (``2026-11-22T10:04:05.123456Z``): Lease ``renewTime``/``acquireTime`` and
``events.k8s.io`` ``eventTime``. Parsing accepts both, any fraction and any UTC offset. Callers
that need the current time pass their clock's ``now()`` (see ``atoll.api.clock``).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from functools import lru_cache

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as kubectl prints an unset timestamp


def format_time(seconds: float) -> str:
    """``metav1.Time`` for epoch ``seconds`` (truncated to whole seconds; the last few seconds'
    strings are memoised: every write formats "now")."""
    return _format_second(math.floor(seconds))


@lru_cache(maxsize=16)
def _format_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def format_micro_time(seconds: float) -> str:
    """``metav1.MicroTime`` for epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_nano_time(seconds: float) -> str:
    """RFC 3339 with nanoseconds (Go's ``RFC3339Nano`` at microsecond precision, padded), the form
    of the timestamps ``kubectl logs --timestamps`` prefixes lines with."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def now_time() -> str:
    """``metav1.Time`` of the system clock now (code with an injected clock uses ``format_time``)."""
    return format_time(time.time())


def parse_time(value: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp (``Z`` or offset, optional fraction); ValueError if
    it is not one."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def try_parse_time(value: object) -> float | None:
    """``parse_time`` that answers None for anything but a valid timestamp (absent, empty, not a
    string, malformed); memoised, as tables parse the same creation timestamps on every render."""
    return _parse_cached(value) if isinstance(value, str) and value else None


@lru_cache(maxsize=8192)
def _parse_cached(value: str) -> float | None:
    try:
        return parse_time(value)
    except ValueError:
        return None
