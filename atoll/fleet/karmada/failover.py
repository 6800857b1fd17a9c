"""Cluster failover (Karmada's taint manager and graceful-eviction controller), as pure functions
the detector and the binding controller call.

- A member not Ready gets ``cluster.karmada.io/not-ready`` (Ready False) or ``.../unreachable``
  (not reachable, or a Pull cluster whose agent stopped renewing) with effect ``NoSchedule`` at
  once, and the same key with ``NoExecute`` once the condition has lasted ``failure_threshold``
  seconds (Karmada's ``--cluster-failure-threshold``) — :func:`cluster_taints`.
- A binding placed on a cluster with a ``NoExecute`` taint it does not tolerate is evicted from
  it: the cluster leaves ``spec.clusters`` and a ``gracefulEvictionTasks`` entry records it
  (``reason: TaintUntolerated``, ``producer: TaintManager``). The binding's
  ``placement.clusterTolerations`` count, plus Karmada's webhook defaults (``not-ready`` and
  ``unreachable`` ``NoExecute`` tolerated for 300 s) for keys the policy leaves unsaid; a
  toleration with ``tolerationSeconds`` holds until ``timeAdded`` + seconds —
  :func:`evictions`.
- The scheduler skips clusters with eviction tasks (Karmada's ``ClusterEviction`` filter), and a
  ``NoSchedule`` taint does not move replicas already placed (Karmada's ``TaintToleration`` filter
  only checks ``NoExecute`` for clusters already scheduled) — :func:`schedulable`.
- ``purgeMode`` ``Gracefully`` (default; ``failover.cluster.purgeMode``): the evicted cluster's Work
  stays until the replicas moved elsewhere are applied and healthy, or
  ``gracePeriodSeconds`` (default 600, ``--graceful-eviction-timeout``) passed; ``Directly``
  (``Immediately``): the Work goes at once — :func:`finished_tasks`.
"""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import format_time, parse_time
from atoll.fleet import constants as c
from atoll.fleet.karmada.conditions import is_true
from atoll.fleet.karmada.placement import _tolerates

