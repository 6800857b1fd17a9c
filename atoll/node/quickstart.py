"""``atoll quickstart``: a whole centralised network on one machine, from nothing, in one command.

Starts a master (embedded SQLite, HTTPS API server on a free 127.0.0.1 port, controllers and the
scheduler), writes an admin kubeconfig, creates the Domains ``alice`` and ``bob``, starts a lite
node (agent with the RunP process runtime) for each, and runs one pod per domain through the
scheduler to completion, printing its logs. Then it shows how to drive the network with kubectl
and runs until Ctrl-C (or exits with ``--exit``). Re-running it reuses ``--data-dir``.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atoll.agent.runp.images import ImageStore
from atoll.api import errors, kinds
from atoll.client import Client
from atoll.node.config import NodeConfig, generate_domain_key, load_config
from atoll.node.kubeconfig import admin_kubeconfig, dump
from atoll.node.lite import LiteNode, issue_agent_certificate
from atoll.node.master import MasterNode

DOMAINS = ("alice", "bob")
DEMO_IMAGE = "atoll/quickstart-hello:v1"
DEMO_SCRIPT = '#!/bin/sh\necho "hello from $KUSCIA_DOMAIN_ID, pod $POD_NAME on node $NODE_NAME"\n'
Say = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(path: Path, config: NodeConfig) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config.to_yaml())
        path.chmod(0o600)
    return path


def master_config(data_dir: Path) -> Path:
    return _write_config(
        data_dir / "master.yaml",
        NodeConfig(
            mode="master",
            domain_id="kuscia-system",
            data_dir=(data_dir / "master").resolve(),
            api_port=_free_port(),
            domain_key_data=generate_domain_key(),
        ),
    )


def lite_config(data_dir: Path, domain: str, kubeconfig: Path, master_data: Path) -> NodeConfig:
    node_dir = (data_dir / domain).resolve()
    path = _write_config(
        data_dir / f"{domain}.yaml",
        NodeConfig(
            mode="lite",
            domain_id=domain,
            data_dir=node_dir,
            kubeconfig=str(kubeconfig.resolve()),
            domain_key_data=generate_domain_key(),
        ),
    )
    if not (node_dir / "pki" / "kubelet.crt").exists():
        issue_agent_certificate(master_data, node_dir, domain)
    images = ImageStore(node_dir / "agent" / "images")
    if images.get(DEMO_IMAGE) is None:
        source = data_dir / "images" / "hello"
        (source / "bin").mkdir(parents=True, exist_ok=True)
        script = source / "bin" / "hello"
        script.write_text(DEMO_SCRIPT)
        script.chmod(0o755)
        images.load(source, DEMO_IMAGE)
    return load_config(path)


async def _apply_domain(client: Client, name: str) -> None:
    body: JSON = {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": name},
        "spec": {"role": "", "resourceQuota": {"podMaxCount": 100}},
    }
    try:
        await client.create(kinds.DOMAINS, body)
    except errors.AlreadyExists:
        pass


JSON = dict[str, Any]


def demo_pod(domain: str) -> JSON:
    env = [
        {"name": "KUSCIA_DOMAIN_ID", "value": domain},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "hello-", "namespace": domain},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kuscia.secretflow/namespace": domain},
            "tolerations": [{"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "main", "image": DEMO_IMAGE, "command": ["hello"], "env": env}],
        },
    }


async def _until(check: Callable[[], Any], within: float) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
        except errors.NotFound:
            result = None
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def _quota(client: Client, domain: str) -> str:
    quota = await client.get(kinds.RESOURCEQUOTAS, "resource-limitation", domain)
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    return ", ".join(f"{k}: {used.get(k, '0')}/{v}" for k, v in sorted(hard.items()))


async def _run_demo_pod(client: Client, domain: str) -> str:
    pod = await client.create(kinds.PODS, demo_pod(domain), domain)
    name = pod["metadata"]["name"]

    async def finished() -> JSON | None:
        current = await client.get(kinds.PODS, name, domain)
        return current if (current.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    done = await _until(finished, 60)
    if not done:
        return f"pod {name}: not finished within 60 s"
    logs = await client.request("GET", f"/api/v1/namespaces/{domain}/pods/{name}/log")
    node = done["spec"].get("nodeName", "?")
    return f"pod {name} on node {node}: {done['status']['phase']}; log: {str(logs).strip()}"


async def run_quickstart(data_dir: Path, *, exit_after: bool, say: Say) -> None:
    config = load_config(master_config(data_dir))
    node = MasterNode(config)
    started = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        master = tg.create_task(node.run(), name="quickstart/master")
        await node.ready.wait()
        kubeconfig = data_dir / "admin.kubeconfig"
        kubeconfig.write_text(dump(admin_kubeconfig(node.pki, node.url)))
        kubeconfig.chmod(0o600)
        say(f"master kuscia-system: API server {node.url} (ready in {time.monotonic() - started:.1f} s)")
        lites = [
            tg.create_task(
                LiteNode(lite_config(data_dir, d, kubeconfig, config.data_dir)).run(), name=f"quickstart/lite-{d}"
            )
            for d in DOMAINS
        ]
        async with node.client() as client:
            for domain in DOMAINS:
                await _apply_domain(client, domain)
            for domain in DOMAINS:
                quota = await _until(functools.partial(_quota, client, domain), 30)
                say(f"domain {domain}: namespace {domain}, quota {quota or 'not reconciled yet'}")
            for domain, line in zip(
                DOMAINS, await asyncio.gather(*(_run_demo_pod(client, d) for d in DOMAINS)), strict=True
            ):
                say(f"  {domain}: {line}")
        say("")
        say(f"export KUBECONFIG={kubeconfig.resolve()}")
        say("kubectl get domains; kubectl get nodes; kubectl get pods -A; kubectl get resourcequota -n alice")
        if exit_after:
            for task in (*lites, master):
                task.cancel()
        else:
            say("running; press Ctrl-C to stop")
