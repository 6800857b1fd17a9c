"""TaskResources of a TaskResourceGroup, and the status helpers both kinds share (reference §1.7, §2.6)."""

from __future__ import annotations

import copy
import functools
from fractions import Fraction
from typing import Any

from atoll.api.kuscia_tasks import (
    ANNOTATION_INITIATOR,
    ANNOTATION_JOB_ID,
    ANNOTATION_TASK_ALIAS,
    ANNOTATION_TASK_ID,
    ANNOTATION_TASK_RESOURCE_GROUP,
    DEFAULT_RESOURCE_RESERVED_SECONDS,
    LABEL_INTERCONN_PROTOCOL_TYPE,
    LABEL_TASK_RESOURCE_GROUP_UID,
    task_resource_name,
)
from atoll.api.quantity import format_quantity, parse_quantity

JSON = dict[str, Any]


def tr_name(group: str, party: JSON) -> str:
    """``<trg>-<12 hex>``, stable per (domain, role) so a retried create finds the same object."""
    return task_resource_name(group, str(party.get("domainID") or ""), str(party.get("role") or ""))


def set_condition(status: JSON, kind: str, value: str, reason: str, now: str) -> None:
    """Replace the condition ``kind`` (its transition time kept when the status does not change)."""
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == value else now
    entry: JSON = {"type": kind, "status": value, "lastTransitionTime": since or now}
    if reason:
        entry["reason"] = reason
    status["conditions"] = [*(c for c in status.get("conditions") or [] if c.get("type") != kind), entry]


def with_phase(obj: JSON, phase: str, now: str, *, condition: str = "", value: str = "True", reason: str = "") -> JSON:
    """A copy of ``obj``'s status moved to ``phase`` (transition time stamped, condition set)."""
    status = copy.deepcopy(obj.get("status") or {})
    if status.get("phase") != phase:
        status["lastTransitionTime"] = now
    status["phase"] = phase
    status.setdefault("startTime", now)
    if condition:
        set_condition(status, condition, value, reason, now)
    return status


@functools.lru_cache(maxsize=4096)
def _quantity(value: str) -> Fraction:
    """``parse_quantity`` memoised: task pods repeat the same few request strings."""
    return parse_quantity(value)


@functools.lru_cache(maxsize=4096)
def _format(value: Fraction) -> str:
    return format_quantity(value)


def pod_resources(pod: JSON | None) -> JSON:
    """Summed container requests and limits of ``pod`` (as quantities)."""
    if pod is None:
        return {}
    out: JSON = {}
    for part in ("requests", "limits"):
        total: dict[str, Fraction] = {}
        for container in (pod.get("spec") or {}).get("containers") or []:
            for res, value in ((container.get("resources") or {}).get(part) or {}).items():
                try:
                    amount = _quantity(value) if isinstance(value, str) else parse_quantity(value)
                    total[res] = total.get(res, Fraction(0)) + amount
                except ValueError:
                    continue
        if total:
            out[part] = {res: _format(value) for res, value in total.items()}
    return out


def task_resource(group: JSON, party: JSON, pods: dict[str, JSON]) -> JSON:
    meta = group["metadata"]
    annotations = meta.get("annotations") or {}
    spec = group.get("spec") or {}
    names = [str(p.get("name")) for p in party.get("pods") or []]
    min_pods = int(party.get("minReservedPods") or 0)
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "TaskResource",
        "metadata": {
            "name": tr_name(meta["name"], party),
            "namespace": party["domainID"],
            "labels": {LABEL_TASK_RESOURCE_GROUP_UID: meta.get("uid", ""), LABEL_INTERCONN_PROTOCOL_TYPE: "kuscia"},
            "annotations": {
                **{k: str(annotations[k]) for k in (ANNOTATION_JOB_ID, ANNOTATION_TASK_ALIAS) if annotations.get(k)},
                ANNOTATION_INITIATOR: str(spec.get("initiator") or ""),
                ANNOTATION_TASK_ID: str(annotations.get(ANNOTATION_TASK_ID) or meta["name"]),
                ANNOTATION_TASK_RESOURCE_GROUP: meta["name"],
            },
            "ownerReferences": [
                {
                    "apiVersion": "kuscia.secretflow/v1alpha1",
                    "kind": "TaskResourceGroup",
                    "name": meta["name"],
                    "uid": meta.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "role": str(party.get("role") or ""),
            "minReservedPods": min_pods if 0 < min_pods <= len(names) else max(len(names), 1),
            "resourceReservedSeconds": int(spec.get("resourceReservedSeconds") or DEFAULT_RESOURCE_RESERVED_SECONDS),
            "initiator": str(spec.get("initiator") or ""),
            "pods": [{"name": n, "resources": pod_resources(pods.get(n))} for n in names],
        },
    }


def failure_reason(tr: JSON) -> str:
    """The scheduler's words on why ``tr`` failed (its ``Failed`` condition's reason)."""
    for c in reversed((tr.get("status") or {}).get("conditions") or []):
        if c.get("type") == "Failed" and c.get("reason"):
            return str(c["reason"])
    return "could not reserve resources for its pods"
