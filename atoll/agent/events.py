"""Best-effort ``v1`` Events about pods (Started, Killing, BackOff, ErrImageNeverPull, Unhealthy, …).

Events are for humans (``kubectl describe``); a failure to record one is logged, never raised.
They are sent in order by a single task, a few at a time (``EVENTS_IN_FLIGHT``, one while status
writes are held back; like the kubelet's rate-limited event broadcaster), so a burst of pod starts
does not put one event create per pod in front of the pods' status writes. Status writes also go
first while they are pending: a pod's status writer :meth:`~EventRecorder.holding` the recorder
keeps queued events waiting, each at most ``HOLD_MAX_SECONDS`` after it was queued (its timestamps
are those of the queueing). In a burst of pod starts the agent and the API server then spend their
CPU on the writes that make pods Running, and the Events follow (docs/performance.md, round 9).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from atoll.api import kinds
from atoll.api.errors import APIError
from atoll.api.timestamps import now_time
from atoll.client import Client, ClientError

JSON = dict[str, Any]
log = logging.getLogger(__name__)
HOLD_MAX_SECONDS = 1.0
"""The longest a queued event waits for status writes (then it is sent even while they continue)."""
EVENTS_IN_FLIGHT = 4
"""Events created at once: the API server commits concurrent writes in one batch, so a few in flight
cost it about half as much CPU each as one at a time (docs/performance.md, round 9)."""


class EventRecorder:
    def __init__(self, client: Client, node_name: str) -> None:
        self.client = client
        self.node_name = node_name
        self._queue: collections.deque[tuple[float, JSON]] = collections.deque()
        """(loop time when queued, event)"""
        self._sender: asyncio.Task[None] | None = None
        self._holds = 0
        self._released = asyncio.Event()
        self._released.set()
        self.held_back = 0
        """How many times the sender waited behind holds (tests wait on it)."""

    @contextmanager
    def holding(self) -> Iterator[None]:
        """While any holder is inside this block, queued events wait (each at most
        ``HOLD_MAX_SECONDS`` after it was queued): a pod's status write goes first."""
        self._holds += 1
        self._released.clear()
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._released.set()

    def pod_event(self, pod: JSON, reason: str, message: str, *, warning: bool = False, field_path: str = "") -> None:
        """Queue an event; returns at once (the sender task of this recorder writes it)."""
        md = pod["metadata"]
        involved: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": md.get("namespace"),
            "name": md.get("name"),
            "uid": md.get("uid"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        self.event(str(md.get("namespace")), involved, reason, message, warning=warning)

    def event(self, namespace: str, involved: JSON, reason: str, message: str, *, warning: bool = False) -> None:
        """Queue an event about ``involved`` in ``namespace``."""
        now = now_time()
        event = {
            "metadata": {"name": f"{involved.get('name')}.{os.urandom(8).hex()}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self.node_name},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_name,
        }
        loop = asyncio.get_running_loop()
        self._queue.append((loop.time(), event))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send(), name="events")

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            queued = self._queue[0][0]
            if self._holds and loop.time() < queued + HOLD_MAX_SECONDS:
                self.held_back += 1
                try:
                    async with asyncio.timeout_at(queued + HOLD_MAX_SECONDS):
                        await self._released.wait()
                except TimeoutError:
                    pass
                continue
            batch = [self._queue.popleft()[1]]
            while self._queue and len(batch) < EVENTS_IN_FLIGHT and not self._holds:
                batch.append(self._queue.popleft()[1])
            await asyncio.gather(*(self._create(e) for e in batch))

    async def _create(self, event: JSON) -> None:
        try:
            await self.client.create(kinds.EVENTS, event)
        except (APIError, ClientError) as exc:
            log.debug("event %s not recorded: %s", event["reason"], exc)

    async def flush(self) -> None:
        """Wait until every queued event was sent (or failed)."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