JSON = dict[str, Any]
DEFAULT_TOLERATION_SECONDS = 300
DEFAULT_GRACE_SECONDS = 600
DEFAULT_TOLERATIONS = (
    {"key": c.TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": c.TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)
PRODUCER = "TaintManager"
REASON = "TaintUntolerated"


def _ready_since(cluster: JSON) -> tuple[str, str]:
    """(Ready status, lastTransitionTime)."""
    cond: JSON = next(
        (x for x in (cluster.get("status") or {}).get("conditions") or () if x.get("type") == "Ready"), {}
    )
    return str(cond.get("status") or ""), str(cond.get("lastTransitionTime") or "")


def cluster_taints(cluster: JSON, key: str, now: float, failure_threshold: float) -> tuple[list[JSON], float | None]:
    """The Cluster's taints for health ``key`` ("" = healthy): others kept, ours NoSchedule at once
    and NoExecute after ``failure_threshold``; and in how many seconds NoExecute is due (None: not)."""
    current = list((cluster.get("spec") or {}).get("taints") or ())
    mine = (c.TAINT_NOT_READY, c.TAINT_UNREACHABLE)
    out = [t for t in current if t.get("key") not in mine]
    if not key:
        return out, None
    old = {(t.get("key"), t.get("effect")): t for t in current}
    out.append(old.get((key, "NoSchedule")) or {"key": key, "effect": "NoSchedule", "timeAdded": format_time(now)})
    _status, since = _ready_since(cluster)
    started = parse_time(since) if since else now
    due = started + failure_threshold - now
    if (key, "NoExecute") in old or due <= 0:
        out.append(old.get((key, "NoExecute")) or {"key": key, "effect": "NoExecute", "timeAdded": format_time(now)})
        return out, None
    return out, due


def tolerations(placement: JSON) -> list[JSON]:
    """The binding's cluster tolerations with Karmada's defaults for keys it leaves unsaid."""
    own = list(placement.get("clusterTolerations") or ())
    said = {t.get("key") for t in own}
    return own + [dict(t) for t in DEFAULT_TOLERATIONS if t["key"] not in said]


def evictions(spec: JSON, clusters: dict[str, JSON], now: float) -> tuple[list[str], float | None]:
    """Scheduled clusters to evict now, and in how many seconds the next toleration runs out."""
    tols = tolerations(spec.get("placement") or {})
    evict: list[str] = []
    next_due: float | None = None
    for target in spec.get("clusters") or ():
        cluster = clusters.get(str(target.get("name")))
        if cluster is None:
            continue
        for taint in (cluster.get("spec") or {}).get("taints") or ():
            if taint.get("effect") != "NoExecute":
                continue
            matching = [t for t in tols if _tolerates(t, taint)]
            if not matching:
                evict.append(str(target["name"]))
                break
            if any(t.get("tolerationSeconds") is None for t in matching):
                continue
            seconds = min(int(t["tolerationSeconds"]) for t in matching)
            added = parse_time(str(taint["timeAdded"])) if taint.get("timeAdded") else now
            left = added + seconds - now
            if left <= 0:
                evict.append(str(target["name"]))
                break
            next_due = left if next_due is None else min(next_due, left)
    return evict, next_due


def eviction_task(spec: JSON, cluster: str, now: float) -> JSON:
    failover = (spec.get("failover") or {}).get("cluster") or {}
    purge = str(failover.get("purgeMode") or "Gracefully")
    replicas = next((t.get("replicas") for t in spec.get("clusters") or () if t.get("name") == cluster), None)
    task: JSON = {
        "fromCluster": cluster,
        "purgeMode": purge,
        "reason": REASON,
        "message": f"cluster {cluster} has a NoExecute taint the binding does not tolerate",
        "producer": PRODUCER,
        "creationTimestamp": format_time(now),
        "clustersBeforeFailover": [str(t["name"]) for t in spec.get("clusters") or ()],
    }
    if replicas is not None:
        task["replicas"] = replicas
    if failover.get("gracePeriodSeconds") is not None:
        task["gracePeriodSeconds"] = int(failover["gracePeriodSeconds"])
    return task


def evicted(spec: JSON) -> set[str]:
    return {str(t.get("fromCluster")) for t in spec.get("gracefulEvictionTasks") or ()}


def draining(spec: JSON) -> set[str]:
    """Evicted clusters whose Work stays for now (``Gracefully``; ``Directly`` ones go at once)."""
    return {
        str(t.get("fromCluster"))
        for t in spec.get("gracefulEvictionTasks") or ()
        if t.get("purgeMode") not in ("Directly", "Immediately")
    }


def schedulable(cluster: JSON, spec: JSON) -> JSON:
    """The cluster as the scheduler should see it for this binding: ``NoSchedule`` taints hidden
    when the binding already runs there (only ``NoExecute`` moves placed replicas)."""
    placed = {str(t.get("name")) for t in spec.get("clusters") or ()}
    name = cluster["metadata"]["name"]
    taints = (cluster.get("spec") or {}).get("taints") or ()
    if name not in placed or not any(t.get("effect") == "NoSchedule" for t in taints):
        return cluster
    kept = [t for t in taints if t.get("effect") != "NoSchedule"]
    return {**cluster, "spec": {**(cluster.get("spec") or {}), "taints": kept}}


def finished_tasks(spec: JSON, works: dict[str, JSON], now: float) -> tuple[list[JSON], float | None]:
    """The eviction tasks still pending, and in how many seconds the earliest one times out."""
    targets = [str(t["name"]) for t in spec.get("clusters") or ()]
    settled = bool(targets) and all(
        (w := works.get(name)) is not None and is_true(w, "Applied") and _healthy(w) for name in targets
    )
    pending: list[JSON] = []
    next_due: float | None = None
    for task in spec.get("gracefulEvictionTasks") or ():
        if task.get("purgeMode") in ("Directly", "Immediately") or settled:
            continue
        grace = int(task.get("gracePeriodSeconds") or DEFAULT_GRACE_SECONDS)
        created = parse_time(str(task["creationTimestamp"])) if task.get("creationTimestamp") else now
        left = created + grace - now
        if left <= 0:
            continue
        pending.append(task)
        next_due = left if next_due is None else min(next_due, left)
    return pending, next_due


def _healthy(work: JSON) -> bool:
    statuses = (work.get("status") or {}).get("manifestStatuses") or ()
    return bool(statuses) and all(s.get("health") == "Healthy" for s in statuses)
