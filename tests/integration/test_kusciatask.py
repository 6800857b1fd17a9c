"""KusciaTask end to end: real master, real RunP agents for alice and bob, the task and
TaskResourceGroup controllers and the kuscia-scheduler on a FakeClock.

Aspects: a two-party task runs real processes that read TASK_CLUSTER_DEFINE / ALLOCATED_PORTS and
a rendered config template, and succeeds (distinct ports, loopback + egress endpoints, egress
Services per C2, cleanup); all-or-nothing — while bob cannot fit, no pod of the task is bound in
alice either, and after lifecycleSeconds the task fails naming bob and the scheduler's reason;
bob gaining room before that lets the task proceed; a failing process fails the task naming the
party and the exit code, its pod kept; kubectl shows Kuscia's columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.api.kuscia_tasks import KUSCIATASKS, TASKRESOURCEGROUPS, TASKRESOURCES
from atoll.runtime import metrics
from tests.conftest import eventually, kubectl_binary, kubectl_environ
from tests.integration.task_network import TaskNetwork, kuscia_task, task_network

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
JSON = dict[str, Any]
WITHIN = 30.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TaskNetwork]:
    async with task_network(tmp_path_factory.mktemp("tasks")) as network:
        yield network


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path


async def phase_of(net: TaskNetwork, name: str, *phases: str) -> JSON:
    async def check() -> JSON:
        task = await net.get_task(name)
        assert (task.get("status") or {}).get("phase") in phases, task.get("status")
        return task

    return await eventually(check, WITHIN)


async def hog(net: TaskNetwork, name: str, cpu: str) -> None:
    """An ordinary pod that takes ``cpu`` of bob's node."""
    pod = {
        "metadata": {"name": name, "namespace": "bob"},
        "spec": {
            "nodeSelector": {"kuscia.secretflow/namespace": "bob"},
            "tolerations": [{"key": "kuscia.secretflow/agent", "operator": "Exists"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "app:v1", "command": [sys.executable, "-c",
                                                                            "import time; time.sleep(600)"],
                            "resources": {"requests": {"cpu": cpu}}}],
        },
    }
    await net.client.create(kinds.PODS, pod, "bob")

    async def bound() -> None:
        assert (await net.client.get(kinds.PODS, name, "bob"))["spec"].get("nodeName") == "bob-node"

    await eventually(bound, WITHIN)


async def remove(net: TaskNetwork, name: str) -> None:
    await net.client.delete(kinds.PODS, name, "bob", grace_period_seconds=0)

    async def gone() -> None:
        try:
            await net.client.get(kinds.PODS, name, "bob")
        except NotFound:
            return
        raise AssertionError(f"pod {name} still exists")

    await eventually(gone, WITHIN)


async def group_phase(net: TaskNetwork, name: str, phase: str) -> JSON:
    async def check() -> JSON:
        group = await net.client.get(TASKRESOURCEGROUPS, name)
        assert (group.get("status") or {}).get("phase") == phase, group.get("status")
        return group

    return await eventually(check, WITHIN)


async def assert_nothing_bound(net: TaskNetwork, task: str) -> None:
    for domain, pod in (("alice", f"{task}-host-0"), ("bob", f"{task}-guest-0")):
        obj = await net.client.get(kinds.PODS, pod, domain)
        assert not obj["spec"].get("nodeName"), f"{domain}/{pod} was bound while bob could not reserve"
        assert not (obj.get("status") or {}).get("containerStatuses")


