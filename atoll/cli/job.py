"""``atoll job describe NAME``, ``atoll job logs NAME [--task T] [--party D]`` and
``atoll job approve NAME --party D [--reject]``.

Both talk to any Kubernetes-compatible API server holding Kuscia objects, through the kubeconfig
of ``--kubeconfig`` (default: ``$KUBECONFIG``, then ``~/.kube/config``), like kubectl. ``describe``
prints :func:`atoll.cli.job_view.describe`; ``logs`` prints the logs of the job's task pods (found
from each KusciaTask's ``status.podStatuses``, else by the ``kuscia.secretflow/task-uid`` label)
through the API's ``pods/log``, one header line per pod and container. ``approve`` writes the
party's verdict into ``status.approveStatus``, as KusciaAPI's ``ApproveJob`` does (a job waits in
``AwaitingApproval`` for it when the master runs with ``enableWorkloadApprove``). Every failure is
one line.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from atoll.api import errors, kinds
from atoll.api.constants import CROSS_DOMAIN_NAMESPACE
from atoll.cli.job_view import describe
from atoll.client import Client, resource_path
from atoll.client.errors import ClientError, ConfigError
from atoll.controllers.kusciajob.constants import LABEL_JOB_UID, LABEL_TASK_UID
from atoll.controllers.kusciajob.dag import Task, tasks_of

JSON = dict[str, Any]
T = TypeVar("T")
KJ = kinds.kind("kuscia.secretflow", "kusciajobs")
KT = kinds.kind("kuscia.secretflow", "kusciatasks")


def _run(work: Callable[[Client], Awaitable[T]], kubeconfig: str | None) -> T:
    async def main() -> T:
        async with Client.from_kubeconfig(kubeconfig or None) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except errors.NotFound as exc:
        click.echo(f"error: {exc.message}", err=True)
    except (errors.APIError, ClientError, ConfigError, OSError) as exc:
        click.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
    sys.exit(1)


async def _job_and_tasks(client: Client, name: str, namespace: str) -> tuple[JSON, dict[str, JSON]]:
    job = await client.get(KJ, name, namespace)
    uid = job["metadata"]["uid"]
    found = await client.list(KT, namespace, label_selector=f"{LABEL_JOB_UID}={uid}")
    return job, {t["metadata"]["name"]: t for t in found.get("items") or ()}


kubeconfig_option = click.option(
    "--kubeconfig", envvar="KUBECONFIG", default=None, help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
)
namespace_option = click.option("-n", "--namespace", default=CROSS_DOMAIN_NAMESPACE, show_default=True)


@click.group()
def job() -> None:
    """Inspect KusciaJobs: the DAG with every task's and party's phase, and the task pods' logs."""


@job.command("describe")
@click.argument("name")
@namespace_option
@kubeconfig_option
def describe_cmd(name: str, namespace: str, kubeconfig: str | None) -> None:
    """Show job NAME: phase, DAG, each party's phase and the first failure reason per party."""

    async def work(client: Client) -> tuple[JSON, dict[str, JSON], list[JSON]]:
        job_obj, tasks = await _job_and_tasks(client, name, namespace)
        found = await client.list(kinds.EVENTS, namespace, field_selector=f"involvedObject.name={name}")
        events = [e for e in found.get("items") or () if (e.get("involvedObject") or {}).get("kind") == "KusciaJob"]
        return job_obj, tasks, events

    job_obj, tasks, events = _run(work, kubeconfig)
    Console(soft_wrap=False).print(describe(job_obj, tasks, events))


def _select(job_obj: JSON, wanted: str | None) -> list[Task]:
    tasks = tasks_of(job_obj)
    if wanted is None:
        return tasks
    chosen = [t for t in tasks if wanted in (t.alias, t.task_id)]
    if not chosen:
        names = ", ".join(t.alias for t in tasks)
        raise click.UsageError(f"job {job_obj['metadata']['name']} has no task {wanted!r} (tasks: {names})")
    return chosen


