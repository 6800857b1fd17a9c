"""Best-effort ``v1`` Events about pods (Started, Killing, BackOff, ErrImageNeverPull, Unhealthy, …).

Events are for humans (``kubectl describe``); a failure to record one is logged, never raised.
They are sent one at a time, in order, by a single task (like the kubelet's rate-limited event
broadcaster), so a burst of pod starts does not put one event create per pod in front of the pods'
status writes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import Any

from atoll.api import kinds
from atoll.api.errors import APIError
from atoll.api.timestamps import now_time
from atoll.client import Client, ClientError

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, client: Client, node_name: str) -> None:
        self.client = client
        self.node_name = node_name
        self._queue: collections.deque[JSON] = collections.deque()
        self._sender: asyncio.Task[None] | None = None

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
        self._queue.append(event)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send(), name="events")

    async def _send(self) -> None:
        while self._queue:
            event = self._queue.popleft()
            try:
                await self.client.create(kinds.EVENTS, event)
            except (APIError, ClientError) as exc:
                log.debug("event %s not recorded: %s", event["reason"], exc)

    async def flush(self) -> None:
        """Wait until every queued event was sent (or failed)."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
