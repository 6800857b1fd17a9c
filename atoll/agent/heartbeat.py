"""Node registration and heartbeats: the Node object, its Lease, and status pushes.

* **Register** creates the Node, or takes over an existing one of the same name (Kuscia's node
  reuse): labels and taint are merged in, the stop-timestamp label is removed.
* **Lease** ``kube-node-lease/<node>`` renewed every ``lease_renew`` seconds with
  ``leaseDurationSeconds = lease_duration``; the node lifecycle controller marks the Node
  ``Unknown`` when renewals stop.
* **Status** is recomputed every ``status_check`` seconds and written through ``/status`` when it
  changed (heartbeat times aside), when the last write is older than ``status_max_age``, or when
  a condition on the server differs from ours — as kubelet compares with the Node it reads, so a
  Node the lifecycle controller marked ``Unknown`` while this agent was cut off reads ``Ready``
  again at the next check after it is back, not up to ``status_max_age`` later.
* **Stop** labels the Node ``node.kuscia.secretflow/stop-timestamp`` (as Kuscia) and leaves the
  Lease to expire, so a crashed and a stopped agent look the same to the control plane.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.agent.node import (
    AGENT_TAINT,
    LABEL_STOP_TIMESTAMP,
    comparable,
    node_object,
    node_status,
    with_conditions,
)
from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.constants import NODE_LEASE_NAMESPACE
from atoll.api.errors import AlreadyExists, APIError, Conflict, NotFound
from atoll.api.timestamps import format_micro_time
from atoll.client import Client, ClientError

JSON = dict[str, Any]
log = logging.getLogger(__name__)


def conditions_differ(ours: JSON, server: JSON) -> bool:
    """Whether the server's Node shows a condition status other than the one we last wrote."""
    theirs = {c.get("type"): c.get("status") for c in server.get("conditions") or ()}
    return any(theirs.get(c.get("type")) != c.get("status") for c in ours.get("conditions") or ())


class NodeHeartbeat:
    """Registers this agent's Node and keeps its Lease and status fresh."""

    def __init__(self, client: Client, config: AgentConfig, *, log_port: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.clock = clock
        self.config = config
        self.log_port = log_port
        self.uid = ""
        self._status: JSON = {}
        self._pushed_at = 0.0
        self.extra_conditions: Callable[[], list[JSON]] | None = None
        """Runtime conditions added to the Node's (RunK: ``RunKPermissions``), without times."""

    async def register(self) -> JSON:
        """Create the Node or adopt the existing one; returns the Node."""
        wanted = node_object(self.config, self.log_port)
        try:
            node = await self.client.create(kinds.NODES, wanted)
        except AlreadyExists:
            node = await self._adopt(wanted)
        self.uid = str(node["metadata"].get("uid", ""))
        self._status = wanted["status"]
        await self._push_status(force=True)
        log.info("node %s registered (log endpoint port %d)", self.config.name, self.log_port)
        return node

    async def _adopt(self, wanted: JSON) -> JSON:
        for _ in range(5):
            current = await self.client.get(kinds.NODES, self.config.name)
            labels = {**(current["metadata"].get("labels") or {}), **wanted["metadata"]["labels"]}
            labels.pop(LABEL_STOP_TIMESTAMP, None)
            taints = [t for t in (current.get("spec") or {}).get("taints") or [] if t.get("key") != AGENT_TAINT["key"]]
            body = {
                **current,
                "metadata": {**current["metadata"], "labels": labels},
                "spec": {**(current.get("spec") or {}), "taints": [*taints, *wanted["spec"]["taints"]]},
            }
            try:
                return await self.client.update(kinds.NODES, body)
            except Conflict:
                continue
        raise Conflict(f"node {self.config.name}: could not adopt after 5 conflicts")

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._lease_loop(), name=f"agent/{self.config.name}/lease")
            tg.create_task(self._status_loop(), name=f"agent/{self.config.name}/node-status")

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self.renew_lease()
            except (APIError, ClientError) as exc:
                log.warning("node %s: lease renewal failed: %s", self.config.name, exc)
            await self.clock.sleep(self.config.timers.lease_renew)

    async def renew_lease(self) -> None:
        name = self.config.name
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": int(self.config.timers.lease_duration),
            "renewTime": format_micro_time(self.clock.now()),
        }
        owner = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": self.uid}] if self.uid else []
        try:
            await self.client.patch(kinds.LEASES, name, {"spec": spec}, NODE_LEASE_NAMESPACE)
        except NotFound:
            body = {"metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE, "ownerReferences": owner},
                    "spec": spec}
            try:
                await self.client.create(kinds.LEASES, body)
            except AlreadyExists:
                await self.client.patch(kinds.LEASES, name, {"spec": spec}, NODE_LEASE_NAMESPACE)

    async def _status_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.timers.status_check)
            try:
                await self._push_status(force=False)
            except (APIError, ClientError) as exc:
                log.warning("node %s: status update failed: %s", self.config.name, exc)

    async def _push_status(self, *, force: bool, ready: bool = True) -> None:
        previous, overwritten = self._status, False
        if not force:
            try:
                server = (await self.client.get(kinds.NODES, self.config.name)).get("status") or {}
            except NotFound:
                server = {}  # deleted: the push below registers it again
            overwritten = conditions_differ(previous, server)
            if overwritten:  # e.g. Unknown from the lifecycle controller: transition times from there
                previous = server
        status = await asyncio.to_thread(node_status, self.config, previous, self.log_port, ready=ready)
        if self.extra_conditions is not None:
            status["conditions"] = with_conditions(status["conditions"], self.extra_conditions(), previous)
        stale = self.clock.monotonic() - self._pushed_at >= self.config.timers.status_max_age
        if not force and not stale and not overwritten and comparable(status) == comparable(self._status):
            return
        try:
            await self.client.patch(kinds.NODES, self.config.name, {"status": status}, subresource="status")
        except NotFound:
            log.warning("node %s was deleted; registering again", self.config.name)
            await self.register()
            return
        self._status = status
        self._pushed_at = self.clock.monotonic()

    async def publish_log_port(self, port: int) -> None:
        """The log endpoint came up after registration (a serving certificate was just issued)."""
        self.log_port = port
        await self._push_status(force=True)

    async def mark_stopped(self) -> None:
        """Best effort on a clean stop: the stop-timestamp label (Kuscia)."""
        patch = {"metadata": {"labels": {LABEL_STOP_TIMESTAMP: str(int(self.clock.now()))}}}
        try:
            await self.client.patch(kinds.NODES, self.config.name, patch)
        except (APIError, ClientError) as exc:
            log.info("node %s: could not mark stopped: %s", self.config.name, exc)
