"""``NodeReady``: only nodes whose ``Ready`` condition is ``True`` take pods.

kube-scheduler leaves this to the ``node.kubernetes.io/not-ready`` / ``unreachable`` taints that
the node lifecycle controller adds; Atoll's agents and lifecycle controller report readiness
through the condition, so the scheduler checks it directly. Pods that tolerate those taints
(as DaemonSet pods do) may still go to such nodes.
"""

from __future__ import annotations

from typing import Any

from atoll.scheduler.framework import SUCCESS, CycleState, Status
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.plugins.tainttoleration import tolerated, tolerations_of

JSON = dict[str, Any]
NAME = "NodeReady"
NOT_READY_TAINT: JSON = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNREACHABLE_TAINT: JSON = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}


def node_ready(node: JSON) -> str:
    """The status of the node's ``Ready`` condition (``"Unknown"`` when it has none)."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status") or "Unknown")
    return "Unknown"


class NodeReady:
    name = NAME

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        ready = node_ready(node.node)
        if ready == "True":
            return SUCCESS
        taint = NOT_READY_TAINT if ready == "False" else UNREACHABLE_TAINT
        if tolerated(tolerations_of(pod), taint):
            return SUCCESS
        return Status.unschedulable("node(s) were not ready", resolvable=False)
