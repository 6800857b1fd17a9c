"""client-go's ``EventCorrelator`` for :class:`~atoll.runtime.events.EventRecorder`: aggregation
and the per-object spam filter, on the injected clock.

- **Aggregation** (``EventAggregatorByReasonFunc``): events about one object with the same type
  and reason but different messages are counted per 10 minutes; from the 10th distinct message
  on, they are recorded as one ``(combined from similar events): <latest message>`` Event whose
  ``count`` goes up, instead of one Event each.
- **Spam filter** (``EventSourceObjectSpamFilter``): a token bucket per source and object, 25
  events at once, then one per 5 minutes; events beyond it are dropped.

So a ReplicaSet scaled to 100 leaves 9 ``SuccessfulCreate`` Events plus one combined Event, and
writes 25 times (creates and count patches), like kube-controller-manager, not 100.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TypeVar

from atoll.api.clock import SYSTEM_CLOCK, Clock

MAX_EVENTS = 10  # defaultAggregateMaxEvents
INTERVAL = 600.0  # defaultAggregateIntervalInSeconds
BURST = 25  # defaultSpamBurst
QPS = 1.0 / 300.0  # defaultSpamQPS
MAX_ENTRIES = 4096  # maxLruCacheEntries
COMBINED = "(combined from similar events): "
V = TypeVar("V")


@dataclass(slots=True)
class _Aggregate:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float


class EventCorrelator:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._aggregates: OrderedDict[tuple[str, ...], _Aggregate] = OrderedDict()
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()

    def correlate(self, obj_key: tuple[str, ...], event_type: str, reason: str, message: str) -> tuple[str, str] | None:
        """``(dedupe key, message)`` to record, or None when the spam filter drops the event.

        Events with equal dedupe keys are one Event whose count goes up."""
        now = self.clock.now()
        key, message = self._aggregate((*obj_key, event_type, reason), message, now)
        if not self._allow(obj_key, now):
            return None
        return key, message

    def _aggregate(self, group: tuple[str, ...], message: str, now: float) -> tuple[str, str]:
        record = self._aggregates.get(group)
        if record is None or now - record.last > INTERVAL:
            record = _Aggregate()
        record.messages.add(message)
        record.last = now
        self._remember(self._aggregates, group, record)
        if len(record.messages) < MAX_EVENTS:
            return "\x00".join((*group, message)), message
        record.messages.pop()  # keep the set bounded, as client-go's PopAny
        return "\x00".join((*group, COMBINED)), COMBINED + message

    def _allow(self, obj_key: tuple[str, ...], now: float) -> bool:
        bucket = self._buckets.get(obj_key)
        if bucket is None:
            bucket = _Bucket(tokens=float(BURST), last=now)
        bucket.tokens = min(float(BURST), bucket.tokens + (now - bucket.last) * QPS)
        bucket.last = now
        self._remember(self._buckets, obj_key, bucket)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    @staticmethod
    def _remember(table: OrderedDict[tuple[str, ...], V], key: tuple[str, ...], value: V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_ENTRIES:
            table.popitem(last=False)
