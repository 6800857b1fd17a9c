"""What ``atoll job describe`` prints, as pure functions of the job, its KusciaTasks and its Events.

The answer to "why did my job fail?" in one screen (Kuscia users otherwise walk job → task → pod →
logs by hand): the job's phase and message, the DAG (each task with its dependencies, phase and
each party's phase and message, and its pods), the first failure reason per party, and the job's
Warning Events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from atoll.controllers.kusciajob.dag import Task, tasks_of

JSON = dict[str, Any]
STYLES = {
    "Succeeded": "green",
    "Running": "cyan",
    "Pending": "yellow",
    "Failed": "red",
    "Cancelled": "red",
    "ApprovalReject": "red",
    "Suspended": "magenta",
    "AwaitingApproval": "yellow",
}


def _phase(value: str) -> Text:
    return Text(value or "-", style=STYLES.get(value, ""))


def _header(job: JSON) -> RenderableType:
    meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("KusciaJob", f"{meta.get('namespace')}/{meta['name']}")
    grid.add_row("Phase", _phase(str(status.get("phase") or "initialized")))
    grid.add_row("Initiator", str(spec.get("initiator") or "-"))
    mode, parallelism = spec.get("scheduleMode") or "Strict", spec.get("maxParallelism") or 1
    grid.add_row("Schedule", f"{mode}, maxParallelism {parallelism}")
    for label, key in (("Started", "startTime"), ("Completed", "completionTime")):
        if status.get(key):
            grid.add_row(label, str(status[key]))
    if status.get("reason") or status.get("message"):
        grid.add_row("Reason", str(status.get("reason") or "-"))
        style = "red" if status.get("phase") == "Failed" else ""
        grid.add_row("Message", Text(str(status.get("message") or "-"), style=style))
    return grid


def _task_label(task: Task, obj: JSON | None, waiting: bool) -> Text:
    label = Text(task.alias, style="bold")
    label.append(f"  {task.task_id}", style="dim")
    if task.dependencies:
        label.append(f"  after {', '.join(task.dependencies)}", style="dim")
    if task.tolerable:
        label.append("  tolerable", style="dim")
    label.append("  ")
    if obj is None:
        label.append("not created" + (" (waiting for dependencies)" if waiting else ""), style="dim")
    else:
        status = obj.get("status") or {}
        label.append_text(_phase(str(status.get("phase") or "Pending")))
        parties_said = any(p.get("message") for p in status.get("partyTaskStatus") or ())
        if status.get("phase") == "Failed" and status.get("message") and not parties_said:
            label.append(f"  {status['message']}", style="red")
    return label


def _party_row(party: JSON, obj: JSON | None) -> Text:
    """``domain (role): phase  message`` — the message only when none of its pods says the same."""
    domain = str(party.get("domainID") or "")
    status = (obj or {}).get("status") or {}
    found: JSON = next((p for p in status.get("partyTaskStatus") or () if str(p.get("domainID")) == domain), {})
    role = f" ({party['role']})" if party.get("role") else ""
    row = Text(f"{domain}{role}: ")
    row.append_text(_phase(str(found.get("phase") or ("-" if obj is None else "Pending"))))
    pods_said = {str(p.get("message")) for p in (status.get("podStatuses") or {}).values() if p.get("message")}
    if found.get("message") and found["message"] not in pods_said:
        row.append(f"  {found['message']}", style="red" if found.get("phase") == "Failed" else "")
    return row


def _pod_rows(obj: JSON | None, domain: str) -> list[Text]:
    """The party's pods from the task's ``podStatuses``: name, phase, node and any message."""
    rows = []
    statuses = ((obj or {}).get("status") or {}).get("podStatuses") or {}
    for key in sorted(statuses):
        pod = statuses[key]
        if pod.get("namespace") != domain:
            continue
        row = Text(f"pod {pod.get('podName')} ", style="dim")
        row.append_text(_phase(str(pod.get("podPhase") or "Pending")))
        if pod.get("nodeName"):
            row.append(f" on {pod['nodeName']}", style="dim")
        if pod.get("message"):
            row.append(f"  {pod['message']}", style="red" if pod.get("podPhase") == "Failed" else "")
        rows.append(row)
    return rows


def dag_tree(job: JSON, tasks: Mapping[str, JSON]) -> Tree:
    tree = Tree(Text("DAG", style="bold"))
    for task in tasks_of(job):
        obj = tasks.get(task.task_id)
        waiting = bool(task.dependencies) and obj is None
        branch = tree.add(_task_label(task, obj, waiting))
        for party in task.template.get("parties") or ():
            leaf = branch.add(_party_row(party, obj))
            for pod in _pod_rows(obj, str(party.get("domainID") or "")):
                leaf.add(pod)
    return tree


def first_failures(job: JSON, tasks: Mapping[str, JSON]) -> list[tuple[str, str, str]]:
    """(party, task alias, reason) of each party's first failed task, by failure time."""
    found: list[tuple[str, str, str, str]] = []
    for task in tasks_of(job):
        status = (tasks.get(task.task_id) or {}).get("status") or {}
        when = str(status.get("completionTime") or status.get("lastReconcileTime") or "")
        for party in status.get("partyTaskStatus") or ():
            if party.get("phase") == "Failed":
                reason = str(party.get("message") or status.get("message") or status.get("reason") or "")
                found.append((when, str(party.get("domainID")), task.alias, reason))
    first: dict[str, tuple[str, str, str]] = {}
    for _, domain, alias, reason in sorted(found, key=lambda f: f[0]):
        first.setdefault(domain, (domain, alias, reason))
    return list(first.values())


def _failure_table(rows: Sequence[tuple[str, str, str]]) -> Table:
    table = Table(title="First failure per party", title_justify="left", title_style="bold")
    for column in ("Party", "Task", "Reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _events_table(events: Sequence[JSON]) -> Table:
    table = Table(title="Warning events", title_justify="left", title_style="bold")
    for column in ("Last seen", "Reason", "Message"):
        table.add_column(column, overflow="fold")
    for ev in events:
        table.add_row(str(ev.get("lastTimestamp") or ""), str(ev.get("reason") or ""), str(ev.get("message") or ""))
    return table


def describe(job: JSON, tasks: Mapping[str, JSON], events: Sequence[JSON]) -> Group:
    parts: list[RenderableType] = [_header(job), Text(""), dag_tree(job, tasks)]
    failures = first_failures(job, tasks)
    if failures:
        parts += [Text(""), _failure_table(failures)]
    warnings = sorted((e for e in events if e.get("type") == "Warning"), key=lambda e: str(e.get("lastTimestamp")))
    if warnings:
        parts += [Text(""), _events_table(warnings)]
    return Group(*parts)
