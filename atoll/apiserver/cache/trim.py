"""Give freed heap memory back to the operating system.

CPython frees objects into glibc's malloc arenas, which keep the pages: after a flood of
requests, or after large objects were replaced, the process RSS stays at its peak though the
memory is free. ``malloc_trim(0)`` returns free pages at the top of the heap and (since glibc
2.8) free whole pages inside it. The API server calls it periodically; it costs about a
millisecond and is a no-op where glibc is absent.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)
TRIM_INTERVAL = 10.0


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


async def trim_periodically(interval: float = TRIM_INTERVAL) -> None:
    func = _malloc_trim()
    if func is None:
        log.debug("malloc_trim is not available; freed memory stays with the process")
        return
    while True:
        await asyncio.sleep(interval)
        func(0)
