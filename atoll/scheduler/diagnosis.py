"""Why a pod fits nowhere, worded as kube-scheduler words it.

``0/3 nodes are available: 1 node(s) had untolerated taint {kuscia.secretflow/agent: v1},
2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for
scheduling, 2 No preemption victims found for incoming pod.``

Each node contributes the reasons of the first filter that rejected it; equal reasons are
counted and the ``"<count> <reason>"`` strings sorted, as in ``FitError.Error()``. Atoll does not
preempt, so the preemption part states the outcome kube-scheduler reaches when no lower-priority
pods can be evicted: resolvable failures (resources) find no victims, the others are unhelpful.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atoll.scheduler.framework import Code, Status

JSON = dict[str, Any]
NO_NODES = "no nodes available to schedule pods"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


@dataclass(slots=True)
class Diagnosis:
    """The outcome of filtering one pod against every node."""

    num_nodes: int
    node_statuses: dict[str, Status] = field(default_factory=dict)
    pre_filter: Status | None = None
    """Set when a PreFilter plugin rejected the pod before any node was looked at."""


def _histogram(statuses: Mapping[str, Status]) -> str:
    counts: Counter[str] = Counter()
    for status in statuses.values():
        for reason in status.reasons:
            counts[reason] += 1
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def _preemption(pod: JSON, diagnosis: Diagnosis) -> str:
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return "preemption: not eligible due to preemptionPolicy=Never."
    counts: Counter[str] = Counter()
    for status in diagnosis.node_statuses.values():
        counts[NO_VICTIMS if status.code is Code.UNSCHEDULABLE else NOT_HELPFUL] += 1
    parts = ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))
    return f"preemption: 0/{diagnosis.num_nodes} nodes are available: {parts}."


def fit_error_message(pod: JSON, diagnosis: Diagnosis) -> str:
    """The ``PodScheduled=False`` message and ``FailedScheduling`` event text."""
    if diagnosis.num_nodes == 0:
        return NO_NODES
    if diagnosis.pre_filter is not None:
        return f"0/{diagnosis.num_nodes} nodes are available: {diagnosis.pre_filter.message}."
    head = f"0/{diagnosis.num_nodes} nodes are available: {_histogram(diagnosis.node_statuses)}."
    return f"{head} {_preemption(pod, diagnosis)}"
