"""The cluster controllers of one instance.

- Lifecycle: a new Cluster gets ``karmada.io/cluster-controller`` and its execution namespace
  ``karmada-es-<cluster>``; a deleted one loses its Works and namespace, then the finalizer.
- Status (every ``period`` seconds, Karmada's ``--cluster-status-update-frequency``): probe the
  member's ``/readyz`` and ``/version``; ``Ready`` True/False (``ClusterReady``,
  ``ClusterNotReachable``, ``ClusterNotReady``); ``kubernetesVersion``; ``apiEnablements`` from
  discovery with ``CompleteAPIEnablements`` (False when some group-versions failed);
  ``nodeSummary`` (total/ready) and ``resourceSummary`` (``allocatable`` of ready nodes,
  ``allocated`` = requests of the pods bound to them). Pull clusters are probed by their agent
  (:mod:`.agent`), which also renews Lease ``karmada-cluster/<name>``; here a lease older than the
  grace period makes the cluster not ready (``ClusterStatusUnknown``).
- Taints (:func:`.failover.cluster_taints`): ``cluster.karmada.io/not-ready`` or ``unreachable``
  ``NoSchedule`` while not ready, and ``NoExecute`` once that lasted ``failure_threshold``.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from fractions import Fraction
from typing import Any

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, NotFound
from atoll.api.quantity import format_quantity, parse_quantity
from atoll.api.timestamps import try_parse_time
from atoll.client import Client, ClientError
from atoll.fleet import constants as c
from atoll.fleet.karmada import failover
from atoll.fleet.karmada.conditions import is_true, set_condition
from atoll.fleet.karmada.execution import is_pull
from atoll.fleet.karmada.members import MemberClients, MemberError
from atoll.fleet.karmada.names import execution_namespace
from atoll.fleet.kinds import CLUSTERS, WORKS
from atoll.runtime import Cache, Informer, ObjectKey, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)
_RESOURCES = ("cpu", "memory", "pods")
_LIKE = {"memory": "Ki"}
"""Memory sums are printed in binary units (``28Gi``), like kubectl shows them."""


class ClusterReconciler:
    def __init__(
        self,
        client: Client,
        clusters: Cache,
        members: MemberClients,
        *,
        period: float = 10.0,
        failure_threshold: float = 30.0,
        grace: float = 40.0,
        clock: Clock = SYSTEM_CLOCK,
        leases: Informer | None = None,
    ) -> None:
        self.leases = leases
        """The Pull agents' Leases (None, or not synced yet: read each from the API)."""
        self.failure_threshold = failure_threshold
        """Karmada's ``--cluster-failure-threshold``: not ready this long → ``NoExecute``."""
        self.grace = grace
        """Karmada's ``--cluster-monitor-grace-period``: a Pull agent's lease older → not ready."""
        self.clock = clock
        self.client = client
        self.clusters = clusters
        self.members = members
        self.period = period

    async def reconcile(self, key: ObjectKey) -> Result:
        cluster = self.clusters.get(key.name)
        if cluster is None:
            await self.members.drop(key.name)
            return Result()
        finalizers = list(cluster["metadata"].get("finalizers") or ())
        if cluster["metadata"].get("deletionTimestamp"):
            return await self._remove(cluster, finalizers)
        if c.CLUSTER_FINALIZER not in finalizers:
            await self.client.patch(
                CLUSTERS,
                key.name,
                {
                    "metadata": {
                        "finalizers": [*finalizers, c.CLUSTER_FINALIZER],
                        "resourceVersion": cluster["metadata"]["resourceVersion"],
                    }
                },
            )
            return Result()
        with contextlib.suppress(AlreadyExists):
            await self.client.create(kinds.NAMESPACES, {"metadata": {"name": execution_namespace(key.name)}})
        status, taint = await (self._pull_status(cluster) if is_pull(cluster) else self._probe(cluster))
        due = await self._write(cluster, status, taint)
        return Result(requeue_after=self.period if due is None else min(self.period, due + 0.05))

    async def _remove(self, cluster: JSON, finalizers: list[str]) -> Result:
        name = cluster["metadata"]["name"]
        ns = execution_namespace(name)
        works = (await self.client.list(WORKS, ns)).get("items") or ()
        for work in works:
            with contextlib.suppress(NotFound):
                await self.client.delete(WORKS, work["metadata"]["name"], ns)
        if works:
            return Result(requeue_after=0.5)  # the execution controller cleans the member first
        with contextlib.suppress(NotFound):
            await self.client.delete(kinds.NAMESPACES, ns)
        await self.members.drop(name)
        remaining = [f for f in finalizers if f != c.CLUSTER_FINALIZER]
        with contextlib.suppress(NotFound):
            await self.client.patch(CLUSTERS, name, {"metadata": {"finalizers": remaining or None}})
        return Result()

    async def _probe(self, cluster: JSON) -> tuple[JSON, str]:
        """The new status and the taint key it implies ("" when ready)."""
        status = dict(cluster.get("status") or {})
        try:
            member = await self.members.get(cluster)
        except MemberError as exc:
            status["conditions"] = set_condition(
                status.get("conditions"), "Ready", False, "ClusterNotReachable", str(exc)
            )
            return status, c.TAINT_UNREACHABLE
        return await probe_member(member, status)

    async def _lease(self, name: str) -> JSON | None:
        if self.leases is not None and self.leases.has_synced:
            return self.leases.cache.get(name, c.CLUSTER_NAMESPACE)
        try:
            return await self.client.get(kinds.LEASES, name, c.CLUSTER_NAMESPACE)
        except NotFound:
            return None

    async def _pull_status(self, cluster: JSON) -> tuple[JSON, str]:
        """A Pull cluster's agent posts its status and renews Lease ``karmada-cluster/<name>``; when
        the lease is older than ``grace`` the cluster is not ready (``ClusterStatusUnknown``)."""
        status = dict(cluster.get("status") or {})
        name = cluster["metadata"]["name"]
        lease = await self._lease(name)
        renewed = try_parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
        age = None if renewed is None else self.clock.now() - renewed
        if age is not None and age <= self.grace:
            return status, "" if is_true(cluster, "Ready") else c.TAINT_NOT_READY
        first_seen = try_parse_time(cluster["metadata"].get("creationTimestamp")) or self.clock.now()
        if renewed is None and self.clock.now() - first_seen <= self.grace:
            return status, c.TAINT_NOT_READY  # the agent has not registered its lease yet
        message = "cluster agent stopped posting cluster status" + (f" ({age:.0f}s ago)" if age is not None else "")
        status["conditions"] = set_condition(status.get("conditions"), "Ready", False, "ClusterStatusUnknown", message)
        return status, c.TAINT_UNREACHABLE

    async def _write(self, cluster: JSON, status: JSON, taint: str) -> float | None:
        """Write status and taints; in how many seconds the NoExecute taint is due (None: not)."""
        name = cluster["metadata"]["name"]
        spec = cluster.get("spec") or {}
        taints, due = failover.cluster_taints(
            {**cluster, "status": status}, taint, self.clock.now(), self.failure_threshold
        )
        if taints != list(spec.get("taints") or ()):
            await self.client.patch(CLUSTERS, name, {"spec": {"taints": taints or None}})
        if status != cluster.get("status"):
            await self.client.patch(CLUSTERS, name, {"status": status}, subresource="status")
        return due