async def test_two_party_task_succeeds_with_cluster_define_and_distinct_ports(net: TaskNetwork, out: Path) -> None:
    await net.client.create(KUSCIATASKS, kuscia_task("t-ok", out), "cross-domain")
    await net.client.create(KUSCIATASKS, kuscia_task("t-ok2", out), "cross-domain")
    task = await phase_of(net, "t-ok", "Succeeded", "Failed")
    other = await phase_of(net, "t-ok2", "Succeeded", "Failed")
    assert task["status"]["phase"] == "Succeeded", task["status"]
    assert other["status"]["phase"] == "Succeeded", other["status"]
    status = task["status"]
    assert status["progress"] == 1.0 and status["completionTime"]
    assert [(p["domainID"], p["phase"]) for p in status["partyTaskStatus"]] == [("alice", "Succeeded"),
                                                                                ("bob", "Succeeded")]
    assert set(status["podStatuses"]) == {"alice/t-ok-host-0", "bob/t-ok-guest-0"}
    assert {s["portName"] for s in status["serviceStatuses"].values()} == {"svc", "ctl"}

    seen = {d: json.loads((out / f"t-ok-{d}.json").read_text()) for d in ("alice", "bob")}
    ports = {d: {p["name"]: p["port"] for p in seen[d]["allocated_ports"]["ports"]} for d in seen}
    assert seen["alice"]["port_env"] == str(ports["alice"]["svc"])
    assert seen["alice"]["conf"] == f"task=t-ok port={ports['alice']['svc']}\n"
    alice_view, bob_view = seen["alice"]["cluster_define"], seen["bob"]["cluster_define"]
    assert (alice_view["selfPartyIdx"], bob_view["selfPartyIdx"]) == (0, 1)
    assert [p["name"] for p in alice_view["parties"]] == ["alice", "bob"]
    own = {s["portName"]: s["endpoints"] for s in alice_view["parties"][0]["services"]}
    assert own == {"svc": [f"127.0.0.1:{ports['alice']['svc']}"], "ctl": [f"127.0.0.1:{ports['alice']['ctl']}"]}
    peer = {s["portName"]: s["endpoints"] for s in alice_view["parties"][1]["services"]}
    # bob's Cluster port is reached through alice's egress port; its Domain port is not reachable
    assert peer["ctl"] == [f"t-ok-guest-0-ctl.bob.svc:{ports['bob']['ctl']}"]
    egress_port = int(peer["svc"][0].split(":")[1])
    assert peer["svc"][0].startswith("127.0.0.1:") and egress_port not in ports["alice"].values()

    # ports: distinct per domain across both tasks (party ports and egress ports)
    allocated = [task["status"]["allocatedPorts"], other["status"]["allocatedPorts"]]
    for domain in ("alice", "bob"):
        numbers = [
            p for entries in allocated for e in entries if e["domainID"] == domain for p in e["namedPort"].values()
        ]
        assert len(numbers) == len(set(numbers)) == 2 * 3, numbers
        assert all(20000 <= p <= 32767 for p in numbers)

    # cleanup after success: pods, Services (incl. egress) and ConfigMaps are gone
    async def cleaned() -> None:
        for domain in ("alice", "bob"):
            labelled = "kuscia.secretflow/controller=kusciatask"
            for rd in (kinds.PODS, kinds.SERVICES, kinds.CONFIGMAPS):
                items = (await net.client.list(rd, domain, label_selector=labelled))["items"]
                assert not [i for i in items if i["metadata"]["annotations"]["kuscia.secretflow/task-id"] == "t-ok"]

    await eventually(cleaned, WITHIN)


