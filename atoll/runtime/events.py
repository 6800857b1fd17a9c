"""A small core/v1 Event recorder (the scheduler's ``FailedScheduling``, pooling's ``FailedSchedulingPod``, ...).

Repeats of the same (object, type, reason, message) within the process bump ``count`` and
``lastTimestamp`` of the existing Event instead of creating another, like client-go's event
correlator, so a pod retried for hours leaves one Event, not thousands. Recording is best
effort: a failed write is logged and never fails scheduling. With ``correlate`` (the workload
controllers' pod creations and deletions) client-go's aggregation and spam filter apply too
(:mod:`atoll.runtime.eventcorrelator`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from typing import Any

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import APIError, NotFound
from atoll.api.kinds import EVENTS
from atoll.api.timestamps import now_time
from atoll.client import Client, ClientError
from atoll.runtime.eventcorrelator import EventCorrelator

JSON = dict[str, Any]
log = logging.getLogger(__name__)
MAX_REMEMBERED = 4096


class EventRecorder:
    """Writes Events about objects on behalf of ``component`` (``reportingComponent``)."""

    def __init__(self, client: Client, component: str, instance: str = "", *, correlate: bool = False,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.component = component
        self.instance = instance or f"{component}-{secrets.token_hex(4)}"
        self._seen: OrderedDict[tuple[str, ...], tuple[str, int]] = OrderedDict()
        self.correlator = EventCorrelator(clock) if correlate else None
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    async def record(self, obj: JSON, event_type: str, reason: str, message: str, *, action: str = "") -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        key: tuple[str, ...] = (str(meta.get("uid", "")), namespace, event_type, reason, message)
        if self.correlator is not None:
            decided = self.correlator.correlate(key[:2], event_type, reason, message)
            if decided is None:
                log.debug("event %s for %s/%s dropped by the spam filter", reason, namespace, meta.get("name"))
                return
            key = (decided[0],)
            message = decided[1]
            if len(self._locks) > MAX_REMEMBERED:
                self._locks.clear()
            # one write at a time per Event, so concurrent repeats patch it instead of creating copies
            async with self._locks.setdefault(key, asyncio.Lock()):
                await self._write(obj, key, namespace, event_type, reason, message, action)
            return
        await self._write(obj, key, namespace, event_type, reason, message, action)

    async def _write(self, obj: JSON, key: tuple[str, ...], namespace: str, event_type: str, reason: str,
                     message: str, action: str) -> None:
        meta = obj.get("metadata") or {}
        try:
            previous = self._seen.get(key)
            if previous is not None:
                name, count = previous
                try:
                    patch = {"count": count + 1, "lastTimestamp": now_time(), "message": message}
                    await self.client.patch(EVENTS, name, patch, namespace)
                    self._remember(key, name, count + 1)
                    return
                except NotFound:
                    pass
            event = self._event(obj, namespace, event_type, reason, message, action)
            await self.client.create(EVENTS, event, namespace)
            self._remember(key, event["metadata"]["name"], 1)
        except (APIError, ClientError) as exc:
            log.warning("could not record event %s for %s/%s: %s", reason, namespace, meta.get("name"), exc)

    def _remember(self, key: tuple[str, ...], name: str, count: int) -> None:
        self._seen[key] = (name, count)
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def _event(self, obj: JSON, namespace: str, event_type: str, reason: str, message: str, action: str) -> JSON:
        meta = obj.get("metadata") or {}
        now = now_time()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name', '')}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": obj.get("kind", "Pod"),
                "namespace": namespace,
                "name": meta.get("name", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "action": action,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "count": 1,
        }