def _enablements(resources: list[Any]) -> list[JSON]:
    by_gv: dict[str, list[JSON]] = defaultdict(list)
    for rd in resources:
        if "/" in rd.plural:
            continue
        by_gv[rd.api_version].append({"name": rd.plural, "kind": rd.kind})
    return [{"groupVersion": gv, "resources": sorted(rs, key=lambda r: r["name"])} for gv, rs in sorted(by_gv.items())]


def _set_enablements(status: JSON, resources: list[Any], failed: dict[str, Exception]) -> None:
    """``apiEnablements`` and Karmada's ``CompleteAPIEnablements`` condition: False when some
    group-versions failed discovery (a member going down answers ``/readyz`` and then not the rest)
    or none answered — the scheduler then keeps the clusters already placed (an untrusted list moves
    nothing; only the taint manager does). Nothing collected: the last list stays."""
    found = _enablements(resources)
    if found:
        status["apiEnablements"] = found
    if not found:
        complete, reason, message = False, "EmptyAPIEnablements", "collected empty APIEnablements from the cluster"
    elif failed:
        complete, reason = False, "PartialAPIEnablements"
        message = f"might collect partial APIEnablements: {len(failed)} group-version(s) failed discovery"
    else:
        complete, reason, message = True, "Complete", "collected complete APIEnablements from the cluster"
    conditions = set_condition(status.get("conditions"), c.COMPLETE_API_ENABLEMENTS, complete, reason, message)
    status["conditions"] = sorted(conditions, key=lambda x: x.get("type") != "Ready")  # Ready stays first


