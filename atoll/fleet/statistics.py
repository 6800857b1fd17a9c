"""Kairship's resource statistics and status sync controllers: every ``period`` seconds each
running instance's ``status.summary`` is recomputed from its member Clusters and its own objects:

- ``clusterSummary`` / ``nodeSummary`` (``NumStatistic``: ``totalNum``, ``readyNum``): member
  clusters (Ready) and their nodes (from each Cluster's ``nodeSummary``);
- ``resourceSummary``: ``allocatable`` and ``allocated`` summed over the members;
- ``resourceTotalNum``: configmaps, secrets, services and namespaces on the instance's control plane;
- ``policyTotalNum``: PropagationPolicies, ClusterPropagationPolicies, OverridePolicies and
  ClusterOverridePolicies;
- ``workLoadSummary``: per propagated kind (lower case), ``totalNum`` bindings and ``readyNum``
  of them fully applied and healthy in every target cluster.

A member going down shows within one period: its Cluster turns NotReady (cluster status
controller) and ``clusterSummary.readyNum`` drops. ``status.lastSummaryTime`` says when.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from fractions import Fraction
from typing import Any

from atoll.api import kinds
from atoll.api.errors import APIError, NotFound
from atoll.api.quantity import format_quantity, parse_quantity
from atoll.api.timestamps import format_time
from atoll.client import Client, ClientError
from atoll.fleet.karmada.conditions import is_true
from atoll.fleet.kinds import (
    CLUSTER_OVERRIDE_POLICIES,
    CLUSTER_PROPAGATION_POLICIES,
    CLUSTER_RESOURCE_BINDINGS,
    CLUSTERS,
    INSTANCES,
    OVERRIDE_POLICIES,
    PROPAGATION_POLICIES,
    RESOURCE_BINDINGS,
)
from atoll.fleet.planes import PlaneSet

JSON = dict[str, Any]
log = logging.getLogger(__name__)
_COUNTED = (
    ("configmaps", kinds.CONFIGMAPS),
    ("secrets", kinds.SECRETS),
    ("services", kinds.SERVICES),
    ("namespaces", kinds.NAMESPACES),
)
_POLICIES = (
    ("propagationPolicy", PROPAGATION_POLICIES),
    ("clusterPropagationPolicy", CLUSTER_PROPAGATION_POLICIES),
    ("overridePolicy", OVERRIDE_POLICIES),
    ("clusterOverridePolicy", CLUSTER_OVERRIDE_POLICIES),
)


def _sum(clusters: list[JSON], field: str) -> dict[str, str]:
    total: dict[str, Fraction] = defaultdict(Fraction)
    for cluster in clusters:
        for res, qty in ((((cluster.get("status") or {}).get("resourceSummary") or {}).get(field)) or {}).items():
            total[res] += parse_quantity(qty)
    return {k: format_quantity(v, "Ki" if k == "memory" else "") for k, v in sorted(total.items())}


def _healthy(binding: JSON) -> bool:
    aggregated = (binding.get("status") or {}).get("aggregatedStatus") or ()
    return is_true(binding, "FullyApplied") and all(a.get("health", "Healthy") == "Healthy" for a in aggregated)


async def instance_summary(client: Client) -> JSON:
    clusters = list((await client.list(CLUSTERS)).get("items") or ())
    ready = [c for c in clusters if is_true(c, "Ready")]
    nodes = [(c.get("status") or {}).get("nodeSummary") or {} for c in ready]
    workloads: dict[str, dict[str, int]] = {}
    for rd in (RESOURCE_BINDINGS, CLUSTER_RESOURCE_BINDINGS):
        for binding in (await client.list(rd)).get("items") or ():
            kind = str(((binding.get("spec") or {}).get("resource") or {}).get("kind") or "").lower()
            entry = workloads.setdefault(kind, {"totalNum": 0, "readyNum": 0})
            entry["totalNum"] += 1
            entry["readyNum"] += int(_healthy(binding))
    counts = {name: len((await client.list(rd)).get("items") or ()) for name, rd in _COUNTED}
    policies = {name: len((await client.list(rd)).get("items") or ()) for name, rd in _POLICIES}
    return {
        "clusterSummary": {"totalNum": len(clusters), "readyNum": len(ready)},
        "nodeSummary": {
            "totalNum": sum(int(n.get("totalNum") or 0) for n in nodes),
            "readyNum": sum(int(n.get("readyNum") or 0) for n in nodes),
        },
        "resourceSummary": {"allocatable": _sum(ready, "allocatable"), "allocated": _sum(ready, "allocated")},
        "resourceTotalNum": counts,
        "policyTotalNum": policies,
        "workLoadSummary": dict(sorted(workloads.items())),
    }


class StatisticsController:
    def __init__(self, client: Client, planes: PlaneSet, *, period: float = 10.0) -> None:
        self.client = client
        self.planes = planes
        self.period = period

    async def run(self) -> None:
        while True:
            await self.sync_all()
            await asyncio.sleep(self.period)

    async def sync_all(self) -> None:
        for name in self.planes.names():
            with contextlib.suppress(NotFound):
                await self.sync(name)

    async def sync(self, name: str) -> None:
        client = self.planes.client(name)
        if client is None:
            return
        try:
            summary = await instance_summary(client)
        except (ClientError, APIError) as exc:
            log.warning("instance %s: statistics not collected: %s", name, exc)
            return
        instance = await self.client.get(INSTANCES, name)
        status = instance.get("status") or {}
        if status.get("summary") == summary and status.get("lastSummaryTime"):
            return
        await self.client.patch(
            INSTANCES,
            name,
            {"status": {"summary": summary, "lastSummaryTime": format_time(time.time())}},
            subresource="status",
        )
