"""The TaskResourceGroup's two timers, on the injected clock: the retry after ``ReserveFailed``
and the lifecycle deadline.

Deadlines are computed from status timestamps (``startTime``, ``lastTransitionTime``), so a
restarted controller re-arms them where they were. One pending timer per group; the earlier
deadline wins when both are armed. A timer only re-enqueues the group: the reconcile decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atoll.api.clock import Clock, TimerHandle
from atoll.api.kuscia_tasks import DEFAULT_LIFECYCLE_SECONDS, DEFAULT_RETRY_INTERVAL_SECONDS
from atoll.api.timestamps import try_parse_time
from atoll.runtime import ObjectKey

JSON = dict[str, Any]


class GroupTimers:
    def __init__(self, clock: Clock, enqueue: Callable[[ObjectKey], None]) -> None:
        self.clock = clock
        self.enqueue = enqueue
        self._timers: dict[ObjectKey, tuple[float, TimerHandle]] = {}

    def start(self, group: JSON) -> float:
        """``status.startTime`` (written by the first reconcile, on this controller's clock)."""
        started = try_parse_time(str((group.get("status") or {}).get("startTime") or ""))
        return started if started is not None else self.clock.now()

    def lifecycle_due(self, group: JSON) -> float:
        seconds = int((group.get("spec") or {}).get("lifecycleSeconds") or DEFAULT_LIFECYCLE_SECONDS)
        return self.start(group) + seconds

    def expired(self, group: JSON) -> bool:
        return self.clock.now() >= self.lifecycle_due(group)

    def retry_at(self, group: JSON, now: str | None) -> float:
        """``retryIntervalSeconds`` after ``now`` (or after the last transition)."""
        seconds = int((group.get("spec") or {}).get("retryIntervalSeconds") or DEFAULT_RETRY_INTERVAL_SECONDS)
        since = try_parse_time(now or str((group.get("status") or {}).get("lastTransitionTime") or ""))
        return (since if since is not None else self.clock.now()) + seconds

    def arm_lifecycle(self, group: JSON) -> None:
        self.arm(group, self.lifecycle_due(group), keep_earlier=True)

    def arm(self, group: JSON, due: float, *, keep_earlier: bool = False) -> None:
        key = ObjectKey(None, group["metadata"]["name"])
        current = self._timers.get(key)
        if current is not None:
            if keep_earlier and self.clock.now() < current[0] <= due:
                return
            current[1].cancel()
        handle = self.clock.call_later(due - self.clock.now(), lambda: self._fire(key))
        self._timers[key] = (due, handle)

    def cancel(self, key: ObjectKey) -> None:
        current = self._timers.pop(key, None)
        if current is not None:
            current[1].cancel()

    def _fire(self, key: ObjectKey) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)
