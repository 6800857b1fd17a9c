"""``spec.activeDeadlineSeconds``, enforced as the kubelet does (its active deadline handler).

Once ``status.startTime`` plus the deadline has passed, the pod's containers are stopped (SIGTERM,
SIGKILL after the grace period, as for a deletion), none is started or restarted again whatever the
restart policy, and the pod is ``Failed`` with reason ``DeadlineExceeded``. The deadline may be set
or lowered on a running pod (``podupdate``): the timer is recomputed at once. Time comes from the
agent's injected :class:`~atoll.api.clock.Clock`, so tests move it by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from atoll.api.clock import Clock
from atoll.api.timestamps import try_parse_time

JSON = dict[str, Any]
REASON = "DeadlineExceeded"
MESSAGE = "Pod was active on the node longer than the specified deadline"


def remaining(pod: JSON, start_time: str, now: float) -> float | None:
    """Seconds left before the pod's deadline (≤ 0: passed); None without a deadline."""
    seconds = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    started = try_parse_time(start_time)
    if seconds is None or started is None:
        return None
    return started + float(seconds) - now


async def wait_deadline(
    pod: Callable[[], JSON], start_time: str, clock: Clock, changed: asyncio.Event, halt: asyncio.Event
) -> bool:
    """Wait until the deadline of ``pod()`` passes (True), recomputing it whenever ``changed`` is set,
    or until ``halt`` is set first (False)."""
    while not halt.is_set():
        changed.clear()
        left = remaining(pod(), start_time, clock.now())
        if left is not None and left <= 0:
            return True
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(halt.wait())]
        if left is not None:
            waits.append(asyncio.ensure_future(clock.sleep(left)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
    return False
