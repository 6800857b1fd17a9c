"""The Pull-mode agent (Karmada's ``karmada-agent``), run beside a member cluster.

It registers the member as a ``Cluster`` with ``syncMode: Pull`` in the instance (no credentials
leave the member: the instance never calls it), then:

- watches the Works of ``karmada-es-<cluster>`` in the instance and applies them to the member with
  the same executor the control plane uses for Push clusters (:mod:`.execution`, ``pull=True``),
  reporting ``Applied`` and ``manifestStatuses`` back into the Works; a label-selected watch on the
  member brings the applied objects' status back without polling;
- every ``period`` seconds (Karmada's ``--cluster-status-update-frequency``, 10 s) probes the member
  and posts the Cluster's status (``Ready``, versions, API enablements, node/resource summaries),
  and renews Lease ``karmada-cluster/<cluster>``. The control plane's cluster controller turns the
  cluster not ready (``ClusterStatusUnknown``, ``unreachable`` taint) when the lease is older than
  its ``--cluster-monitor-grace-period``.

``atoll fleet agent`` runs it as a process; tests run it in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, NotFound
from atoll.api.timestamps import format_micro_time
from atoll.client import Client, ClientError
from atoll.fleet import constants as c
from atoll.fleet.karmada.clusters import probe_member
from atoll.fleet.karmada.execution import ExecutionReconciler, work_changed
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.names import execution_namespace
from atoll.fleet.kinds import CLUSTERS, RESOURCE_INTERPRETER_CUSTOMIZATIONS, WORKS
from atoll.runtime import Controller, InformerFactory, ObjectKey

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class LocalMember:
    """The executor's member source in the agent: always the member it runs beside."""

    def __init__(self, member: Client) -> None:
        self.member = member

    async def get(self, cluster: JSON) -> Client:
        return self.member


class PullAgent:
    def __init__(
        self,
        instance: Client,
        member: Client,
        cluster: str,
        *,
        labels: dict[str, str] | None = None,
        period: float = 10.0,
        lease_seconds: int = 40,
        workers: int = 5,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.instance = instance
        self.member = member
        self.cluster = cluster
        self.labels = labels or {}
        self.period = period
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.informers = InformerFactory(instance)
        self.works = self.informers.informer(WORKS, execution_namespace(cluster))
        self.clusters = self.informers.informer(CLUSTERS, field_selector=f"metadata.name={cluster}")
        self.rics = self.informers.informer(RESOURCE_INTERPRETER_CUSTOMIZATIONS)
        self.execution = ExecutionReconciler(
            instance,
            self.works.cache,
            self.clusters.cache,
            LocalMember(member),
            lambda key: self.controller.queue.add(key),
            pull=True,
            interpreter=Interpreter(self.rics.cache),
        )
        self.controller: Controller[ObjectKey] = Controller("karmada-agent-execution", self.execution, workers=workers)
        self.controller.watch(self.works, update_predicate=work_changed)
        self.registered = asyncio.Event()

    async def run(self) -> None:
        await self.register()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.informers.run(), name=f"karmada-agent/{self.cluster}/informers")
                tg.create_task(self.controller.run(), name=f"karmada-agent/{self.cluster}/execution")
                tg.create_task(self._status_loop(), name=f"karmada-agent/{self.cluster}/status")
        finally:
            with contextlib.suppress(Exception):
                await self.execution.watches.close()

    async def register(self) -> None:
        """Create the Cluster (``syncMode: Pull``) unless it exists; refuse to take over a Push one."""
        body = {
            "apiVersion": CLUSTERS.api_version,
            "kind": "Cluster",
            "metadata": {"name": self.cluster, "labels": self.labels},
            "spec": {"syncMode": "Pull", "apiEndpoint": self.member.server},
        }
        try:
            await self.instance.create(CLUSTERS, body)
        except AlreadyExists:
            current = await self.instance.get(CLUSTERS, self.cluster)
            mode = (current.get("spec") or {}).get("syncMode") or "Push"
            if mode != "Pull":
                raise AgentError(
                    f"cluster {self.cluster!r} is registered with syncMode {mode}: unjoin it before running an agent"
                ) from None
        self.registered.set()

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.report()
            except (ClientError, APIError) as exc:
                log.warning("cluster %s: cannot report status to the instance: %s", self.cluster, exc)
            await self.clock.sleep(self.period)

    async def report(self) -> None:
        """Probe the member, post the Cluster's status and renew the lease."""
        await self._renew()
        try:
            cluster = await self.instance.get(CLUSTERS, self.cluster)
        except NotFound:  # unjoined: register again (as karmada-agent does on restart)
            await self.register()
            cluster = await self.instance.get(CLUSTERS, self.cluster)
        status, _taint = await probe_member(self.member, cluster.get("status") or {})
        if status != cluster.get("status"):
            await self.instance.patch(CLUSTERS, self.cluster, {"status": status}, subresource="status")

    async def _renew(self) -> None:
        now = format_micro_time(self.clock.now())
        spec = {"holderIdentity": f"karmada-agent-{self.cluster}", "leaseDurationSeconds": self.lease_seconds}
        try:
            await self.instance.patch(
                kinds.LEASES, self.cluster, {"spec": {**spec, "renewTime": now}}, c.CLUSTER_NAMESPACE
            )
        except NotFound:
            body = {"metadata": {"name": self.cluster}, "spec": {**spec, "acquireTime": now, "renewTime": now}}
            with contextlib.suppress(AlreadyExists):
                await self.instance.create(kinds.LEASES, body, c.CLUSTER_NAMESPACE)


class AgentError(Exception):
    """The agent cannot serve this cluster (the message says why)."""
