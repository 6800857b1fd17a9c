"""Which event loop a node runs on: uvloop (compiled transports and TLS) unless told otherwise.

``ATOLL_EVENT_LOOP=asyncio`` selects CPython's own loop (for comparison, or on a platform
without uvloop wheels); an unknown value is a configuration error. uvloop cut the API server's
CPU per HTTPS request by about a tenth (docs/performance.md, "Round 3").
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

LOOPS = ("uvloop", "asyncio")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner`` (None: asyncio's default loop)."""
    choice = os.environ.get("ATOLL_EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if choice not in LOOPS:
        raise ValueError(f"ATOLL_EVENT_LOOP={choice!r}: expected one of {', '.join(LOOPS)}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # no wheel for this platform: the standard loop works the same, slower
        return None
    return uvloop.new_event_loop
