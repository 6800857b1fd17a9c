"""The Running phase's decision: the job's next phase and which KusciaTasks to create now.

Kuscia's rules (``pkg/controllers/kusciajob/handler/running.go``), as a pure function:

* **Strict** — any critical (non-``tolerable``) task ``Failed`` fails the job at once;
* **BestEffort** — other branches keep running; the job fails once nothing runs and nothing is
  ready while some critical task failed (or can never run);
* all tasks finished and every critical one ``Succeeded`` → ``Succeeded``;
* otherwise ``Running``: create ready tasks (dependencies all ``Succeeded``), highest ``priority``
  first, while fewer than ``maxParallelism`` tasks are ``Pending``/``Running``.

One gap of Kuscia is closed: a task waiting for a failed *tolerable* task can never run, and
Kuscia leaves such a job ``Running`` forever; here it counts as failed-to-run (the job fails if
that task is critical, and is ignored if it is tolerable too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from atoll.controllers.kusciajob.constants import (
    BEST_EFFORT,
    FAILED,
    RUNNING,
    SUCCEEDED,
    TASK_FAILED,
    TASK_FINISHED,
    TASK_SUCCEEDED,
)
from atoll.controllers.kusciajob.dag import Task, blocked_by, ready_tasks


@dataclass(frozen=True, slots=True)
class Decision:
    phase: str
    to_create: list[Task] = field(default_factory=list)
    reason: str = ""
    message: str = ""


def active_count(phases: Mapping[str, str]) -> int:
    """Tasks that count against ``maxParallelism``: ``Pending``, ``Running`` or no phase yet."""
    return sum(1 for phase in phases.values() if phase not in TASK_FINISHED)


def failure_message(task: Task, messages: Mapping[str, str]) -> str:
    detail = messages.get(task.task_id) or "no message from the task"
    return f"task {task.alias!r} ({task.task_id}) failed: {detail}"


def decide(
    tasks: Sequence[Task],
    phases: Mapping[str, str],
    messages: Mapping[str, str],
    *,
    mode: str,
    max_parallelism: int,
) -> Decision:
    """``phases``: task ID → phase of every *created* task (empty phase = ``Pending``)."""
    critical_failed = [t for t in tasks if not t.tolerable and phases.get(t.task_id) == TASK_FAILED]
    if critical_failed and mode != BEST_EFFORT:
        first = critical_failed[0]
        return Decision(FAILED, reason="TaskFailed", message=failure_message(first, messages))
    created = [t for t in tasks if t.task_id in phases]
    if len(created) == len(tasks) and all(phases[t.task_id] in TASK_FINISHED for t in tasks):
        if critical_failed:
            return Decision(FAILED, reason="TaskFailed", message=failure_message(critical_failed[0], messages))
        return Decision(SUCCEEDED)
    ready = ready_tasks(tasks, phases)
    active = active_count(phases)
    if active or ready:
        room = max(0, max_parallelism - active)
        return Decision(RUNNING, to_create=ready[:room])
    # nothing runs and nothing can start: the rest wait for failed tasks
    blocked = blocked_by(tasks, phases)
    if critical_failed:
        return Decision(FAILED, reason="TaskFailed", message=failure_message(critical_failed[0], messages))
    stuck = [t for t in tasks if t.alias in blocked and not t.tolerable]
    if stuck:
        task = stuck[0]
        return Decision(
            FAILED,
            reason="TaskFailed",
            message=f"task {task.alias!r} cannot run: it depends on task {blocked[task.alias]!r}, which failed",
        )
    done = all(phases.get(t.task_id) == TASK_SUCCEEDED or t.tolerable for t in tasks)
    return Decision(SUCCEEDED if done else RUNNING)
