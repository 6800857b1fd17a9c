"""Scheduling one binding (Karmada's scheduler, folded into the binding reconcile): filter the
member clusters by ``clusterAffinity`` (names, labels, fieldSelector, exclude) or the first
``clusterAffinities`` group that fits, by ``clusterTolerations`` against cluster taints and by API
enablement; apply ``spreadConstraints`` by cluster (``maxGroups``/``minGroups``); then assign
replicas: ``Duplicated`` (every cluster the full count) or ``Divided`` (static weights, dynamic
weights by available replicas, or ``Aggregated``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from atoll.api.errors import BadRequest
from atoll.api.selectors import label_selector_from_spec
from atoll.fleet.constants import COMPLETE_API_ENABLEMENTS
from atoll.fleet.karmada.conditions import is_true
from atoll.fleet.karmada.division import DivisionError, aggregated, divide_by_availability, static_weights, webster

JSON = dict[str, Any]


class ScheduleError(Exception):
    """No placement fits (the binding's ``Scheduled`` condition says why)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    replicas: int


def affinity_matches(affinity: JSON | None, cluster: JSON) -> bool:
    if not affinity:
        return True
    name = cluster["metadata"]["name"]
    if name in (affinity.get("exclude") or ()):
        return False
    names = affinity.get("clusterNames") or ()
    if names and name not in names:
        return False
    if affinity.get("labelSelector"):
        try:
            selector = label_selector_from_spec(affinity["labelSelector"])
        except BadRequest:
            return False
        if not selector.matches(cluster["metadata"].get("labels") or {}):
            return False
    spec = cluster.get("spec") or {}
    for req in (affinity.get("fieldSelector") or {}).get("matchExpressions") or ():
        value = spec.get(req.get("key", ""))
        values = req.get("values") or ()
        if (req.get("operator") == "In") != (value in values):
            return False
    return True


def tolerated(taints: list[JSON], tolerations: list[JSON]) -> bool:
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(toleration: JSON, taint: JSON) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return bool(toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""))


def serves(cluster: JSON, api_version: str, kind: str, placed: Collection[str] = ()) -> bool:
    """The member serves this kind (``status.apiEnablements``; unknown until first reported).
    Karmada's APIEnablement filter: a cluster in ``placed`` (the binding runs there) passes while
    its list is not known complete (``CompleteAPIEnablements`` not True) — a partial discovery of
    a member going down must not move replicas before the taint manager evicts them."""
    enablements = (cluster.get("status") or {}).get("apiEnablements")
    if enablements is None:
        return True
    if any(
        e.get("groupVersion") == api_version and any(r.get("kind") == kind for r in e.get("resources") or ())
        for e in enablements
    ):
        return True
    return cluster["metadata"]["name"] in placed and not is_true(cluster, COMPLETE_API_ENABLEMENTS)


def feasible(
    placement: JSON, clusters: list[JSON], api_version: str, kind: str, placed: Collection[str] = ()
) -> tuple[list[JSON], str]:
    """Clusters passing the filters (first fitting ``clusterAffinities`` group), and that group's
    name; ``placed``: the clusters the binding is scheduled to now."""
    groups: list[tuple[str, JSON | None]] = [
        (str(g.get("affinityName") or ""), g) for g in placement.get("clusterAffinities") or ()
    ] or [("", placement.get("clusterAffinity"))]
    tolerations = list(placement.get("clusterTolerations") or ())
    for name, affinity in groups:
        fit = [
            c
            for c in clusters
            if affinity_matches(affinity, c)
            and tolerated(list((c.get("spec") or {}).get("taints") or ()), tolerations)
            and serves(c, api_version, kind, placed)
        ]
        if fit:
            return sorted(fit, key=lambda c: str(c["metadata"]["name"])), name
    return [], ""


def _spread(fit: list[JSON], placement: JSON) -> list[JSON]:
    for constraint in placement.get("spreadConstraints") or ():
        if constraint.get("spreadByField", "cluster") != "cluster":
            continue
        min_groups = int(constraint.get("minGroups") or 1)
        if len(fit) < min_groups:
            raise ScheduleError(
                "NoClusterFit", f"{len(fit)} cluster(s) fit, spreadConstraints need at least {min_groups}"
            )
        max_groups = int(constraint.get("maxGroups") or 0)
        if max_groups:
            fit = fit[:max_groups]
    return fit


def available_replicas(cluster: JSON, request: JSON | None) -> int:
    """The general estimator: what the member's free allocatable holds of one replica's request."""
    from atoll.api.quantity import parse_quantity

    summary = (cluster.get("status") or {}).get("resourceSummary") or {}
    allocatable = summary.get("allocatable") or {}
    allocated = summary.get("allocated") or {}
    best: int | None = None
    for resource, amount in (request or {}).items():
        need = parse_quantity(amount)
        if need <= 0:
            continue
        free = parse_quantity(allocatable.get(resource, "0")) - parse_quantity(allocated.get(resource, "0"))
        fits = max(0, int(free / need))
        best = fits if best is None else min(best, fits)
    if best is None:  # no request: bounded by the pod count
        pods = parse_quantity(allocatable.get("pods", "110")) - parse_quantity(allocated.get("pods", "0"))
        best = max(0, int(pods))
    return best


def schedule(
    placement: JSON,
    clusters: list[JSON],
    *,
    api_version: str,
    kind: str,
    replicas: int,
    uid: str,
    request: JSON | None = None,
    placed: Collection[str] = (),
) -> tuple[list[Target], str]:
    """Target clusters with their replicas, and the affinity group used (``placed``: the binding's
    current clusters, see :func:`serves`)."""
    fit, group = feasible(placement, clusters, api_version, kind, placed)
    if not fit:
        raise ScheduleError("NoClusterFit", f"0/{len(clusters)} clusters are available")
    fit = _spread(fit, placement)
    names = [str(c["metadata"]["name"]) for c in fit]
    rs = placement.get("replicaScheduling") or {}
    if replicas <= 0 or rs.get("replicaSchedulingType") == "Duplicated":
        return [Target(n, replicas) for n in names], group
    try:
        if rs.get("replicaDivisionPreference") == "Aggregated":
            counts = aggregated(
                replicas, {str(c["metadata"]["name"]): available_replicas(c, request) for c in fit}, uid
            )
        elif ((rs.get("weightPreference") or {}).get("dynamicWeight")) == "AvailableReplicas":
            counts = divide_by_availability(
                replicas, {str(c["metadata"]["name"]): available_replicas(c, request) for c in fit}, uid
            )
        else:
            weights: dict[str, int] = {}
            for entry in (rs.get("weightPreference") or {}).get("staticWeightList") or ():
                for c in fit:
                    if affinity_matches(entry.get("targetCluster"), c):
                        weights[str(c["metadata"]["name"])] = int(entry.get("weight") or 0)
            counts = webster(replicas, static_weights(names, weights), uid)
    except DivisionError as exc:
        raise ScheduleError("Unschedulable", str(exc)) from None
    return [Target(n, counts[n]) for n in names if counts.get(n)], group
