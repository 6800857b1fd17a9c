"""``atoll quickstart``: a whole centralised network on one machine, from nothing, in one command.

Starts a master (embedded SQLite, HTTPS API server on a free 127.0.0.1 port, controllers),
writes an admin kubeconfig, creates the Domains ``alice`` and ``bob`` and waits until the
controllers have given each its namespace and quota, then shows what is running and how to drive
it with kubectl. Runs until Ctrl-C (or exits at once with ``--exit``).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.node.config import NodeConfig, generate_domain_key, load_config
from atoll.node.kubeconfig import admin_kubeconfig, dump
from atoll.node.master import MasterNode

DOMAINS = ("alice", "bob")
Say = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master_config(data_dir: Path) -> Path:
    path = data_dir / "master.yaml"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=(data_dir / "master").resolve(),
                            api_port=_free_port(), domain_key_data=generate_domain_key())
        path.write_text(config.to_yaml())
        path.chmod(0o600)
    return path


async def _apply_domain(client: Client, name: str) -> None:
    body: dict[str, Any] = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain",
                            "metadata": {"name": name}, "spec": {"role": "", "resourceQuota": {"podMaxCount": 100}}}
    try:
        await client.create(kinds.DOMAINS, body)
    except errors.AlreadyExists:
        pass


async def _wait_domains(client: Client, within: float) -> dict[str, str]:
    """Quota summary per domain once the controllers have reconciled it ('' if not in time)."""
    deadline = time.monotonic() + within
    summary: dict[str, str] = {}
    while time.monotonic() < deadline:
        for name in DOMAINS:
            try:
                quota = await client.get(kinds.RESOURCEQUOTAS, "resource-limitation", name)
            except errors.NotFound:
                continue
            status = quota.get("status") or {}
            if status.get("hard"):
                summary[name] = ", ".join(f"{k}: {(status.get('used') or {}).get(k, '0')}/{v}"
                                          for k, v in sorted(status["hard"].items()))
        if len(summary) == len(DOMAINS):
            break
        await asyncio.sleep(0.2)
    return summary


async def run_quickstart(data_dir: Path, *, exit_after: bool, say: Say) -> None:
    config = load_config(master_config(data_dir))
    node = MasterNode(config)
    started = time.monotonic()
    task = asyncio.create_task(node.run(), name="quickstart/master")
    ready = asyncio.create_task(node.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    kubeconfig = data_dir / "admin.kubeconfig"
    kubeconfig.write_text(dump(admin_kubeconfig(node.pki, node.url)))
    kubeconfig.chmod(0o600)
    say(f"master kuscia-system: API server {node.url} (ready in {time.monotonic() - started:.1f} s)")
    async with node.client() as client:
        for name in DOMAINS:
            await _apply_domain(client, name)
        summary = await _wait_domains(client, within=30)
    for name in DOMAINS:
        state = f"namespace {name}, quota {summary[name]}" if name in summary else "not reconciled yet"
        say(f"domain {name}: {state}")
    say("")
    say(f"export KUBECONFIG={kubeconfig.resolve()}")
    say("kubectl get domains; kubectl get ns; kubectl get resourcequota -n alice")
    if exit_after:
        task.cancel()
    else:
        say("running; press Ctrl-C to stop")
    try:
        await task
    except asyncio.CancelledError:
        if not exit_after:
            raise
