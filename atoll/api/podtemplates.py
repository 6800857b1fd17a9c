"""Pure helpers of the controllers that own pods (ReplicaSet, Job): a pod from a template, owner
references, and the pod states kube-controller-manager reasons about (active, ready, available)."""

from __future__ import annotations

import secrets
from typing import Any

from atoll.api.timestamps import try_parse_time

JSON = dict[str, Any]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.String alphabet


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(length))


def safe_encode(digest: bytes, length: int = 10) -> str:
    """A hash as a DNS-label-safe string (``rand.SafeEncodeString`` alphabet)."""
    return "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:length])


def controller_ref(owner: JSON, block: bool = True) -> JSON:
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": block}


def controller_of(obj: JSON) -> JSON | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def pod_from_template(template: JSON, owner: JSON, name: str, *, extra_labels: dict[str, str] | None = None,
                      extra_annotations: dict[str, str] | None = None) -> JSON:
    """The pod a controller creates for ``owner`` from its pod ``template``."""
    tmd = template.get("metadata") or {}
    labels = {**(tmd.get("labels") or {}), **(extra_labels or {})}
    annotations = {**(tmd.get("annotations") or {}), **(extra_annotations or {})}
    md: JSON = {"name": name, "labels": labels, "ownerReferences": [controller_ref(owner)]}
    if annotations:
        md["annotations"] = annotations
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": dict(template.get("spec") or {})}


def is_terminating(pod: JSON) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_finished(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: JSON) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return not is_finished(pod) and not is_terminating(pod)


def ready_since(pod: JSON) -> float | None:
    """When the pod's ``Ready`` condition last became True (None: not ready)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return None
            ts = cond.get("lastTransitionTime")
            return (try_parse_time(ts) if isinstance(ts, str) else None) or 0.0
    return None


def is_ready(pod: JSON) -> bool:
    return ready_since(pod) is not None


def is_available(pod: JSON, min_ready_seconds: int, now: float) -> bool:
    since = ready_since(pod)
    return since is not None and (min_ready_seconds <= 0 or since + min_ready_seconds <= now)