async def test_egress_services_follow_contract_c2(net: TaskNetwork, out: Path) -> None:
    await net.client.create(KUSCIATASKS, kuscia_task("t-egress", out, lifecycle=600), "cross-domain")
    await hog(net, "hog-egress", "1500m")  # keeps the task reserving, so its objects stay up
    try:
        async def egress() -> JSON:
            return await net.client.get(kinds.SERVICES, "t-egress-guest-0-svc-bob", "alice")

        svc = await eventually(egress, WITHIN)
        task = await net.get_task("t-egress")
        alice_egress = next(e for e in task["status"]["allocatedPorts"] if e["role"] == "atoll.io/egress"
                            and e["domainID"] == "alice")
        bob_port = next(e for e in task["status"]["allocatedPorts"] if e["domainID"] == "bob" and e["role"] == "guest")
        assert svc["metadata"]["labels"]["atoll.io/egress"] == "true"
        assert svc["metadata"]["annotations"]["atoll.io/egress-host"] == "t-egress-guest-0-svc.bob.svc"
        remote = bob_port["namedPort"]["t-egress-guest-0/svc"]
        assert svc["metadata"]["annotations"]["atoll.io/egress-port"] == str(remote)
        assert svc["metadata"]["annotations"]["atoll.io/egress-domain"] == "bob"
        assert svc["spec"]["ports"][0]["port"] == alice_egress["namedPort"]["t-egress-guest-0-svc-bob/svc"]
        assert not svc["spec"].get("selector")
        headless = await net.client.get(kinds.SERVICES, "t-egress-guest-0-svc", "bob")
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["metadata"]["labels"]["kuscia.secretflow/loadbalancer"] == "domainroute"
    finally:
        await net.client.delete(KUSCIATASKS, "t-egress", "cross-domain")
        await remove(net, "hog-egress")

    async def deleted() -> None:
        for domain, name in (("alice", "t-egress-guest-0-svc-bob"), ("bob", "t-egress-guest-0-svc"),
                             ("alice", "t-egress-host-0")):
            rd = kinds.SERVICES if "svc" in name else kinds.PODS
            with pytest.raises(NotFound):
                obj = await net.client.get(rd, name, domain)
                raise AssertionError(f"{domain}/{name} still exists: {obj['metadata']}")

    await eventually(deleted, WITHIN)


async def test_all_or_nothing_fails_after_lifecycle_naming_bob(net: TaskNetwork, out: Path) -> None:
    await hog(net, "hog-fail", "1500m")
    try:
        await net.client.create(KUSCIATASKS, kuscia_task("t-nofit", out), "cross-domain")
        group = await group_phase(net, "t-nofit", "ReserveFailed")
        reserved = next(c for c in group["status"]["conditions"] if c["type"] == "TaskResourcesReserved")
        assert reserved["reason"].startswith("bob: pod t-nofit-guest-0: 0/2 nodes are available:")
        assert "Insufficient cpu (requested 1, free 0.5)" in reserved["reason"]
        bob_tr = next(tr for tr in (await net.client.list(TASKRESOURCES, "bob"))["items"]
                      if tr["metadata"]["annotations"]["kuscia.secretflow/task-resource-group"] == "t-nofit")
        assert bob_tr["status"]["phase"] == "Failed"
        await assert_nothing_bound(net, "t-nofit")
        net.clock.advance(31)  # one retry: still no room
        await eventually(lambda: _retried(net, "t-nofit"), WITHIN)
        await group_phase(net, "t-nofit", "ReserveFailed")
        await assert_nothing_bound(net, "t-nofit")
        net.clock.advance(300)
        task = await phase_of(net, "t-nofit", "Failed")
        message = task["status"]["message"]
        assert message.startswith("The task was not scheduled within 300 seconds: bob: pod t-nofit-guest-0: ")
        assert "Insufficient cpu (requested 1, free 0.5)" in message
        assert task["status"]["reason"] == "TaskResourceGroupPhaseFailed"
        parties = {p["domainID"]: p for p in task["status"]["partyTaskStatus"]}
        assert parties["bob"]["phase"] == "Failed" and "Insufficient cpu" in parties["bob"]["message"]

        async def warned() -> None:  # the Warning Event follows the status write
            events = (await net.client.list(kinds.EVENTS, "cross-domain",
                                            field_selector="involvedObject.name=t-nofit"))["items"]
            assert any("Insufficient cpu" in e["message"] for e in events), events

        await eventually(warned, WITHIN)
    finally:
        await remove(net, "hog-fail")