async def _pods_of(client: Client, task_obj: JSON) -> list[tuple[str, str]]:
    """(namespace, pod) of a KusciaTask: its ``podStatuses``, else pods labelled with its uid."""
    statuses = (task_obj.get("status") or {}).get("podStatuses") or {}
    pods = sorted((str(s.get("namespace")), str(s.get("podName"))) for s in statuses.values())
    if pods:
        return pods
    selector = f"{LABEL_TASK_UID}={task_obj['metadata']['uid']}"
    found = await client.list(kinds.PODS, None, label_selector=selector)
    return sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in found.get("items") or ())


async def _pod_logs(client: Client, namespace: str, pod: str) -> list[tuple[str, str]]:
    """(container, log text) of every container of the pod (an error line when unavailable)."""
    try:
        obj = await client.get(kinds.PODS, pod, namespace)
    except errors.NotFound:
        return [("", "(pod deleted; its logs are gone)")]
    out = []
    for container in (obj.get("spec") or {}).get("containers") or ():
        cname = str(container.get("name"))
        path = resource_path(kinds.PODS, namespace, pod, "log")
        try:
            text = await client.request("GET", path, params={"container": cname})
        except errors.APIError as exc:
            text = f"(no logs: {exc.message})\n"
        out.append((cname, str(text)))
    return out


@job.command("logs")
@click.argument("name")
@click.option("--task", "task_name", default=None, help="Only this task (alias or task ID).")
@click.option("--party", default=None, help="Only this party (domain ID).")
@namespace_option
@kubeconfig_option
def logs_cmd(name: str, task_name: str | None, party: str | None, namespace: str, kubeconfig: str | None) -> None:
    """Print the logs of job NAME's task pods, task by task and party by party."""

    async def work(client: Client) -> list[str]:
        job_obj, tasks = await _job_and_tasks(client, name, namespace)
        lines: list[str] = []
        for task in _select(job_obj, task_name):
            task_obj = tasks.get(task.task_id)
            if task_obj is None:
                lines.append(f"==> task {task.alias} ({task.task_id}): not created yet <==")
                continue
            pods = [(ns, p) for ns, p in await _pods_of(client, task_obj) if party in (None, ns)]
            if not pods:
                lines.append(f"==> task {task.alias} ({task.task_id}): no pods{f' in {party}' if party else ''} <==")
            for pod_ns, pod in pods:
                for container, text in await _pod_logs(client, pod_ns, pod):
                    lines.append(f"==> task {task.alias} / party {pod_ns} / pod {pod} [{container}] <==")
                    lines.append(text.rstrip("\n"))
        return lines

    for line in _run(work, kubeconfig):
        click.echo(line)


@job.command("approve")
@click.argument("name")
@click.option("--party", required=True, help="The party (domain ID) giving its verdict.")
@click.option("--reject", is_flag=True, help="Reject the job instead of accepting it.")
@namespace_option
@kubeconfig_option
def approve_cmd(name: str, party: str, reject: bool, namespace: str, kubeconfig: str | None) -> None:
    """Accept (or --reject) job NAME on behalf of a party."""
    verdict = "JobRejected" if reject else "JobAccepted"

    async def work(client: Client) -> str:
        job_obj = await client.get(KJ, name, namespace)
        parties = {str(p.get("domainID")) for t in tasks_of(job_obj) for p in t.template.get("parties") or ()}
        if party not in parties:
            raise click.UsageError(f"{party!r} is not a party of job {name} (parties: {', '.join(sorted(parties))})")
        patch = {"status": {"approveStatus": {party: verdict}}}
        await client.patch(KJ, name, patch, namespace, subresource="status")
        return verdict

    click.echo(f"kusciajob.kuscia.secretflow/{name}: {party} {_run(work, kubeconfig)}")
