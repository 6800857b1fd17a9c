"""A three-node centralised network as real processes: master ``kuscia-system`` + lites alice, bob.

One network per module (``atoll init`` + ``atoll start`` each, lites registered with deploy tokens,
routes alice↔bob). Checks registration's refusals (used / unknown token, wrong key, unreachable
master, TLS/plaintext mismatch — one error line, exit 1, nothing stored), the lite identity's
RBAC, ``kubectl logs`` of pods on both lites from the master's kubeconfig, Kuscia's ``kubectl get
cdr`` columns, the master-side CLI's error lines, and a lite surviving ``kill -9``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from atoll.api import kinds
from atoll.node.config import load_config
from atoll.node.leftovers import sweep_pods
from atoll.node.network import (
    ATOLL,
    MASTER_DOMAIN,
    LocalNetwork,
    NetworkError,
    NodeProcess,
    free_port,
)
from atoll.node.quickstart import demo_image, run_demo_pod
from atoll.node.quickstart_job import (
    KUSCIAJOBS,
    KUSCIATASKS,
    ExampleData,
    JobError,
    check_outputs,
    example_data,
    follow_job,
    psi_job,
    run_job,
)
from atoll.node.quickstart_job import prepare as prepare_psi
from atoll.node.registration import RegistrationError, lite_kubeconfig, load_registration, register
from tests.conftest import REPO, assert_cache_intact, eventually, kubectl_binary, kubectl_environ
from tests.e2e.conftest import Kubectl, table

pytestmark = pytest.mark.slow
TIMERS = {"leaseDuration": 6, "leaseRenew": 1, "backoffInitial": 1, "backoffMax": 4}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    net = LocalNetwork(tmp_path_factory.mktemp("net"), agent_timers=dict(TIMERS))
    try:
        asyncio.run(net.up())
        for lite in net.lites.values():
            subprocess.run([*ATOLL, "image", "load", "-c", str(lite.config), "--name", "atoll/quickstart-hello:v1",
                            str(demo_image(net.base))], check=True, capture_output=True, cwd=REPO)
        yield net
    finally:
        net.stop()
    assert net.master is not None
    assert_cache_intact(net.master.log)  # ATOLL_VERIFY_CACHE: no reader mutated the master's watch cache


@pytest.fixture(scope="module")
def kubectl(network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    base = tmp_path_factory.mktemp("kubectl")
    env = kubectl_environ(base)
    env.pop("KUBECONFIG", None)
    return Kubectl(kubectl_binary("1.32"), network.kubeconfig, env, base / "work", "1.32")


def atoll(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATOLL, *args], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, **(env or {})})


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and " INFO " not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def init_lite(base: Path, domain: str, endpoint: str, token: str) -> Path:
    data = base / domain
    result = atoll("init", "--mode", "lite", "-d", domain, "--data-dir", str(data), "-m", endpoint, "-t", token)
    assert result.returncode == 0, result.stderr
    return data / "kuscia.yaml"


def used_token(network: LocalNetwork, kubectl: Kubectl, domain: str) -> str:
    path = '{.status.deployTokenStatuses[?(@.state=="used")].token}'
    return kubectl.out("get", "domain", domain, "-o", f"jsonpath={path}")


def assert_nothing_stored(config: Path) -> None:
    pki = config.parent / "pki"
    assert sorted(p.name for p in pki.iterdir()) == ["domain.key"]


# -- registration refusals ---------------------------------------------------------------------------


def test_registration_with_a_used_token_is_refused(network: LocalNetwork, kubectl: Kubectl, tmp_path: Path) -> None:
    config = init_lite(tmp_path, "alice", network.master_endpoint, used_token(network, kubectl, "alice"))
    line = one_error_line(atoll("start", "-c", str(config)))
    assert "deploy token found but used" in line and "alice" in line
    assert_nothing_stored(config)


def test_registration_with_an_unknown_token_is_refused(network: LocalNetwork, tmp_path: Path) -> None:
    config = init_lite(tmp_path, "bob", network.master_endpoint, "x" * 32)
    line = one_error_line(atoll("start", "-c", str(config)))
    assert "deploy token not found for domain bob" in line
    assert_nothing_stored(config)


def test_registration_of_an_unknown_domain_is_refused(network: LocalNetwork, tmp_path: Path) -> None:
    config = init_lite(tmp_path, "nobody", network.master_endpoint, "x" * 32)
    line = one_error_line(atoll("start", "-c", str(config)))
    assert "domain nobody not found" in line and "atoll domain add-lite nobody" in line
    assert_nothing_stored(config)


def test_unreachable_master_and_tls_mismatch_are_one_line(network: LocalNetwork, tmp_path: Path) -> None:
    closed = init_lite(tmp_path / "a", "bob", f"http://127.0.0.1:{free_port()}", "x" * 32)
    assert "master unreachable" in one_error_line(atoll("start", "-c", str(closed)))
    assert_nothing_stored(closed)
    tls = init_lite(tmp_path / "b", "bob", network.master_endpoint.replace("http:", "https:"), "x" * 32)
    assert "TLS handshake failed" in one_error_line(atoll("start", "-c", str(tls)))
    assert_nothing_stored(tls)


async def test_a_key_that_does_not_match_the_domain_cert_is_refused(network: LocalNetwork, tmp_path: Path) -> None:
    from atoll.node.admin_ops import add_lite, wait_token

    async with network.client() as client:
        token = await add_lite(client, "carol", "kuscia-system")
    first = load_config(init_lite(tmp_path / "1", "carol", network.master_endpoint, token))
    registration = await register(first, "carol-node")
    assert load_registration(first) == registration
    # the same key registers again without a token (a lite that lost its registration files)
    (first.data_dir / "pki" / "registration.json").unlink()
    first.lite_deploy_token = ""
    assert await register(first, "carol-node") == registration
    async with network.client() as client:
        fresh = await wait_token(client, "carol")
        domain = await client.get(kinds.DOMAINS, "carol")
    assert fresh != token
    assert {"token": token, "state": "used"}.items() <= domain["status"]["deployTokenStatuses"][0].items()
    other = load_config(init_lite(tmp_path / "2", "carol", network.master_endpoint, fresh))
    assert other.domain_key_data != first.domain_key_data
    with pytest.raises(RegistrationError, match="does not match its registered certificate"):
        await register(other, "carol-node")
    assert_nothing_stored(other.data_dir / "kuscia.yaml")
    async with network.client() as client:  # the fresh token was not consumed by the refused attempt
        assert await wait_token(client, "carol") == fresh


def test_init_refuses_a_lite_without_endpoint_or_token(tmp_path: Path) -> None:
    assert "--master-endpoint is required" in one_error_line(
        atoll("init", "--mode", "lite", "-d", "alice", "--data-dir", str(tmp_path / "x"), "-t", "t"))
    assert "--lite-deploy-token is required" in one_error_line(
        atoll("init", "--mode", "lite", "-d", "alice", "--data-dir", str(tmp_path / "y"), "-m", "http://h:1"))


# -- the lite's identity -----------------------------------------------------------------------------


def lite_kubectl(network: LocalNetwork, kubectl: Kubectl, domain: str) -> Kubectl:
    config = load_config(network.lites[domain].config)
    registration = load_registration(config)
    assert registration is not None
    path = kubectl.workdir / f"{domain}.kubeconfig"
    path.write_text(yaml.safe_dump(lite_kubeconfig(config, registration)))
    return kubectl.with_kubeconfig(path)


def test_a_lite_cannot_read_or_write_the_other_lites_namespace(network: LocalNetwork, kubectl: Kubectl) -> None:
    alice = lite_kubectl(network, kubectl, "alice")
    assert alice.out("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}") == "system:node:alice"
    alice.run("get", "pods", "-n", "alice")
    for args in (("get", "pods", "-n", "bob"), ("get", "configmaps", "-n", "bob"),
                 ("create", "configmap", "x", "-n", "bob"), ("get", "domains"), ("get", "cdr"),
                 ("delete", "node", "bob-node"), ("get", "lease", "bob-node", "-n", "kube-node-lease")):
        result = alice.run(*args, check=False)
        assert result.returncode != 0 and "forbidden" in result.stderr.lower(), (args, result.stderr)
    # its own Node, but it cannot move it into another domain
    relabel = alice.run("label", "node", "alice-node", "kuscia.secretflow/namespace=bob", "--overwrite", check=False)
    assert relabel.returncode != 0 and "must be \"alice\"" in relabel.stderr


# -- kubectl against the master ----------------------------------------------------------------------


async def test_kubectl_logs_of_a_pod_on_each_lite(network: LocalNetwork, kubectl: Kubectl) -> None:
    async with network.client() as client:
        lines = await asyncio.gather(*(run_demo_pod(client, d) for d in ("alice", "bob")))
    for domain, line in zip(("alice", "bob"), lines, strict=True):
        pod = line.split()[1]
        out = await asyncio.to_thread(kubectl.out, "logs", "-n", domain, pod)
        assert out == f"hello from {domain}, pod {pod} on node {domain}-node"


async def test_kubectl_get_cdr_ready_true_with_kuscias_columns(network: LocalNetwork, kubectl: Kubectl) -> None:
    """Seed 003: all four routes Ready (handshakes through the real Envoys)."""

    names = {"alice-bob", "bob-alice", "alice-kuscia-system", "bob-kuscia-system"}  # carol never runs

    async def all_ready() -> list[list[str]]:
        rows = table(await asyncio.to_thread(kubectl.out, "get", "cdr"))
        assert all(row[-1] == "True" for row in rows[1:] if row[0] in names), rows
        return rows

    rows = await eventually(all_ready, 60, every=0.5)
    assert rows[0] == ["NAME", "SOURCE", "DESTINATION", "HOST", "AUTHENTICATION", "READY"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["alice-bob"] == ["alice-bob", "alice", "bob", "127.0.0.1", "Token", "True"]
    assert by_name["bob-alice"] == ["bob-alice", "bob", "alice", "127.0.0.1", "Token", "True"]
    for lite in ("alice", "bob"):  # no HOST: the lite reaches the master through its masterEndpoint
        assert by_name[f"{lite}-kuscia-system"] == [f"{lite}-kuscia-system", lite, "kuscia-system", "Token", "True"]


# -- the PSI job through the gateways -----------------------------------------------------------------


@pytest.fixture(scope="module")
def psi_data(network: LocalNetwork) -> ExampleData:
    data = example_data(network.base / "example", rows=3000, overlap=1000)
    asyncio.run(prepare_psi(network, data))
    return data


async def test_the_psi_job_succeeds_with_correct_outputs(network: LocalNetwork, psi_data: ExampleData,
                                                         kubectl: Kubectl) -> None:
    async with network.client() as client:
        await run_job(client, psi_job("psi-first"), lambda line: None, within=120)
    lines = await check_outputs(network, psi_data)
    assert len(lines) == 2 and all("1,000 rows = the known overlap" in line for line in lines)
    rows = table(await asyncio.to_thread(kubectl.out, "get", "kj", "-n", "cross-domain", "psi-first"))
    assert rows[0] == ["NAME", "STARTTIME", "COMPLETIONTIME", "LASTRECONCILETIME", "PHASE"]
    assert rows[1][0] == "psi-first" and rows[1][-1] == "Succeeded"


@pytest.mark.timeout(300)
async def test_killing_alice_mid_job_fails_it_naming_alice_and_a_rerun_succeeds(
    network: LocalNetwork, psi_data: ExampleData
) -> None:
    # tiny sequential batches keep the PSI running for seconds, so alice dies in the middle of it
    tuning = {"connect_timeout_seconds": 8, "peer_timeout_seconds": 8, "batch_size": 4, "window": 1}
    alice = network.lites["alice"]
    async with network.client() as client:
        await client.create(KUSCIAJOBS, psi_job("psi-killed", tuning), "cross-domain")

        async def both_pods_running() -> None:
            task = await client.get(KUSCIATASKS, "psi-killed-psi", "cross-domain")
            pods = (task.get("status") or {}).get("podStatuses") or {}
            assert len(pods) == 2 and all(p.get("podPhase") == "Running" for p in pods.values()), pods

        await eventually(both_pods_running, 60)
        alice.kill(signal.SIGKILL)  # the node and, below, its task processes: the machine is gone
        assert alice.proc is not None
        alice.proc.wait(10)
        sweep_pods(alice.data_dir)
        with pytest.raises(JobError) as failed:
            await follow_job(client, "psi-killed", lambda line: None, within=120)
    assert "party alice" in str(failed.value), failed.value
    await network.start_lite("alice")  # its stale Envoy is killed, its task processes re-adopted
    await network.wait_routes_ready()
    async with network.client() as client:
        await run_job(client, psi_job("psi-again"), lambda line: None, within=120)
    await check_outputs(network, psi_data)


# -- master-side CLI ---------------------------------------------------------------------------------


def test_master_cli_error_lines(network: LocalNetwork) -> None:
    env = {"ATOLL_CONFIG": str(network.master.config if network.master else "")}
    assert "RFC 1123" in one_error_line(atoll("domain", "add-lite", "Not_A_Label", env=env))
    assert "DST: domain nobody not found" in one_error_line(atoll("route", "create", "alice", "nobody",
                                                                  "http://127.0.0.1:1", env=env))
    assert "must be http(s)://" in one_error_line(atoll("route", "create", "alice", "bob", "ftp://x", env=env))
    assert "not found" in one_error_line(atoll("token", "show", "nobody", env=env))
    assert "which master?" in one_error_line(atoll("token", "show", "alice", env={"ATOLL_CONFIG": "",
                                                                                  "KUBECONFIG": ""}))
    shown = atoll("token", "show", "alice", env=env)
    assert shown.returncode == 0 and len(shown.stdout.strip()) == 32
    again = atoll("route", "create", "alice", "bob", f"http://127.0.0.1:{network.lites['bob'].external_port}", env=env)
    assert again.stdout.strip() == "clusterdomainroute.kuscia.secretflow/alice-bob configured"


# -- restarts ----------------------------------------------------------------------------------------


async def test_a_lite_killed_with_sigkill_comes_back_without_registering_again(network: LocalNetwork) -> None:
    alice = network.lites["alice"]
    registration = (alice.data_dir / "pki" / "registration.json").read_bytes()
    alice.kill(signal.SIGKILL)
    assert alice.proc is not None
    alice.proc.wait(10)
    await network.start_lite("alice")
    assert (alice.data_dir / "pki" / "registration.json").read_bytes() == registration
    async with network.client() as client:
        line = await eventually(lambda: run_demo_pod(client, "alice"), 30)
    assert "Succeeded; log: hello from alice" in line


async def test_a_restarted_lite_whose_port_is_taken_says_so_instead_of_moving(network: LocalNetwork) -> None:
    """Routes carry a lite's ports: once they exist, a taken port is an error naming it, not a
    silent move that would cut every peer off the lite."""
    alice = network.lites["alice"]
    before = alice.config.read_text()
    port = int(yaml.safe_load(before)["datamesh"]["httpPort"])
    alice.kill(signal.SIGKILL)
    assert alice.proc is not None
    alice.proc.wait(10)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(NetworkError, match="routes to alice use its ports, so it cannot move to others"):
            await network.start_lite("alice")
    assert alice.config.read_text() == before
    await network.start_lite("alice")
    await network.wait_routes_ready()


@pytest.mark.timeout(300)
async def test_the_master_killed_with_sigkill_comes_back_and_the_lites_resume(network: LocalNetwork) -> None:
    master = network.master
    assert master is not None and master.proc is not None
    master.kill(signal.SIGKILL)
    master.proc.wait(10)
    marks = {domain: lite.log.stat().st_size for domain, lite in network.lites.items()}
    for domain in network.lites:  # the master stays away until every lite's gateway beat against it
        await eventually(lambda d=domain: _gateway_beat_failed(network, d, marks[d]), 40, every=0.5)  # type: ignore[misc]
    await network.start_master()
    for domain in ("alice", "bob"):
        await eventually(lambda d=domain: _assert_ready(network, d), 30)  # type: ignore[misc]
    async with network.client() as client:  # the restarted master first waits out the dead one's lease
        line = await run_demo_pod(client, "bob", within=150)
    assert "Succeeded; log: hello from bob" in line
    await network.wait_routes_ready()  # the master's Envoy came back (the stale one was killed)
    result = await asyncio.to_thread(subprocess.run, ["curl", "-sv", network.master_endpoint], capture_output=True,
                                     text=True, timeout=30)
    assert "401 Unauthorized" in result.stderr and result.stdout.strip() == "unauthorized."


def _gateway_beat_failed(network: LocalNetwork, domain: str, since: int) -> bool:
    """The lite's Gateway heartbeat (every 15 s, through the master API) failed after ``since`` (a
    log offset) and the lite still runs: such a beat used to stop the whole lite, leaving its pods
    Pending on a Node that still read Ready."""
    lite = network.lites[domain]
    assert lite.alive(), f"lite {domain} exited: {lite.last_error()}"
    with open(lite.log, "rb") as log:
        log.seek(since)
        return re.search(rf"gateway {domain}/\S+ heartbeat: ", log.read().decode(errors="replace")) is not None


async def _assert_ready(network: LocalNetwork, domain: str) -> None:
    assert await network.node_ready(domain)


def test_curl_to_the_master_endpoint_answers_401_unauthorized(network: LocalNetwork) -> None:
    """Kuscia's documented connectivity check for a lite's masterEndpoint."""
    result = subprocess.run(["curl", "-kv", network.master_endpoint], capture_output=True, text=True, timeout=30)
    assert "< HTTP/1.1 401 Unauthorized" in result.stderr, result.stderr
    assert result.stdout.strip() == "unauthorized."


async def test_a_tls_master_registers_https_lites_and_refuses_plaintext(tmp_path: Path) -> None:
    from atoll.node.admin_ops import add_lite

    data = tmp_path / "master"  # where LocalNetwork finds (and reuses) a master's config
    port = free_port()
    assert atoll("init", "--mode", "master", "-d", "kuscia-system", "--data-dir", str(data), "-p", "TLS",
                 "--api-port", str(free_port()), "--external-port", str(port)).returncode == 0
    net = LocalNetwork(tmp_path)
    try:
        await net.start_master()
        async with net.client() as client:
            assert await client.request("GET", "/readyz/gateway") == "ok"  # start_master waited for the gateway
            token = await add_lite(client, "dave", "kuscia-system")
        plain = init_lite(tmp_path / "plain", "dave", f"http://127.0.0.1:{port}", token)
        assert "does it expect TLS? then use https://" in one_error_line(atoll("start", "-c", str(plain)))
        assert_nothing_stored(plain)
        config = load_config(init_lite(tmp_path / "tls", "dave", f"https://127.0.0.1:{port}", token))
        registration = await register(config, "dave-node")
        assert registration.node_name == "dave-node"
    finally:
        net.stop()


async def test_a_master_whose_gateway_port_was_taken_meanwhile_moves_to_free_ports(tmp_path: Path) -> None:
    """Another program binds the gateway's port between ``atoll init`` and Envoy's start (Envoy then
    rejects that listener and keeps running): the network notices the foreign answer there and
    starts the master again on new ports, instead of handing lites a port that is not ours."""
    from aiohttp import web

    data, port = tmp_path / "master", free_port()
    assert atoll("init", "--mode", "master", "-d", "kuscia-system", "--data-dir", str(data),
                 "--api-port", str(free_port()), "--external-port", str(port)).returncode == 0
    squatter = web.Application()
    squatter.router.add_get("/", lambda _request: web.Response(text="not a gateway"))
    runner = web.AppRunner(squatter)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    net = LocalNetwork(tmp_path)
    try:
        await net.start_master()
        assert net.master is not None and net.master.external_port != port
        result = await asyncio.to_thread(subprocess.run, ["curl", "-sv", net.master_endpoint], capture_output=True,
                                         text=True, timeout=30)
        assert "< HTTP/1.1 401 Unauthorized" in result.stderr and result.stdout.strip() == "unauthorized."
    finally:
        net.stop()
        await runner.cleanup()


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_connection_dropped_on_the_gateway_port_is_no_foreign_answer(tmp_path: Path, how: str) -> None:
    """After a kill -9 the restarted master kills the stale Envoy that still holds its external port;
    a probe connected at that moment is dropped without an answer. That is "not yet", not another
    program on the port (which made the network move a restarted master to new ports, and its lites,
    which keep the old endpoint, never reached it again: their pods stayed Pending)."""

    async def drop(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if how == "reset":  # RST instead of FIN
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    net = LocalNetwork(tmp_path)
    net.master = NodeProcess(MASTER_DOMAIN, tmp_path / "kuscia.yaml", port)
    try:
        assert await net._gateway_answers() is False
    finally:
        server.close()
        await server.wait_closed()


async def test_a_restarted_master_with_lites_never_moves_its_ports(tmp_path: Path) -> None:
    """Once lites were initialised with the master's endpoint (and registered with its API address),
    a port taken while the master was down is an error naming it: moving the master would strand
    every lite (the restarted master binds their pods, nobody runs them: Pending)."""
    from aiohttp import web

    net = LocalNetwork(tmp_path, domains=("carol",))
    config = tmp_path / "master" / "kuscia.yaml"
    runner: web.AppRunner | None = None
    try:
        await net.start_master()
        await net.add_lite("carol")
        assert net.master is not None
        before = yaml.safe_load(config.read_text())
        port, api_port = net.master.external_port, int(before["apiserver"]["port"])
        net.master.stop()
        with socket.socket() as squatter:  # the API port
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", api_port))
            squatter.listen()
            with pytest.raises(NetworkError, match=r"address already in use.*lites use this master's ports"):
                await net.start_master()
        net.master.stop()
        squatter_app = web.Application()  # the gateway port
        squatter_app.router.add_get("/", lambda _request: web.Response(text="not a gateway"))
        runner = web.AppRunner(squatter_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        with pytest.raises(NetworkError, match=f"127.0.0.1:{port}.*lites use this master's ports"):
            await net.start_master()
        assert yaml.safe_load(config.read_text()) == before
    finally:
        net.stop()
        if runner is not None:
            await runner.cleanup()


async def test_stopping_a_network_ends_the_envoy_of_a_killed_node(tmp_path: Path) -> None:
    """Envoy runs in its own session: a node killed (kill -9) and not started again, as when a test
    fails between the two, left it running with the node's ports; the network's stop ends it."""
    net = LocalNetwork(tmp_path)
    try:
        await net.start_master()
        assert net.master is not None and net.master.proc is not None
        pid_file = tmp_path / "master" / "run" / "envoy" / "envoy.pid"
        envoy = int(await eventually(lambda: pid_file.read_text().strip(), 30))
        net.master.kill(signal.SIGKILL)
        net.master.proc.wait(10)
        assert _running(envoy), "Envoy outlives its node"
    finally:
        net.stop()
    assert not _running(envoy)


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()
