"""Which event loop a node runs on: CPython's asyncio loop unless ``ATOLL_EVENT_LOOP=uvloop``.

uvloop (compiled transports and TLS; ``pip install 'atoll[uvloop]'``) is supported — the TLS gate
works on both loops — but measured no gain here: the same server CPU per HTTPS create and GET,
a worse watch p99 and slower pod starts (docs/performance.md, "Round 3"), so it is opt-in. An
unknown value, or uvloop asked for but not installed, is a configuration error.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

LOOPS = ("asyncio", "uvloop")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner`` (None: asyncio's default loop); ValueError for a bad choice."""
    choice = os.environ.get("ATOLL_EVENT_LOOP", "").strip().lower() or "asyncio"
    if choice not in LOOPS:
        raise ValueError(f"ATOLL_EVENT_LOOP={choice!r}: expected one of {', '.join(LOOPS)}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise ValueError("ATOLL_EVENT_LOOP=uvloop: uvloop is not installed (pip install 'atoll[uvloop]')") from None
    return uvloop.new_event_loop
