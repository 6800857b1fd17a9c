"""Small pure helpers for ``KusciaJob.status``: timestamps, conditions, task phases, Events.

The reconciler edits a copy of the job's status with these and writes it only when it differs
from what the cache holds, so an unchanged world costs no write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from atoll.controllers.kusciajob.constants import API_VERSION, EVENT_COMPONENT, TASK_FAILED, TASK_PENDING

JSON = dict[str, Any]


def set_condition(status: JSON, ctype: str, cstatus: bool, now: str, reason: str = "", message: str = "") -> None:
    """Set one condition; ``lastTransitionTime`` moves only when its status flips."""
    value = "True" if cstatus else "False"
    conditions = [dict(c) for c in status.get("conditions") or ()]
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now
            cond["status"] = value
            _set_optional(cond, "reason", reason)
            _set_optional(cond, "message", message)
            break
    else:
        cond = {"type": ctype, "status": value, "lastTransitionTime": now}
        _set_optional(cond, "reason", reason)
        _set_optional(cond, "message", message)
        conditions.append(cond)
    status["conditions"] = conditions


def _set_optional(obj: JSON, key: str, value: str) -> None:
    if value:
        obj[key] = value
    else:
        obj.pop(key, None)


def task_phase(task: JSON) -> str:
    """A KusciaTask's phase; none yet counts as ``Pending`` (Kuscia's rule)."""
    return str((task.get("status") or {}).get("phase") or TASK_PENDING)


def task_failure(task: JSON) -> str:
    """Why a KusciaTask failed: its message (which names the party and reason), else its failed
    parties' messages, else its reason."""
    status = task.get("status") or {}
    message = str(status.get("message") or "")
    if message:
        return message
    parties = [
        f"party {p.get('domainID')}: {p.get('message')}"
        for p in status.get("partyTaskStatus") or ()
        if p.get("phase") == TASK_FAILED and p.get("message")
    ]
    return "; ".join(parties) or str(status.get("reason") or "")


def party_domains(tasks: Iterable[JSON]) -> list[str]:
    """Every party domain of the job's task templates, in first-seen order."""
    seen: dict[str, None] = {}
    for task in tasks:
        for party in task.get("parties") or ():
            if party.get("domainID"):
                seen.setdefault(str(party["domainID"]), None)
    return list(seen)


def event(job: JSON, key: str, reason: str, message: str, now: str, kind: str = "Warning") -> JSON:
    """An Event about ``job``; its name is derived from ``key`` so re-recording it is idempotent."""
    meta = job["metadata"]
    digest = hashlib.sha256(f"{meta.get('uid')}/{key}".encode()).hexdigest()[:16]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{digest}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": "KusciaJob",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
