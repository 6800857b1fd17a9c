"""``TaintToleration``: a node's ``NoSchedule``/``NoExecute`` taints must each be tolerated.

Kuscia's agent taints its nodes ``kuscia.secretflow/agent=v1:NoSchedule`` so that only task pods
(which tolerate it) land there. ``PreferNoSchedule`` taints do not filter; the score prefers
nodes with fewer untolerated ones.
"""

from __future__ import annotations

from typing import Any

from atoll.scheduler.framework import SUCCESS, CycleState, Status, normalize_to_max
from atoll.scheduler.nodeinfo import NodeInfo

JSON = dict[str, Any]
NAME = "TaintToleration"
FILTERED_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(toleration: JSON, taint: JSON) -> bool:
    """``v1.Toleration.ToleratesTaint``: effect and key match (empty = any), then Exists or Equal value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerations_of(pod: JSON) -> list[JSON]:
    return list((pod.get("spec") or {}).get("tolerations") or [])


def tolerated(tolerations: list[JSON], taint: JSON) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def taint_text(taint: JSON) -> str:
    """``{key: value}`` as kube-scheduler prints an untolerated taint."""
    return f"{{{taint.get('key', '')}: {taint.get('value') or ''}}}"


class TaintToleration:
    """Filter on NoSchedule/NoExecute taints; score by untolerated PreferNoSchedule taints."""

    name = NAME
    weight = 3

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        tolerations = tolerations_of(pod)
        for taint in node.taints:
            if taint.get("effect") in FILTERED_EFFECTS and not tolerated(tolerations, taint):
                return Status.unschedulable(f"node(s) had untolerated taint {taint_text(taint)}", resolvable=False)
        return SUCCESS

    def score(self, state: CycleState, pod: JSON, node: NodeInfo) -> float:
        tolerations = [t for t in tolerations_of(pod) if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return float(
            sum(1 for t in node.taints if t.get("effect") == "PreferNoSchedule" and not tolerated(tolerations, t))
        )

    def normalize(self, scores: dict[str, float]) -> None:
        normalize_to_max(scores, reverse=True)
