"""``atoll quickstart``: a whole centralised network on one machine, from nothing, in one command.

Three processes on 127.0.0.1 with free ports (:mod:`atoll.node.network`): the master
``kuscia-system`` and the lites ``alice`` and ``bob``, each registered with a one-time deploy token
(Kuscia's ``kuscia.sh center``), then the routes alice↔bob. It runs one task process in each
domain and shows its log fetched through the master (``kubectl logs`` reaches each lite with the
certificates registration issued), waits for the four routes to be Ready, writes example data,
and runs Kuscia's example job — a two-party PSI with the built-in ``atoll-psi`` app
(:mod:`atoll.node.quickstart_job`) — with live progress, checks both outputs against the known
overlap and stops everything (exit 0; non-zero naming the failing node or party and the reason).
``--keep`` leaves the network up until Ctrl-C/SIGTERM and prints the admin kubeconfig. Every run starts from a clean
``--data-dir``; Ctrl-C at any point stops every node and task process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.node.leftovers import kill_leftovers
from atoll.node.network import ATOLL, LocalNetwork, NetworkError
from atoll.node.quickstart_job import OVERLAP, ROWS, JobError, check_outputs, example_data, psi_job, run_job
from atoll.node.quickstart_job import prepare as prepare_psi

JSON = dict[str, Any]
Say = Callable[[str], None]
MARKER = ".atoll-quickstart"
DEMO_IMAGE = "atoll/quickstart-hello:v1"
DEMO_SCRIPT = '#!/bin/sh\necho "hello from $KUSCIA_DOMAIN_ID, pod $POD_NAME on node $NODE_NAME"\n'


class QuickstartError(RuntimeError):
    """The quickstart failed; the message names the node or party and the reason."""


def prepare(data_dir: Path) -> Path:
    """A clean data directory (a previous quickstart's is wiped; anything else is refused)."""
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise QuickstartError(f"--data-dir {data_dir} is not empty and not a quickstart directory")
        kill_leftovers(data_dir)  # a previous run that was itself killed
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("created by atoll quickstart; wiped by the next run\n")
    return data_dir


def demo_image(data_dir: Path) -> Path:
    source = data_dir / "images" / "hello"
    (source / "bin").mkdir(parents=True, exist_ok=True)
    script = source / "bin" / "hello"
    script.write_text(DEMO_SCRIPT)
    script.chmod(0o755)
    return source


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


async def run_demo_pod(client: Client, domain: str, within: float = 60.0) -> str:
    pod = await client.create(kinds.PODS, demo_pod(domain), domain)
    name = pod["metadata"]["name"]
    deadline = time.monotonic() + within
    while True:
        current = await client.get(kinds.PODS, name, domain)
        phase = (current.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            break
        if time.monotonic() > deadline:
            raise QuickstartError(f"party {domain}: pod {name} not finished within {within:.0f} s (phase {phase})")
        await asyncio.sleep(0.1)
    logs = await client.request("GET", f"/api/v1/namespaces/{domain}/pods/{name}/log")
    line = f"pod {name} on node {current['spec'].get('nodeName', '?')}: {phase}; log: {str(logs).strip()}"
    if phase != "Succeeded":
        raise QuickstartError(f"party {domain}: {line}")
    return line


async def load_images(network: LocalNetwork, data_dir: Path) -> None:
    source = demo_image(data_dir)
    for lite in network.lites.values():
        proc = await asyncio.create_subprocess_exec(
            *ATOLL, "image", "load", "-c", str(lite.config), "--name", DEMO_IMAGE, str(source),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise QuickstartError(f"node {lite.domain}: image load failed: {err.decode().strip()}")


async def run_quickstart(data_dir: Path, *, keep: bool, say: Say, step: Callable[[str], Any]) -> None:
    """The whole quickstart; ``say`` prints a result line, ``step`` shows the current step (a context)."""
    started = time.monotonic()
    data_dir = prepare(data_dir)
    network = LocalNetwork(data_dir)
    try:
        with step("starting the master (kuscia-system)"):
            await network.start_master()
        say(f"✓ master kuscia-system: API server and registration endpoint {network.master_endpoint}")
        for domain in network.domains:
            with step(f"adding lite {domain} (Domain + deploy token)"):
                await network.add_lite(domain)
        await load_images(network, data_dir)
        with step("starting lites alice and bob (registration with deploy tokens)"):
            await asyncio.gather(*(network.start_lite(d) for d in network.domains))
        for domain in network.domains:
            say(f"✓ lite {domain}: registered with its deploy token; node {domain}-node Ready")
        with step("creating routes alice↔bob"):
            for line in await network.create_routes():
                say(f"✓ {line}")
        with step("running a task process in each domain"):
            async with network.client() as client:
                lines = await asyncio.gather(*(run_demo_pod(client, d) for d in network.domains))
        for domain, line in zip(network.domains, lines, strict=True):
            say(f"✓ {domain}: {line}")
        with step("waiting for the four routes to be Ready (token handshakes through the gateways)"):
            await network.wait_routes_ready()
        say("✓ routes Ready: alice-bob, bob-alice, alice-kuscia-system, bob-kuscia-system")
        with step(f"example data: {ROWS:,} IDs per party, {OVERLAP:,} in common; image atoll-psi"):
            data = await asyncio.to_thread(example_data, data_dir / "example")
            await prepare_psi(network, data)
        say(f"✓ DomainData alice-table, bob-table: {ROWS:,} IDs each ({OVERLAP:,} in common); "
            f"image atoll-psi on both lites")
        name = f"psi-{time.strftime('%Y%m%d%H%M%S')}"
        with step(f"running KusciaJob {name}: ECDH-PSI between alice and bob through the gateways"):
            async with network.client() as client:
                await run_job(client, psi_job(name), lambda line: say(f"  {line}"))
        say(f"✓ KusciaJob {name}: Succeeded")
        for line in await check_outputs(network, data):
            say(f"✓ {line}")
        say(f"network up and verified in {time.monotonic() - started:.1f} s")
        if keep:
            show_kubectl(network, say)
            with contextlib.suppress(asyncio.CancelledError):  # the normal end of --keep: Ctrl-C / SIGTERM
                await asyncio.Event().wait()
    except (NetworkError, JobError) as exc:
        raise QuickstartError(str(exc)) from None
    except errors.APIError as exc:
        raise QuickstartError(f"master API: {exc.message}") from None
    finally:
        with step("stopping every node"):
            await asyncio.shield(asyncio.to_thread(network.stop))


def show_kubectl(network: LocalNetwork, say: Say) -> None:
    path = network.kubeconfig.resolve()
    say("")
    say(f"admin kubeconfig: {path}")
    say(f"export KUBECONFIG={path}")
    say("kubectl get cdr; kubectl get kj -n cross-domain; kubectl get pods -A; kubectl get domains")
    say("running; press Ctrl-C to stop")