def _ready(node: JSON) -> bool:
    return any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (node.get("status") or {}).get("conditions") or ()
    )


def summarise(nodes: list[JSON], pods: list[JSON]) -> tuple[JSON, JSON]:
    """``nodeSummary`` and ``resourceSummary`` of a member from its nodes and pods."""
    ready = [n for n in nodes if _ready(n)]
    allocatable: dict[str, Fraction] = defaultdict(Fraction)
    for node in ready:
        for res, qty in ((node.get("status") or {}).get("allocatable") or {}).items():
            if res in _RESOURCES:
                allocatable[res] += parse_quantity(qty)
    ready_names = {n["metadata"]["name"] for n in ready}
    allocated: dict[str, Fraction] = defaultdict(Fraction)
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") not in ready_names:
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        allocated["pods"] += 1
        for container in (pod.get("spec") or {}).get("containers") or ():
            for res, qty in (((container.get("resources") or {}).get("requests")) or {}).items():
                if res in ("cpu", "memory"):
                    allocated[res] += parse_quantity(qty)
    return (
        {"totalNum": len(nodes), "readyNum": len(ready)},
        {
            "allocatable": {k: format_quantity(v, _LIKE.get(k, "")) for k, v in sorted(allocatable.items())},
            "allocated": {k: format_quantity(v, _LIKE.get(k, "")) for k, v in sorted(allocated.items())},
        },
    )


async def probe_member(member: Client, status: JSON) -> tuple[JSON, str]:
    """Probe a member (``/readyz``, ``/version``, discovery, nodes and pods): its new status and
    the taint key that implies ("" when ready). Shared by the control plane (Push) and the agent."""
    status = dict(status)
    try:
        await member.request("GET", "/readyz")
    except (ClientError, APIError) as exc:
        status["conditions"] = set_condition(
            status.get("conditions"), "Ready", False, "ClusterNotReachable", f"cluster is not reachable: {exc}"
        )
        return status, c.TAINT_UNREACHABLE
    try:
        version = await member.get_path("/version")
        status["kubernetesVersion"] = version.get("gitVersion")
        resources, failed = await member.preferred_resources()
        _set_enablements(status, resources, failed)
        nodes = (await member.list(kinds.NODES)).get("items") or []
        pods = (await member.list(kinds.PODS)).get("items") or []
    except (ClientError, APIError) as exc:
        status["conditions"] = set_condition(status.get("conditions"), "Ready", False, "ClusterNotReady", str(exc))
        return status, c.TAINT_NOT_READY
    status["nodeSummary"], status["resourceSummary"] = summarise(nodes, pods)
    status["conditions"] = set_condition(
        status.get("conditions"), "Ready", True, "ClusterReady", "cluster is healthy and ready to accept workloads"
    )
    return status, ""
