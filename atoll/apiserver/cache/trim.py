"""Give freed heap memory back to the operating system, also after a flood of connections.

CPython frees objects into glibc's malloc arenas, which keep the pages: after a flood of
requests, or after large objects were replaced, the process RSS stays at its peak though the
memory is free. ``malloc_trim(0)`` returns free pages at the top of the heap and (since glibc
2.8) free whole pages inside it. The API server calls it periodically; it costs about a
millisecond and is a no-op where glibc is absent.

A closed connection is not free yet: its protocol, TLS and transport objects (and the exceptions
that ended a failed handshake) form reference cycles that only the cyclic garbage collector
frees, and its oldest generation runs rarely — 3,000 closed flood connections kept ~100 MB. So
the server reports closed connections (``connection_closed``): every ``CHURN_COLLECT`` of them
(at most every ``COLLECT_GAP`` seconds), and at the next periodic pass once ``TAIL_COLLECT`` have
closed since the last collection, a full ``gc.collect()`` runs before the trim. RSS then comes back
to about its level before the flood. A handful of closed connections (probes, a kubectl run, the
clients of a starting node) is not worth a full collection (13-36 ms measured on the pod bench's
master, where it landed in half the runs); their cycles wait for the next one, with more of theirs.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)
TRIM_INTERVAL = 10.0
CHURN_COLLECT = 256
"""Closed connections that trigger a collection and a trim at once (during a flood)."""
TAIL_COLLECT = 16
"""Closed connections since the last collection that make the periodic pass collect (a flood's
tail; fewer wait for more, or for the collector's own full collection)."""
COLLECT_GAP = 2.0
"""Seconds between two collections triggered by closed connections (a full collection of a large
heap takes tens of milliseconds)."""


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        func = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    func.argtypes, func.restype = [ctypes.c_size_t], ctypes.c_int
    return func  # type: ignore[no-any-return]


def trim_now() -> bool:
    """Trim once; False where ``malloc_trim`` is not available."""
    func = _malloc_trim()
    if func is None:
        return False
    func(0)
    return True


class _Churn:
    closed = 0
    scheduled = False
    last = 0.0


def connection_closed() -> None:
    """A connection of the server closed (called from its event loop)."""
    _Churn.closed += 1
    if _Churn.closed >= CHURN_COLLECT and not _Churn.scheduled:
        loop = asyncio.get_running_loop()
        _Churn.scheduled = True
        loop.call_later(max(0.0, _Churn.last + COLLECT_GAP - loop.time()), _collect_and_trim, loop)


def _collect_and_trim(loop: asyncio.AbstractEventLoop) -> None:
    _Churn.scheduled = False
    _Churn.closed = 0
    _Churn.last = loop.time()
    gc.collect()
    trim_now()


async def trim_periodically(interval: float = TRIM_INTERVAL) -> None:
    func = _malloc_trim()
    if func is None:
        log.debug("malloc_trim is not available; freed memory stays with the process")
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        periodic_pass(loop, func)


def periodic_pass(loop: asyncio.AbstractEventLoop, func: Callable[[int], int] | None) -> bool:
    """One pass of :func:`trim_periodically`: True when it collected (the tail of a flood)."""
    if _Churn.closed >= TAIL_COLLECT and not _Churn.scheduled:  # below CHURN_COLLECT, at least TAIL_COLLECT
        _collect_and_trim(loop)
        return True
    if func is not None:
        func(0)
    return False
