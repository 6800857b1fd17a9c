"""The job's task DAG: default task IDs, validation, and which tasks are ready to run.

Everything here is a pure function of the job spec (and of the domains and app images that
exist), so it is unit-tested without a server. Validation returns the *first* problem as one
sentence naming the culprit — the alias, task ID, domain or image, and for a cycle the cycle
itself (``a -> b -> a``) — which the reconciler writes to ``status.message`` with reason
``ValidateFailed``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from atoll.controllers.kusciajob.constants import MAX_TASKS, TASK_FAILED, TASK_SUCCEEDED

JSON = dict[str, Any]
_RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Task:
    """One ``spec.tasks[]`` entry with its task ID filled in."""

    alias: str
    task_id: str
    dependencies: tuple[str, ...]
    priority: int
    tolerable: bool
    template: JSON


def default_task_id(job_name: str, job_uid: str, alias: str) -> str:
    """``<jobName>-<12 hex>`` as Kuscia generates it, but derived from the job's UID and the alias
    so every replica (and every restart) computes the same ID; the job name part is cut so the
    result stays a 63-character DNS label."""
    digest = hashlib.sha256(f"{job_uid}/{alias}".encode()).hexdigest()[:12]
    return f"{job_name[:50].rstrip('-.')}-{digest}"


def tasks_of(job: JSON) -> list[Task]:
    """The job's tasks in declaration order, with default task IDs where ``taskID`` is empty."""
    meta = job.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    out = []
    for raw in (job.get("spec") or {}).get("tasks") or ():
        alias = str(raw.get("alias") or "")
        task_id = str(raw.get("taskID") or "") or default_task_id(name, uid, alias)
        out.append(
            Task(
                alias=alias,
                task_id=task_id,
                dependencies=tuple(str(d) for d in raw.get("dependencies") or ()),
                priority=int(raw.get("priority") or 0),
                tolerable=bool(raw.get("tolerable", False)),
                template=raw,
            )
        )
    return out


# -- validation ------------------------------------------------------------------------------------


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]`` (each depends on the next), or ``None``.

    Iterative depth-first search with three colours, so a 128-task chain cannot hit the
    recursion limit; nodes are visited in the mapping's order so the answer is deterministic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in edges:
        if state.get(root):
            continue
        path: list[str] = [root]
        iters = [iter(edges.get(root, ()))]
        state[root] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(edges.get(nxt, ())))
    return None


def _duplicate(values: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def validate(
    job: JSON,
    *,
    domain_exists: Callable[[str], bool],
    app_image_exists: Callable[[str], bool],
) -> str | None:
    """The first reason the job cannot run, or ``None`` when it is valid."""
    spec = job.get("spec") or {}
    tasks = tasks_of(job)
    problem = _shape_problem(tasks)
    if problem:
        return problem
    initiator = str(spec.get("initiator") or "")
    if not initiator:
        return "spec.initiator is empty: name the domain that initiates the job"
    if not domain_exists(initiator):
        return f"initiator domain {initiator!r} does not exist"
    for task in tasks:
        problem = _task_problem(task, domain_exists, app_image_exists)
        if problem:
            return problem
    cycle = find_cycle({t.alias: t.dependencies for t in tasks})
    if cycle:
        return "cycled dependencies: " + " -> ".join(cycle)
    return None


def _shape_problem(tasks: Sequence[Task]) -> str | None:
    if not tasks:
        return "the job has no tasks (spec.tasks is empty)"
    if len(tasks) > MAX_TASKS:
        return f"the job has {len(tasks)} tasks; at most {MAX_TASKS} are allowed"
    for i, task in enumerate(tasks):
        if not task.alias:
            return f"spec.tasks[{i}].alias is empty"
        if not _RFC1123_LABEL.match(task.task_id) or len(task.task_id) > 63:
            return f"task {task.alias!r}: taskID {task.task_id!r} is not an RFC 1123 label (at most 63 of [a-z0-9-])"
    dup = _duplicate(t.alias for t in tasks)
    if dup is not None:
        return f"duplicate task alias {dup!r}"
    dup = _duplicate(t.task_id for t in tasks)
    if dup is not None:
        return f"duplicate task ID {dup!r}"
    aliases = {t.alias for t in tasks}
    for task in tasks:
        if len(task.dependencies) > MAX_TASKS:
            return f"task {task.alias!r} has {len(task.dependencies)} dependencies; at most {MAX_TASKS} are allowed"
        for dep in task.dependencies:
            if dep not in aliases:
                return f"task {task.alias!r} depends on unknown task alias {dep!r}"
    return None


def _task_problem(
    task: Task, domain_exists: Callable[[str], bool], app_image_exists: Callable[[str], bool]
) -> str | None:
    image = str(task.template.get("appImage") or "")
    if not image:
        return f"task {task.alias!r}: appImage is empty"
    if not app_image_exists(image):
        return f"task {task.alias!r}: AppImage {image!r} does not exist"
    parties = task.template.get("parties") or ()
    if not parties:
        return f"task {task.alias!r} has no parties"
    for party in parties:
        domain = str(party.get("domainID") or "")
        if not domain_exists(domain):
            return f"task {task.alias!r}: party domain {domain!r} does not exist"
    return None


# -- scheduling ------------------------------------------------------------------------------------


def ready_tasks(tasks: Sequence[Task], phases: Mapping[str, str]) -> list[Task]:
    """Tasks not yet created whose dependencies all ``Succeeded``, highest ``priority`` first
    (declaration order among equals). ``phases`` maps task ID → KusciaTask phase of created tasks."""
    by_alias = {t.alias: t for t in tasks}
    ready = [
        t
        for t in tasks
        if t.task_id not in phases
        and all(phases.get(by_alias[d].task_id) == TASK_SUCCEEDED for d in t.dependencies if d in by_alias)
    ]
    return sorted(ready, key=lambda t: -t.priority)


def blocked_by(tasks: Sequence[Task], phases: Mapping[str, str]) -> dict[str, str]:
    """Not-created tasks that can never run (alias → alias of a failed task they wait for, directly
    or through other blocked tasks)."""
    by_alias = {t.alias: t for t in tasks}
    blocked: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for task in tasks:
            if task.alias in blocked or task.task_id in phases:
                continue
            for dep in task.dependencies:
                dep_task = by_alias.get(dep)
                if dep_task is None:
                    continue
                if phases.get(dep_task.task_id) == TASK_FAILED:
                    blocked[task.alias] = dep
                elif dep in blocked:
                    blocked[task.alias] = blocked[dep]
                else:
                    continue
                changed = True
                break
    return blocked
