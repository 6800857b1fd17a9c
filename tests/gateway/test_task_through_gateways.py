"""Contract C2 end to end: a two-party KusciaTask whose alice process reaches bob's process only
through the two gateways — the tasks controller allocates the egress port and creates the egress
Service, alice's gateway opens it, bob's gateway routes the tunnel to bob's headless Service
(Endpoints from the real RunP pod) after checking the route's negotiated token."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import random
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import kinds
from atoll.api.kuscia_tasks import APPIMAGES
from atoll.controllers import ControllerContext, endpoints, kusciatask
from atoll.controllers import domainroute as route_controllers
from atoll.controllers.kusciatask.ports import PortAllocator
from atoll.gateway import crypto
from atoll.gateway.model import ListenerOptions
from atoll.gateway.module import GatewayModule, GatewayOptions
from atoll.runtime import Manager
from tests.conftest import eventually, free_port, start_until_ready
from tests.gateway.network import CDRS, cdr
from tests.integration.task_network import app_image, kuscia_task, task_network

pytestmark = pytest.mark.slow

SCRIPT = """
import json, os, pathlib, socket, sys, time
out = pathlib.Path(json.loads(os.environ["TASK_INPUT_CONFIG"])["out"])
me = os.environ["KUSCIA_DOMAIN_ID"]
define = json.loads(os.environ["TASK_CLUSTER_DEFINE"])
if me == "bob":
    server = socket.create_server(("127.0.0.1", int(os.environ["KUSCIA_PORT_SVC_NUMBER"])))
    server.settimeout(60)
    conn, _ = server.accept()
    conn.sendall(conn.recv(100).upper())
    conn.close()
    sys.exit(0)
peer = next(s for s in define["parties"][1]["services"] if s["portName"] == "svc")["endpoints"][0]
host, port = peer.rsplit(":", 1)
deadline = time.time() + 60
while True:
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"hello bob through the gateways")
            got = s.recv(100)
        if got:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit(3)
    time.sleep(0.2)
(out / "alice.json").write_text(json.dumps({"endpoint": peer, "answer": got.decode()}))
"""


def two_role_image() -> dict[str, object]:
    """bob (guest) serves ``svc`` to other domains; alice (host) has only Domain-scope ports.

    Port allocators are per domain (20000 up in each) and the lites share this host, so two
    domains can be handed the same number (reported to the tasks owners). Three alice ports put
    alice's egress port past bob's ``svc`` port, so this test does not depend on that."""
    image = app_image("atoll-gw-test", cpu="0.5")
    template = image["spec"]["deployTemplates"][0]
    guest = {**template, "role": "guest"}
    guest["spec"]["containers"][0]["command"] = [sys.executable, "-c", SCRIPT]
    guest["spec"]["containers"][0]["ports"] = [{"name": "svc", "scope": "Cluster", "protocol": "HTTP"}]
    host_container = {**guest["spec"]["containers"][0],
                      "ports": [{"name": n, "scope": "Domain"} for n in ("a", "b", "c")]}  # fmt: skip
    host = {**template, "role": "host", "spec": {"containers": [host_container]}}
    image["spec"]["deployTemplates"] = [host, guest]
    return image


async def test_task_processes_talk_through_the_egress_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # other test processes on this host (e.g. quickstarts) bind task ports from 20000 up: hand out
    # ports from a random block of the range instead, so their processes and ours do not collide
    low = random.randrange(21000, 32000, 100)
    monkeypatch.setattr(kusciatask, "PortAllocator", functools.partial(PortAllocator, low=low, high=low + 99))
    async with task_network(tmp_path / "net") as net:
        await net.client.create(APPIMAGES, two_role_image())
        keys = {d: rsa.generate_private_key(public_exponent=65537, key_size=2048) for d in ("alice", "bob")}
        for name, key in keys.items():
            cert = base64.b64encode(crypto.self_signed_cert(key, name)).decode()
            body = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name},
                    "spec": {"cert": cert}}  # fmt: skip
            await net.client.create(kinds.DOMAINS, body)
        manager = Manager(net.client)
        ctx = ControllerContext(net.client)
        route_controllers.setup(manager, ctx, monitor_period=0.3)
        endpoints.setup(manager, ctx)
        controllers = asyncio.create_task(manager.run())
        gateways: list[asyncio.Task[None]] = []
        modules: dict[str, GatewayModule] = {}
        try:
            ports = {d: (free_port(), free_port()) for d in keys}
            for name, key in keys.items():
                options = GatewayOptions(
                    domain=name, domain_key=key, run_dir=tmp_path / f"gw-{name}", instance=f"{name}-gw",
                    listeners=ListenerOptions("127.0.0.1", ports[name][0], "127.0.0.1", ports[name][1]),
                )  # fmt: skip
                module = modules[name] = GatewayModule(net.client, options)
                gateways.append(await start_until_ready(module.run(), module.ready, 30, f"gateway {name}"))
            await net.client.create(CDRS, cdr("alice", "bob", ports["bob"][0]))
            out = tmp_path / "out"
            out.mkdir()
            await net.client.create(kinds.kind("kuscia.secretflow", "kusciatasks"),
                                    kuscia_task("t-gw", out, image="atoll-gw-test"), "cross-domain")  # fmt: skip

            async def succeeded() -> None:
                phase = ((await net.get_task("t-gw")).get("status") or {}).get("phase")
                assert phase in ("Succeeded", "Failed"), phase
                assert phase == "Succeeded", (await net.get_task("t-gw"))["status"]

            await eventually(succeeded, 60, every=0.3)
            seen = json.loads((out / "alice.json").read_text())
            assert seen["answer"] == "HELLO BOB THROUGH THE GATEWAYS"
            task = await net.get_task("t-gw")
            bob = next(e for e in task["status"]["allocatedPorts"] if e["domainID"] == "bob")
            egress = int(seen["endpoint"].rsplit(":", 1)[1])
            assert seen["endpoint"].startswith("127.0.0.1:") and egress != bob["namedPort"]["t-gw-guest-0/svc"]
            assert low <= egress <= low + 99
            stats = await modules["alice"].supervisor.admin_get("/stats?filter=^tcp\\.egress_")
            opened = [line for line in stats.splitlines() if line.endswith("downstream_cx_total: 0") is False
                      and "downstream_cx_total" in line]  # fmt: skip
            assert opened, stats  # the bytes went through alice's egress listener
        finally:
            for task in (*gateways, controllers):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
