"""The node agent (RunP) through real kubectl 1.32: a master and two lite agents (alice, bob) as processes.

Pods are placed by the scheduler (toleration + nodeSelector, never ``spec.nodeName``); every
assertion is on what kubectl prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.e2e.conftest import Kubectl, table
from tests.e2e.lite_network import Network, lite_network, node_ready, until
from tests.integration.agents import processes_with, stable_processes
from tests.integration.lite_procs import LEASE_SECONDS, stop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def network(module_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with lite_network(module_server, tmp_path_factory.mktemp("lite")) as net:
        yield net


def pod_yaml(name: str, domain: str, script: str, *, restart: str = "Never", grace: int = 30, extra: str = "") -> str:
    """A pod for ``domain``'s node, placed by the scheduler (toleration + nodeSelector)."""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {domain}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: {grace}
  nodeSelector:
    kuscia.secretflow/namespace: {domain}
  tolerations:
  - key: kuscia.secretflow/agent
    operator: Exists
    effect: NoSchedule
  containers:
  - name: main
    image: app:v1
    command: ["sh", "-c", {json.dumps(script)}]
{extra}"""


def status(kubectl: Kubectl, name: str, namespace: str) -> dict[str, str]:
    """``kubectl get pod`` as a column → cell mapping."""
    rows = table(kubectl.out("get", "pod", name, "-n", namespace, "-o", "wide"))
    return dict(zip(rows[0], rows[1], strict=False))


def wait_status(kubectl: Kubectl, name: str, namespace: str, wanted: str, timeout: float = 30) -> dict[str, str]:
    return until(lambda: (row := status(kubectl, name, namespace))["STATUS"] == wanted and row, timeout)  # type: ignore[no-any-return]


def group_members(groups: set[int]) -> set[int]:
    """Live (not zombie) processes whose process group is one of ``groups``."""
    members = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) in groups:
                members.add(int(name))
    return members


def test_pod_through_the_scheduler_runs_to_completion_with_logs(network: Network) -> None:
    k = network.kubectl
    script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done"
    assert k.apply(pod_yaml("hello", "alice", script), "hello.yaml") == "pod/hello created"
    row = wait_status(k, "hello", "alice", "Running")
    assert row["NODE"] == "alice-node" and row["READY"] == "1/1"
    follow = k.popen("logs", "-f", "hello", "-n", "alice")
    first = follow.stdout.readline() if follow.stdout else ""
    assert first.startswith("line ") and status(k, "hello", "alice")["STATUS"] == "Running", "streamed while running"
    try:
        rest, _err = follow.communicate(timeout=20)  # -f ends when the container exits
    finally:
        follow.kill()
    assert [first.strip(), *rest.strip().splitlines()][-1] == "line 6" and follow.returncode == 0
    row = wait_status(k, "hello", "alice", "Completed")
    assert row["READY"] == "0/1" and row["RESTARTS"] == "0"
    assert k.out("logs", "hello", "-n", "alice").splitlines() == [f"line {i}" for i in range(1, 7)]
    assert k.out("get", "pod", "hello", "-n", "alice", "-o", "jsonpath={.status.phase}") == "Succeeded"


def test_failing_pod_shows_error_exit_code_and_message(network: Network) -> None:
    k = network.kubectl
    k.apply(pod_yaml("broken", "alice", "echo 'disk full' > /dev/termination-log; exit 3"), "broken.yaml")
    row = wait_status(k, "broken", "alice", "Error")
    assert row["RESTARTS"] == "0"
    term = ".status.containerStatuses[0].state.terminated"
    cols = f"EXIT:{term}.exitCode,MESSAGE:{term}.message"
    assert table(k.out("get", "pod", "broken", "-n", "alice", "-o", f"custom-columns={cols}"))[1] == ["3", "disk full"]
    described = k.out("describe", "pod", "broken", "-n", "alice")
    shown = r"State:\s+Terminated\n\s+Reason:\s+Error\n\s+Message:\s+disk full\n\s+Exit Code:\s+3"
    assert re.search(shown, described), described
    assert re.search(r"Status:\s+Failed", described)


def test_always_pod_is_restarted_with_back_off(network: Network) -> None:
    k = network.kubectl
    k.apply(pod_yaml("crasher", "alice", "echo crashing; exit 1", restart="Always"), "crasher.yaml")
    seen: list[tuple[float, str, int]] = []

    def third_restart() -> bool:
        row = status(k, "crasher", "alice")
        restarts = int(row["RESTARTS"].split()[0])
        if not seen or seen[-1][1:] != (row["STATUS"], restarts):
            seen.append((time.monotonic(), row["STATUS"], restarts))
        return restarts >= 3

    until(third_restart, 45, interval=0.1)
    assert "CrashLoopBackOff" in {s for _t, s, _r in seen}, seen
    first = {r: t for t, _s, r in reversed(seen)}
    assert first[3] - first[2] > first[2] - first[1] > 0.5, seen  # back-off 1 s, 2 s, 4 s (backoffMax 4)
    described = k.out("describe", "pod", "crasher", "-n", "alice")
    assert "Back-off restarting failed container main in pod crasher_alice" in described
    assert re.search(r"Last State:\s+Terminated\n\s+Reason:\s+Error\n\s+Exit Code:\s+1", described), described
    k.run("delete", "pod", "crasher", "-n", "alice", "--grace-period=1")


def test_deleting_a_long_running_pod_ends_its_process_group(network: Network) -> None:
    k = network.kubectl
    marker = "marker-stubborn-e2e"
    script = f"trap '' TERM; sleep 600 & while :; do sleep 0.2; done # {marker}"
    k.apply(pod_yaml("stubborn", "alice", script, grace=2), "stubborn.yaml")
    wait_status(k, "stubborn", "alice", "Running")
    groups = {os.getpgid(pid) for pid in processes_with(marker)}
    until(lambda: len(group_members(groups)) >= 3, 10)  # shim, sh, sleep 600, the loop's sleep
    t0 = time.monotonic()
    assert k.out("delete", "pod", "stubborn", "-n", "alice", timeout=30) == 'pod "stubborn" deleted'
    assert time.monotonic() - t0 < 2 + 8, "deleted within the grace period (2 s) and some slack (not the default 30 s)"
    until(lambda: group_members(groups) == set() and processes_with(marker) == [], 10)  # SIGKILLed: reaped soon
    assert "NotFound" in k.run("get", "pod", "stubborn", "-n", "alice", check=False).stderr


def test_a_pod_past_its_active_deadline_is_stopped_and_failed(network: Network) -> None:
    k = network.kubectl
    marker = "marker-deadline-e2e"
    extra = "  activeDeadlineSeconds: 2\n"
    k.apply(pod_yaml("overdue", "alice", f"sleep 600 # {marker}", restart="Always", grace=1, extra=extra),
            "overdue.yaml")
    cols = "PHASE:.status.phase,REASON:.status.reason,EXIT:.status.containerStatuses[0].state.terminated.exitCode"

    def columns() -> list[str]:
        return table(k.out("get", "pod", "overdue", "-n", "alice", "-o", f"custom-columns={cols}"))[1]

    # SIGTERM within the grace period (143); restartPolicy Always, yet not restarted
    until(lambda: columns() == ["Failed", "DeadlineExceeded", "143"], 20)
    message = k.out("get", "pod", "overdue", "-n", "alice", "-o", "jsonpath={.status.message}")
    assert message == "Pod was active on the node longer than the specified deadline"
    assert status(k, "overdue", "alice")["RESTARTS"] == "0"
    until(lambda: processes_with(marker) == [], 10)
    described = k.out("describe", "pod", "overdue", "-n", "alice")
    assert re.search(r"Normal\s+DeadlineExceeded\s+.*Pod was active on the node longer than the specified deadline",
                     described), described
    k.run("delete", "pod", "overdue", "-n", "alice", "--grace-period=1")


def test_kill_9_of_an_agent_keeps_pods_and_leaves_no_orphans(network: Network) -> None:
    k = network.kubectl
    keep, doomed, short = "marker-keep-e2e", "marker-doomed-e2e", "marker-short-e2e"
    loop = "while :; do sleep 0.2; done # "
    k.apply(pod_yaml("keeper", "bob", loop + keep), "keeper.yaml")
    k.apply(pod_yaml("doomed", "bob", loop + doomed), "doomed.yaml")
    k.apply(pod_yaml("short", "bob", f"sleep 3; echo done # {short}"), "short.yaml")
    for name in ("keeper", "doomed", "short"):
        wait_status(k, name, "bob", "Running")
    before = asyncio.run(stable_processes(keep))
    assert before and processes_with(doomed)
    network.agents["bob"].send_signal(signal.SIGKILL)
    network.agents["bob"].wait()
    k.run("delete", "pod", "doomed", "-n", "bob", "--force", "--grace-period=0")  # gone while its agent is down
    time.sleep(4)  # "short" exits while the agent is down
    assert asyncio.run(stable_processes(keep)) == before, "pods survive their agent"
    network.restart("bob")
    wait_status(k, "short", "bob", "Completed")
    row = wait_status(k, "keeper", "bob", "Running")
    assert row["READY"] == "1/1" and row["RESTARTS"] == "0"
    cols = "READY:.status.containerStatuses[0].ready,STARTED:.status.containerStatuses[0].started"
    assert table(k.out("get", "pod", "keeper", "-n", "bob", "-o", f"custom-columns={cols}"))[1] == ["true", "true"]
    assert asyncio.run(stable_processes(keep)) == before, "re-adopted, not started twice"
    until(lambda: processes_with(doomed) == [], 10)  # the orphan's processes were killed
    assert len(list((network.base / "bob" / "agent" / "pods").iterdir())) == 2, "only keeper's and short's sandboxes"
    k.run("delete", "pod", "keeper", "short", "-n", "bob", "--grace-period=1")
    until(lambda: processes_with(keep) == [], 10)


def test_stopped_agent_makes_its_node_not_ready_in_the_domain(network: Network) -> None:
    k = network.kubectl

    def domain_nodes() -> dict[str, str]:
        raw = k.out("get", "domain", "bob", "-o", "jsonpath={.status.nodeStatuses}")
        return {n["name"]: n["status"] for n in json.loads(raw or "[]")}

    until(lambda: domain_nodes().get("bob-node") == "Ready", 30)
    t0 = time.monotonic()
    stop(network.agents["bob"])
    until(lambda: node_ready(k, "bob-node") == "NotReady", LEASE_SECONDS + 6)
    assert time.monotonic() - t0 <= LEASE_SECONDS + 6
    until(lambda: domain_nodes().get("bob-node") == "NotReady", 10)
    assert node_ready(k, "alice-node") == "Ready"
    network.restart("bob")
    until(lambda: domain_nodes().get("bob-node") == "Ready", 30)
