"""``NodeResourcesFit`` whose reasons carry the numbers: ``Insufficient cpu (requested 5, free 1.9)``.

The co-scheduling profile uses it so that a party that cannot reserve learns by how much it
missed (Kuscia users' most common question, reference §9.1/§9.6). CPU is shown in cores, memory
in Mi, other resources as plain numbers; ``Too many pods (max 110)`` likewise.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.scheduler.framework import SUCCESS, CycleState, Status
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.plugins.noderesources import FIT, NodeResourcesFit, checked_requests

JSON = dict[str, Any]


def amount(resource: str, value: Fraction) -> str:
    if resource == "memory":
        return f"{float(value) / 2**20:.0f}Mi"
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return text or "0"


class DetailedResourcesFit(NodeResourcesFit):
    name = FIT

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        reasons = []
        if len(node.pods) + 1 > node.max_pods:
            reasons.append(f"Too many pods (max {node.max_pods})")
        for res, want in checked_requests(state, pod):
            free = node.free(res)
            if want > free:
                reasons.append(f"Insufficient {res} (requested {amount(res, want)}, free {amount(res, free)})")
        return Status.unschedulable(*reasons) if reasons else SUCCESS