async def test_a_party_is_all_or_nothing_too(net: TaskNetwork, out: Path) -> None:
    """bob runs two pods and has room for one: neither is bound (nor alice's), the task fails."""
    await hog(net, "hog-half", "500m")
    try:
        await net.client.create(KUSCIATASKS, kuscia_task("t-half", out, bob_replicas=2), "cross-domain")
        group = await group_phase(net, "t-half", "ReserveFailed")
        assert group["spec"]["parties"][1]["minReservedPods"] == 2
        reserved = next(c for c in group["status"]["conditions"] if c["type"] == "TaskResourcesReserved")
        assert "Insufficient cpu (requested 1, free 0.5)" in reserved["reason"]
        for domain, pod in (("alice", "t-half-host-0"), ("bob", "t-half-guest-0"), ("bob", "t-half-guest-1")):
            obj = await net.client.get(kinds.PODS, pod, domain)
            assert not obj["spec"].get("nodeName"), f"{domain}/{pod} was bound although bob's party could not reserve"
        net.clock.advance(301)
        task = await phase_of(net, "t-half", "Failed")
        assert "bob: pod t-half-guest-" in task["status"]["message"]
    finally:
        await remove(net, "hog-half")


def ports_by_domain(tasks: list[JSON]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for task in tasks:
        for entry in task["status"].get("allocatedPorts") or []:
            out.setdefault(entry["domainID"], []).extend(entry["namedPort"].values())
    return out


async def allocated(net: TaskNetwork, *names: str) -> list[JSON]:
    async def check() -> list[JSON]:
        tasks = [await net.get_task(n) for n in names]
        assert all((t.get("status") or {}).get("allocatedPorts") for t in tasks)
        return tasks

    return await eventually(check, WITHIN)


async def test_ports_unique_under_concurrency_and_reclaimed_after_restart(net: TaskNetwork, out: Path) -> None:
    await net.client.create(KUSCIATASKS, kuscia_task("t-pdone", out), "cross-domain")
    await phase_of(net, "t-pdone", "Succeeded")
    await hog(net, "hog-ports", "1500m")  # the next tasks stay reserving: their ports stay in use
    live = [f"t-p{i}" for i in range(4)]
    try:
        await asyncio.gather(*(net.client.create(KUSCIATASKS, kuscia_task(n, out), "cross-domain") for n in live))
        held = ports_by_domain(await allocated(net, *live))
        for domain, ports in held.items():
            assert len(ports) == len(set(ports)) == 4 * 3, (domain, ports)

        await net.stop_controllers()  # a restart: the new allocator knows only what the API says
        net.start_controllers()
        await asyncio.gather(*(net.client.create(KUSCIATASKS, kuscia_task(n, out), "cross-domain")
                               for n in ("t-p4", "t-p5")))
        new = ports_by_domain(await allocated(net, "t-p4", "t-p5"))
        finished = [t for t in (await net.client.list(KUSCIATASKS, "cross-domain"))["items"]
                    if (t.get("status") or {}).get("completionTime")]
        reclaimed = ports_by_domain(finished)
        for domain, ports in new.items():
            assert len(ports) == len(set(ports)) == 2 * 3
            assert not set(ports) & set(held[domain]), f"{domain}: a live task's port was handed out again"
            assert set(ports) & set(reclaimed[domain]), f"{domain}: no port of a finished task was reused"
    finally:
        for name in (*live, "t-p4", "t-p5"):
            with contextlib.suppress(NotFound):
                await net.client.delete(KUSCIATASKS, name, "cross-domain")
        await remove(net, "hog-ports")


async def _retried(net: TaskNetwork, name: str) -> None:
    group = await net.client.get(TASKRESOURCEGROUPS, name)
    assert int(group["status"].get("retryCount") or 0) >= 1, group["status"]


async def test_bob_gains_room_before_lifecycle_and_task_succeeds(net: TaskNetwork, out: Path) -> None:
    await hog(net, "hog-room", "1500m")
    await net.client.create(KUSCIATASKS, kuscia_task("t-room", out), "cross-domain")
    await group_phase(net, "t-room", "ReserveFailed")
    await assert_nothing_bound(net, "t-room")
    await remove(net, "hog-room")
    net.clock.advance(31)
    task = await phase_of(net, "t-room", "Succeeded", "Failed")
    assert task["status"]["phase"] == "Succeeded", task["status"]
    group = await net.client.get(TASKRESOURCEGROUPS, "t-room")
    assert group["status"]["phase"] == "Reserved" and group["status"]["retryCount"] >= 1
    assert (out / "t-room-alice.json").exists() and (out / "t-room-bob.json").exists()


async def test_failed_process_fails_task_naming_party_and_keeps_its_pod(net: TaskNetwork, out: Path) -> None:
    await net.client.create(KUSCIATASKS, kuscia_task("t-exit", out, exit={"bob": 3}), "cross-domain")
    task = await phase_of(net, "t-exit", "Failed", "Succeeded")
    assert task["status"]["phase"] == "Failed"
    assert task["status"]["message"].startswith("bob/guest: pod t-exit-guest-0 container main exited with code 3")
    assert "bob gives up: no input table" in task["status"]["message"]
    pod = await net.client.get(kinds.PODS, "t-exit-guest-0", "bob")
    assert pod["status"]["phase"] == "Failed"  # kept, with its logs, until the task is deleted

    async def services_gone() -> None:
        with pytest.raises(NotFound):
            await net.client.get(kinds.SERVICES, "t-exit-guest-0-svc", "bob")
            raise AssertionError("the failed task's Service is still there")

    await eventually(services_gone, WITHIN)
    assert (await net.client.get(kinds.PODS, "t-exit-guest-0", "bob"))["status"]["phase"] == "Failed"


async def test_unknown_app_image_or_party_namespace_fails_naming_the_party(net: TaskNetwork, out: Path) -> None:
    await net.client.create(KUSCIATASKS, kuscia_task("t-noimage", out, image="no-such-image"), "cross-domain")
    task = await phase_of(net, "t-noimage", "Failed")
    assert task["status"]["message"] == "party alice/host: AppImage 'no-such-image' not found"
    body = kuscia_task("t-nons", out)
    body["spec"]["parties"][1]["domainID"] = "carol"
    await net.client.create(KUSCIATASKS, body, "cross-domain")
    task = await phase_of(net, "t-nons", "Failed")
    assert task["status"]["message"].startswith("party carol/guest: ")
    assert "carol" in task["status"]["message"][len("party carol/guest: "):]
    assert task["status"]["reason"] == "CreateResourceFailed"


async def test_task_resource_group_validation_and_naming(net: TaskNetwork) -> None:
    def group(name: str, members: int) -> JSON:
        return {
            "apiVersion": "kuscia.secretflow/v1alpha1",
            "kind": "TaskResourceGroup",
            "metadata": {"name": name},
            "spec": {"minReservedMembers": members, "initiator": "alice", "lifecycleSeconds": 600,
                     "parties": [{"domainID": "alice", "minReservedPods": 1, "pods": [{"name": f"{name}-0"}]},
                                 {"domainID": "bob", "minReservedPods": 1, "pods": [{"name": f"{name}-0"}]}]},
        }

    await net.client.create(TASKRESOURCEGROUPS, group("trg-invalid", 3))
    failed = await group_phase(net, "trg-invalid", "Failed")
    validated = next(c for c in failed["status"]["conditions"] if c["type"] == "TaskResourceGroupValidated")
    assert (validated["status"], validated["reason"]) == ("False", "minReservedMembers 3 exceeds the 2 parties")

    await net.client.create(TASKRESOURCEGROUPS, group("trg-named", 2))  # no pods exist: it waits, reserving
    reserving = await group_phase(net, "trg-named", "Reserving")
    names = [p["taskResourceName"] for p in reserving["spec"]["parties"]]
    assert all(n.startswith("trg-named-") and len(n) == len("trg-named-") + 12 for n in names)
    for party, name in zip(reserving["spec"]["parties"], names, strict=True):
        tr = await net.client.get(TASKRESOURCES, name, party["domainID"])
        assert tr["status"]["phase"] == "Reserving" and tr["spec"]["minReservedPods"] == 1
        assert tr["metadata"]["ownerReferences"][0]["name"] == "trg-named"
    net.clock.advance(601)
    expired = await group_phase(net, "trg-named", "Failed")
    condition = next(c for c in expired["status"]["conditions"] if c["type"] == "TaskResourceGroupExpired")
    assert condition["reason"].startswith("The task was not scheduled within 600 seconds: alice: ")


async def test_kubectl_shows_kuscia_columns(net: TaskNetwork, tmp_path: Path) -> None:
    await net.client.create(KUSCIATASKS, kuscia_task("t-kubectl", tmp_path), "cross-domain")
    await phase_of(net, "t-kubectl", "Succeeded")
    env = kubectl_environ(tmp_path)
    env["KUBECONFIG"] = str(net.server.kubeconfig)
    # the API server runs in this event loop: kubectl must not block it
    proc = await asyncio.create_subprocess_exec(kubectl_binary(), "get", "kt,trg", "-A", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "STARTTIME", "COMPLETIONTIME", "LASTRECONCILETIME", "PHASE"]
    assert any(line.split()[1] == "kusciatask.kuscia.secretflow/t-kubectl" and line.split()[-1] == "Succeeded"
               for line in lines)
    header = next(line for line in lines[1:] if line.startswith("NAMESPACE"))
    assert header.split() == ["NAMESPACE", "NAME", "MINRESERVEDMEMBERS", "PHASE", "STARTTIME", "COMPLETIONTIME",
                              "LASTTRANSITIONTIME"]
    row = next(line.split() for line in lines if "taskresourcegroup.kuscia.secretflow/t-kubectl" in line)
    assert row[:3] == ["taskresourcegroup.kuscia.secretflow/t-kubectl", "2", "Reserved"]  # cluster-scoped


async def test_a_rerun_waits_until_the_previous_runs_pods_are_gone(net: TaskNetwork, out: Path) -> None:
    """A task re-created under the same name (a job's Restart) must not adopt the previous run's
    pod, still being deleted: it waits, then creates its own."""
    lingering = {"metadata": {"name": "t-rerun-host-0", "namespace": "alice", "finalizers": ["test.atoll.io/hold"],
                              "labels": {"kuscia.secretflow/task-uid": "a-previous-run",
                                         "kuscia.secretflow/controller": "kusciatask"}},
                 "spec": {"containers": [{"name": "c", "image": "atoll-test"}]}}
    await net.client.create(kinds.PODS, lingering, "alice")
    await net.client.delete(kinds.PODS, "t-rerun-host-0", "alice")
    def requeues() -> float:
        labels = {"controller": "kusciatask", "result": "requeue_after"}
        return metrics.REGISTRY.get_sample_value("controller_runtime_reconcile_total", labels) or 0.0

    before = requeues()
    await net.client.create(KUSCIATASKS, kuscia_task("t-rerun", out), "cross-domain")
    await eventually(lambda: requeues() >= before + 2, WITHIN)  # it looked, and waited, twice
    task = await net.get_task("t-rerun")
    assert not [c for c in task["status"].get("conditions") or [] if c.get("type") == "ResourceCreated"]
    with pytest.raises(NotFound):
        await net.client.get(kinds.PODS, "t-rerun-guest-0", "bob")
    await net.client.patch(kinds.PODS, "t-rerun-host-0", {"metadata": {"finalizers": None}}, "alice")
    done = await phase_of(net, "t-rerun", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"]
