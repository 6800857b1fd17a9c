"""The scheduling cycle's pure part: filter every node, score the feasible ones, pick one.

Synchronous by design: nothing here awaits, so between reading the cache snapshot and the
caller assuming the pod on the chosen node no other pod can be placed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from atoll.scheduler.diagnosis import Diagnosis
from atoll.scheduler.framework import SUCCESS, Code, CycleState, Profile, Status
from atoll.scheduler.nodeinfo import NodeInfo

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Placement:
    node_name: str
    score: float


def run_filters(profile: Profile, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
    """The first failing filter's status (plugin name filled in), or success."""
    for plugin in profile.filter:
        status = plugin.filter(state, pod, node)
        if not status.ok:
            return Status(status.code, status.reasons, plugin.name)
    return SUCCESS


def score_nodes(profile: Profile, state: CycleState, pod: JSON, nodes: Sequence[NodeInfo]) -> dict[str, float]:
    """Weighted sum over score plugins of each plugin's normalised score."""
    totals = {node.name: 0.0 for node in nodes}
    for plugin in profile.score:
        scores = {node.name: plugin.score(state, pod, node) for node in nodes}
        plugin.normalize(scores)
        for name, value in scores.items():
            totals[name] += plugin.weight * value
    return totals


def select(totals: dict[str, float], rng: random.Random) -> Placement:
    """The best-scoring node; ties are broken at random so equal nodes share the load."""
    best = max(totals.values())
    candidates = sorted(name for name, value in totals.items() if value == best)
    return Placement(rng.choice(candidates), best)


def schedule(
    profile: Profile,
    state: CycleState,
    pod: JSON,
    nodes: Sequence[NodeInfo] | Callable[[], Sequence[NodeInfo]],
    rng: random.Random,
    *,
    excluded: Callable[[], Sequence[NodeInfo]] | None = None,
    total: int | None = None,
) -> Placement | Diagnosis:
    """Where ``pod`` should go, or why it fits nowhere (PostFilter plugins have been told).

    ``nodes`` may be narrowed to the candidates of the pod's node selector (``total`` nodes in
    all); the ``excluded`` ones cannot be feasible, and are filtered only when nothing fits, so
    the diagnosis reads exactly as if every node had been tried. ``nodes`` may be a callable
    (with ``total`` given): the snapshot is then taken only once the PreFilters passed."""
    if callable(nodes):
        assert total is not None, "a lazy node list needs the total node count"
        diagnosis = Diagnosis(total)
    else:
        diagnosis = Diagnosis(len(nodes) if total is None else total)
    for pre in profile.pre_filter:
        status = pre.pre_filter(state, pod)
        if not status.ok:
            diagnosis.pre_filter = Status(status.code, status.reasons, pre.name)
            if not callable(nodes):
                diagnosis.node_statuses = {node.name: diagnosis.pre_filter for node in nodes}
            return diagnosis
    if callable(nodes):
        nodes = nodes()
    feasible = []
    for node in nodes:
        status = run_filters(profile, state, pod, node)
        if status.ok:
            feasible.append(node)
        else:
            diagnosis.node_statuses[node.name] = status
    if not feasible:
        for node in excluded() if excluded is not None else ():
            status = run_filters(profile, state, pod, node)
            diagnosis.node_statuses[node.name] = status if not status.ok else Status(
                Code.UNRESOLVABLE, ("node(s) didn't match Pod's node affinity/selector",), "NodeAffinity"
            )
        for post in profile.post_filter:
            post.post_filter(state, pod, diagnosis.node_statuses)
        return diagnosis
    if len(feasible) == 1:
        return Placement(feasible[0].name, 0.0)
    return select(score_nodes(profile, state, pod, feasible), rng)
