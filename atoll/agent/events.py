"""Best-effort ``v1`` Events about pods (Started, Killing, BackOff, ErrImageNeverPull, Unhealthy, …).

Events are for humans (``kubectl describe``); a failure to record one is logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from atoll.api import kinds
from atoll.api.errors import APIError
from atoll.client import Client, ClientError

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, client: Client, node_name: str) -> None:
        self.client = client
        self.node_name = node_name
        self._tasks: set[asyncio.Task[None]] = set()

    def pod_event(self, pod: JSON, reason: str, message: str, *, warning: bool = False, field_path: str = "") -> None:
        """Queue an event; returns at once (the write runs in a task kept by this recorder)."""
        md = pod["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        involved: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": md.get("namespace"),
            "name": md.get("name"),
            "uid": md.get("uid"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        event = {
            "metadata": {"name": f"{md.get('name')}.{os.urandom(8).hex()}", "namespace": md.get("namespace")},
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
        task = asyncio.get_running_loop().create_task(self._create(event), name=f"event/{reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create(self, event: JSON) -> None:
        try:
            await self.client.create(kinds.EVENTS, event)
        except (APIError, ClientError) as exc:
            log.debug("event %s not recorded: %s", event["reason"], exc)

    async def flush(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
