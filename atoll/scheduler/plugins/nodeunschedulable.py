"""``NodeUnschedulable``: cordoned nodes (``spec.unschedulable``) take only pods that tolerate it."""

from __future__ import annotations

from typing import Any

from atoll.scheduler.framework import SUCCESS, CycleState, Status
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.plugins.tainttoleration import tolerated, tolerations_of

JSON = dict[str, Any]
NAME = "NodeUnschedulable"
UNSCHEDULABLE_TAINT: JSON = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = NAME

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        if not (node.node.get("spec") or {}).get("unschedulable"):
            return SUCCESS
        if tolerated(tolerations_of(pod), UNSCHEDULABLE_TAINT):
            return SUCCESS
        return Status.unschedulable("node(s) were unschedulable", resolvable=False)
