"""``NodeResourcesFit`` (filter) and ``NodeResourcesLeastAllocated`` (score).

Fit: every resource the pod requests must still be free on the node — allocatable minus the
requests of the pods counted there (bound and assumed) — and the pod count must stay within
``allocatable.pods``. All shortfalls of a node are reported (``Insufficient cpu``,
``Insufficient memory``, ``Too many pods``), as kube-scheduler does. A resource the node does
not report counts as zero allocatable, except ``pods`` (see ``DEFAULT_MAX_PODS``).

Score: the mean over CPU and memory of the free fraction left after placing the pod, so pods
spread to the least loaded nodes; zero requests count as 100m / 200Mi.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, Status
from atoll.scheduler.nodeinfo import NodeInfo, Resources, non_zero, pod_requests

JSON = dict[str, Any]
FIT = "NodeResourcesFit"
LEAST_ALLOCATED = "NodeResourcesLeastAllocated"
SCORED = ("cpu", "memory")
WANTED = "NodeResourcesLeastAllocated/wanted"
CHECKED = "NodeResourcesFit/checked"


def _requests(state: CycleState, pod: JSON) -> Resources:
    requests = state.get(FIT)
    if not isinstance(requests, dict):
        requests = state[FIT] = pod_requests(pod)
    return requests


def checked(requests: Resources) -> tuple[tuple[str, Fraction], ...]:
    """The requests a node must have free, in name order (zero requests and ``pods`` need nothing)."""
    return tuple((res, requests[res]) for res in sorted(requests) if res != "pods" and requests[res] > 0)


def checked_requests(state: CycleState, pod: JSON) -> tuple[tuple[str, Fraction], ...]:
    """:func:`checked` of the pod's requests, once per cycle (every node is checked against it)."""
    wanted = state.get(CHECKED)
    if not isinstance(wanted, tuple):
        wanted = state[CHECKED] = checked(_requests(state, pod))
    return wanted


def insufficient(requests: Resources | tuple[tuple[str, Fraction], ...], node: NodeInfo) -> list[str]:
    """The reasons ``requests`` do not fit on ``node`` (empty when they do)."""
    reasons = []
    if len(node.pods) + 1 > node.max_pods:
        reasons.append("Too many pods")
    for res, want in checked(requests) if isinstance(requests, dict) else requests:
        if want > node.free(res):
            reasons.append(f"Insufficient {res}")
    return reasons


class NodeResourcesFit:
    name = FIT

    def pre_filter(self, state: CycleState, pod: JSON) -> Status:
        state[FIT] = pod_requests(pod)
        return SUCCESS

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        reasons = insufficient(checked_requests(state, pod), node)
        return Status.unschedulable(*reasons) if reasons else SUCCESS


class LeastAllocated:
    name = LEAST_ALLOCATED
    weight = 1

    def score(self, state: CycleState, pod: JSON, node: NodeInfo) -> float:
        wanted = state.get(WANTED)
        if not isinstance(wanted, dict):
            wanted = state[WANTED] = {res: float(v) for res, v in non_zero(_requests(state, pod)).items()}
        total = 0.0
        for res in SCORED:
            capacity = node.as_float("allocatable", res)
            if capacity <= 0:
                continue
            used = node.as_float("non_zero", res) + wanted[res]
            total += max(capacity - used, 0.0) * MAX_NODE_SCORE / capacity
        return total / len(SCORED)

    def normalize(self, scores: dict[str, float]) -> None:
        """Already on the ``0..MAX_NODE_SCORE`` scale."""
