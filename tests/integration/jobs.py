"""Helpers for the KusciaJob tests: a module-scoped in-process master, Kuscia objects, and the
KusciaTask controller's part played by patching KusciaTask status (the tasks branch owns it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from atoll.api import errors, kinds
from atoll.apiserver.cache import verify
from atoll.client import Client
from atoll.controllers import ControllerContext, kusciajob
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.runtime import Manager
from tests.conftest import REPO, RunningServer, _write_kubeconfig, eventually, start_until_ready

JSON = dict[str, Any]
KJ = kinds.kind("kuscia.secretflow", "kusciajobs")
KT = kinds.kind("kuscia.secretflow", "kusciatasks")
AIMG = kinds.kind("kuscia.secretflow", "appimages")
NS = "cross-domain"
APP_IMAGE = "atoll-psi"


@asynccontextmanager
async def running_master(data_dir: Path, **config: Any) -> AsyncIterator[RunningServer]:
    """An in-process master running only the KusciaJob controllers (plus ``config`` overrides)."""
    node = MasterNode(
        NodeConfig(
            mode="master",
            domain_id="kuscia-system",
            data_dir=data_dir,
            api_port=0,
            controllers=config.pop("controllers", ("kusciajob",)),
            **config,
        )
    )
    task = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(data_dir, node.url)
    try:
        yield RunningServer(node.url, data_dir, kubeconfig, token, ca, node)
        assert node.server is not None
        mutated = verify.mutated_objects(node.server.cache)
        assert not mutated, f"objects of the watch cache were mutated in place by a reader: {mutated[:5]}"
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def create_domains(client: Client, *domains: str) -> None:
    """The Domains (idempotent)."""
    for name in domains:
        body = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name}, "spec": {}}
        try:
            await client.create(kinds.DOMAINS, body)
        except errors.AlreadyExists:
            pass


@asynccontextmanager
async def job_controller(client: Client) -> AsyncIterator[None]:
    """The KusciaJob controllers running in this process for the ``async with`` block."""
    manager = Manager(client)
    kusciajob.setup(manager, ControllerContext(client))
    jobs = asyncio.create_task(manager.run())
    try:
        yield
    finally:
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await jobs


async def seed(client: Client, *domains: str) -> None:
    """Domains and the app image jobs refer to (idempotent)."""
    await create_domains(client, *domains)
    image = {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "AppImage",
        "metadata": {"name": APP_IMAGE},
        "spec": {
            "image": {"name": "atoll-psi", "tag": "0.1"},
            "deployTemplates": [
                {
                    "name": "psi",
                    "replicas": 1,
                    "spec": {"containers": [{"name": "psi", "command": ["bin/psi"], "workingDir": "/work"}]},
                }
            ],
        },
    }
    try:
        await client.create(AIMG, image)
    except errors.AlreadyExists:
        pass


def task(alias: str, *deps: str, **fields: Any) -> JSON:
    body: JSON = {
        "alias": alias,
        "appImage": APP_IMAGE,
        "taskInputConfig": "{}",
        "parties": [{"domainID": "alice"}, {"domainID": "bob"}],
    }
    if deps:
        body["dependencies"] = list(deps)
    body.update(fields)
    return body


def job(name: str, *tasks: JSON, **spec: Any) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaJob",
        "metadata": {"name": name, "namespace": NS, **spec.pop("metadata", {})},
        "spec": {"initiator": "alice", "tasks": list(tasks), **spec},
    }


async def get_job(client: Client, name: str) -> JSON:
    return await client.get(KJ, name, NS)


async def wait_phase(client: Client, name: str, phase: str, within: float = 15.0) -> JSON:
    async def check() -> JSON:
        obj = await get_job(client, name)
        assert (obj.get("status") or {}).get("phase") == phase, obj.get("status")
        return obj

    return await eventually(check, within)


async def task_ids(client: Client, name: str) -> dict[str, str]:
    """alias → task ID of the job's spec (filled in by the controller)."""
    obj = await get_job(client, name)
    return {t["alias"]: t.get("taskID", "") for t in obj["spec"]["tasks"]}


def alias_of(kt: JSON) -> str:
    return str(kt["metadata"]["annotations"]["kuscia.secretflow/task-alias"])


async def created_tasks(client: Client, name: str) -> list[JSON]:
    """The job's KusciaTasks, by creation time (then name)."""
    obj = await get_job(client, name)
    found = await client.list(KT, NS, label_selector=f"kuscia.secretflow/job-uid={obj['metadata']['uid']}")
    return sorted(found["items"], key=lambda t: (t["metadata"]["creationTimestamp"], t["metadata"]["name"]))


async def wait_created(client: Client, name: str, aliases: set[str], within: float = 15.0) -> list[JSON]:
    """Wait until exactly the tasks with these aliases exist; returns them by creation time."""

    async def check() -> list[JSON]:
        items = await created_tasks(client, name)
        found = {alias_of(t) for t in items}
        assert found == aliases, found
        return items

    return await eventually(check, within)


async def set_task(client: Client, task_id: str, phase: str, message: str = "", failed_party: str = "") -> None:
    """Play the KusciaTask controller: write the task's status (a finished one with ``completionTime``)."""
    status: JSON = {"phase": phase}
    if phase in ("Succeeded", "Failed"):
        status["completionTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if message:
        status["message"] = message
        status["reason"] = "PodFailed"
    parties = []
    for domain in ("alice", "bob"):
        party_phase = phase if not failed_party or domain == failed_party else "Running"
        entry: JSON = {"domainID": domain, "phase": party_phase}
        if domain == failed_party and message:
            entry["message"] = message
        parties.append(entry)
    status["partyTaskStatus"] = parties
    await client.patch(KT, task_id, {"status": status}, NS, subresource="status")


async def command(client: Client, name: str, stage: str, version: int, trigger: str = "alice") -> None:
    labels = {
        "kuscia.secretflow/job-stage": stage,
        "kuscia.secretflow/job-stage-version": str(version),
        "kuscia.secretflow/job-stage-trigger": trigger,
    }
    await client.patch(KJ, name, {"metadata": {"labels": labels}}, NS)


async def events_of(client: Client, name: str) -> list[JSON]:
    found = await client.list(kinds.EVENTS, NS, field_selector=f"involvedObject.name={name}")
    return list(found["items"])


async def run_atoll(server: RunningServer, *args: str) -> tuple[int, str, str]:
    """``atoll ARGS`` as a subprocess with ``KUBECONFIG`` pointing at ``server``: (rc, stdout, stderr)."""
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atoll.cli.main", *args, env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()
