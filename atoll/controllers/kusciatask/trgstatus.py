"""What the TaskResourceGroup tells the task: a final failure, and each party's last reservation problem.

The TaskResourceGroup controller keeps the scheduler's words in its conditions' ``reason``
(Kuscia's TRG/TR conditions have no ``message`` field): ``TaskResourcesReserved=False`` holds the
last reservation failure (``bob: 0/1 nodes are available: 1 Insufficient cpu (...)``, one
``domain: reason`` per line), and ``TaskResourceGroupExpired`` / ``TaskResourceGroupFailed`` the
final one.
"""

from __future__ import annotations

from typing import Any

from atoll.api.kuscia_tasks import TRG_FAILED

JSON = dict[str, Any]
FINAL_CONDITIONS = ("TaskResourceGroupExpired", "TaskResourceGroupFailed", "TaskResourceGroupValidated")
RESERVED_CONDITION = "TaskResourcesReserved"


def _conditions(group: JSON | None) -> list[JSON]:
    return list(((group or {}).get("status") or {}).get("conditions") or [])


def trg_failure(group: JSON | None) -> str | None:
    """The TaskResourceGroup's failure message when it is ``Failed``; ``None`` otherwise."""
    if group is None or (group.get("status") or {}).get("phase") != TRG_FAILED:
        return None
    reasons = [
        str(c.get("reason") or "")
        for c in _conditions(group)
        if c.get("type") in FINAL_CONDITIONS and c.get("status") in ("True", "False") and c.get("reason")
    ]
    if not reasons:
        reasons = [str(c.get("reason")) for c in _conditions(group) if c.get("reason")]
    return "; ".join(reasons) or "the task's resources could not be reserved"


def trg_party_messages(group: JSON | None) -> dict[str, str]:
    """``domain → reason`` from the last failed reservation."""
    out: dict[str, str] = {}
    for c in _conditions(group):
        if c.get("type") == RESERVED_CONDITION and c.get("status") == "False":
            for line in str(c.get("reason") or "").splitlines():
                domain, sep, reason = line.partition(": ")
                if sep:
                    out[domain.strip()] = reason.strip()
    return out
