"""Pure decisions of the Job controller (``pkg/controller/job``): how many pods should run, which
completion indexes are still to do (Indexed mode), the pod-failure backoff, and the terminal
condition a Job has reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api.timestamps import try_parse_time

JSON = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE = 10.0  # DefaultJobPodFailureBackOff
BACKOFF_MAX = 360.0  # MaxJobPodFailureBackOff


def phase(pod: JSON) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def pod_index(pod: JSON) -> int | None:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def format_indexes(indexes: set[int]) -> str:
    """``1,3-5,7``: the ``completedIndexes`` format."""
    out, ordered = [], sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass(frozen=True, slots=True)
class Counts:
    succeeded: int
    failed: int
    completed_indexes: frozenset[int] = frozenset()


def wanted_active(spec: JSON, counts: Counts) -> int:
    parallelism = int(spec.get("parallelism") or 0)
    completions = spec.get("completions")
    if not isinstance(completions, int):
        return 0 if counts.succeeded > 0 else parallelism
    done = len(counts.completed_indexes) if spec.get("completionMode") == "Indexed" else counts.succeeded
    return max(min(parallelism, completions - done), 0)


def pending_indexes(spec: JSON, counts: Counts, active: list[JSON]) -> list[int]:
    running = {pod_index(p) for p in active}
    return [i for i in range(int(spec.get("completions") or 0))
            if i not in counts.completed_indexes and i not in running]


def succeeded(spec: JSON, counts: Counts, active: int) -> bool:
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed":
        return isinstance(completions, int) and len(counts.completed_indexes) >= completions
    if isinstance(completions, int):
        return counts.succeeded >= completions
    return counts.succeeded > 0 and active == 0


def failures_for_backoff(spec: JSON, counts: Counts, active: list[JSON]) -> int:
    """Failed pods, plus container restarts of active pods when pods restart ``OnFailure``."""
    restarts = 0
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure":
        for pod in active:
            restarts += sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get(
                "containerStatuses") or [])
    return counts.failed + restarts


def finished_at(pod: JSON) -> float:
    """When a finished pod's last container ended (its creation time if unknown)."""
    latest = 0.0
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ts = ((status.get("state") or {}).get("terminated") or {}).get("finishedAt")
        latest = max(latest, try_parse_time(ts) or 0.0) if isinstance(ts, str) else latest
    return float(latest or try_parse_time(str((pod.get("metadata") or {}).get("creationTimestamp") or "")) or 0.0)


def backoff_remaining(failed_pods: list[JSON], base: float, now: float) -> float:
    """Seconds until a new pod may start after ``len(failed_pods)`` failures (0: now)."""
    if not failed_pods:
        return 0.0
    delay = min(base * 2.0 ** (len(failed_pods) - 1), BACKOFF_MAX)
    last = max(finished_at(p) for p in failed_pods)
    return max(last + delay - now, 0.0)
