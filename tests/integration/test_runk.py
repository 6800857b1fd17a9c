"""RunK end to end: a domain's pods run in the institution's cluster (a second Atoll control plane
with a RunP agent and its scheduler), with dependencies, status, logs, deletion both ways,
adoption after an agent restart, clash-free names for two lites sharing one namespace, a pod lost
behind the agent's back, and the Node condition for a missing permission."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.agent.runk.podspec import NODE_LABEL
from atoll.agent.runk.settings import RunKSettingsError
from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.client import Client
from atoll.mirror import keys
from atoll.mirror.names import target_name
from atoll.mirror.objects import PVCS
from tests.conftest import RunningServer, eventually, kubectl_binary, kubectl_environ
from tests.integration.agents import RunningAgent, wait_pod_gone
from tests.integration.runk_clusters import (
    INSTITUTION_NS,
    ensure_namespace,
    in_process_master,
    institution_cluster,
    runk_config,
    start_runk,
    task_pod,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
JSON = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def institution(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    async with institution_cluster(tmp_path_factory.mktemp("institution")) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def master(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    async with in_process_master(tmp_path_factory.mktemp("domain") / "master") as server:
        async with server.client() as c:
            for ns in ("alice", "carol"):
                await ensure_namespace(c, ns)
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(master: RunningServer, institution: RunningServer) -> AsyncIterator[tuple[Client, Client]]:
    async with master.client() as m, institution.client() as i:
        yield m, i


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def alice(master: RunningServer, institution: RunningServer,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningAgent]:
    config = runk_config(master, tmp_path_factory.mktemp("alice"), "alice", institution.kubeconfig)
    agent = await start_runk(master, config)
    try:
        yield agent
    finally:
        await agent.stop()


async def phase(client: Client, name: str, namespace: str, *phases: str) -> JSON:
    pod: JSON = await client.get(kinds.PODS, name, namespace)
    assert (pod.get("status") or {}).get("phase") in phases, pod.get("status")
    return pod


async def test_pod_runs_in_the_institution_with_its_dependencies_and_logs(
    clients: tuple[Client, Client], alice: RunningAgent, master: RunningServer, tmp_path: Path
) -> None:
    m, inst = clients
    await m.create(kinds.CONFIGMAPS, {"metadata": {"name": "conf", "namespace": "alice"}, "data": {"k": "v1"}})
    await m.create(kinds.SECRETS, {"metadata": {"name": "cred", "namespace": "alice"},
                                   "stringData": {"password": "s3cret"}})
    body = task_pod("job-a-0", "alice-runk", ["sh", "-c", "echo k=$K; cat /etc/cred/password; echo; hello"],
                    namespace="alice",
                    container={"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "k"}}}],
                               "volumeMounts": [{"name": "cred", "mountPath": "/etc/cred"}]},
                    volumes=[{"name": "cred", "secret": {"secretName": "cred"}}])
    await m.create(kinds.PODS, body)
    done = await eventually(lambda: phase(m, "job-a-0", "alice", "Succeeded"), 30)
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    name = target_name("alice", "job-a-0")
    assert done["metadata"]["annotations"][keys.PHYSICAL_POD_NAME] == name
    target = await inst.get(kinds.PODS, name, INSTITUTION_NS)
    assert target["metadata"]["labels"][NODE_LABEL] == "alice-runk"
    assert target["metadata"]["labels"]["kuscia.secretflow/task-id"] == "job-a-0"
    assert target["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert target["spec"]["nodeName"] == "inst-node"  # placed by the institution's scheduler
    copy = await inst.get(kinds.CONFIGMAPS, target_name("alice", "conf"), INSTITUTION_NS)
    assert copy["data"] == {"k": "v1"}
    text = await m.request("GET", "/api/v1/namespaces/alice/pods/job-a-0/log")
    assert text == "k=v1\ns3cret\nhello from the image\n"
    kubectl = await asyncio.create_subprocess_exec(
        kubectl_binary(), "--kubeconfig", str(master.kubeconfig), "-n", "alice", "logs", "job-a-0", "--tail=1",
        env=kubectl_environ(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(kubectl.communicate(), 30)
    assert out.decode() == "hello from the image\n", err

    await m.delete(kinds.PODS, "job-a-0", "alice")
    await wait_pod_gone(m, "job-a-0", namespace="alice", timeout=30)
    await wait_pod_gone(inst, name, namespace=INSTITUTION_NS, timeout=30)

    async def copies_released() -> None:
        for rd, dep in ((kinds.CONFIGMAPS, "conf"), (kinds.SECRETS, "cred")):
            try:
                await inst.get(rd, target_name("alice", dep), INSTITUTION_NS)
            except NotFound:
                continue
            raise AssertionError(f"{dep} still copied")
        source = await m.get(kinds.CONFIGMAPS, "conf", "alice")
        assert not source["metadata"].get("finalizers"), source["metadata"]

    await eventually(copies_released, 15)


async def test_a_claim_is_provisioned_in_the_institution_and_outlives_its_pods(
    clients: tuple[Client, Client], alice: RunningAgent
) -> None:
    m, inst = clients
    await m.create(PVCS, {"metadata": {"name": "data", "namespace": "alice"},
                          "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    await m.create(kinds.PODS, task_pod("writer", "alice-runk", ["sh", "-c", "echo kept > /data/result"],
                                        namespace="alice", container=mount, volumes=volumes))
    await eventually(lambda: phase(m, "writer", "alice", "Succeeded"), 45)
    copy_name = target_name("alice", "data")
    copy = await inst.get(PVCS, copy_name, INSTITUTION_NS)
    assert (copy.get("status") or {}).get("phase") == "Bound", copy.get("status")  # the institution provisioned it
    await m.delete(kinds.PODS, "writer", "alice")
    await wait_pod_gone(m, "writer", namespace="alice", timeout=30)
    # the next pod on the claim reads what the first one wrote: the copy outlived its pod
    await m.create(kinds.PODS, task_pod("reader", "alice-runk", ["sh", "-c", "cat /data/result"],
                                        namespace="alice", container=mount, volumes=volumes))
    await eventually(lambda: phase(m, "reader", "alice", "Succeeded"), 45)
    assert await m.request("GET", "/api/v1/namespaces/alice/pods/reader/log") == "kept\n"
    assert (await inst.get(PVCS, copy_name, INSTITUTION_NS))["metadata"]["uid"] == copy["metadata"]["uid"]
    await m.delete(kinds.PODS, "reader", "alice")
    await wait_pod_gone(m, "reader", namespace="alice", timeout=30)
    # deleting the claim releases its copy (and the institution's volume), then the claim goes
    await m.delete(PVCS, "data", "alice")

    async def released() -> None:
        try:
            await inst.get(PVCS, copy_name, INSTITUTION_NS)
        except NotFound:
            pass
        else:
            raise AssertionError("the claim's copy is still in the institution")
        try:
            claim = await m.get(PVCS, "data", "alice")
        except NotFound:
            return
        assert keys.finalizer_for("runk-alice-runk") not in (claim["metadata"].get("finalizers") or []), claim

    await eventually(released, 30)


async def test_target_deleted_behind_our_back_fails_the_pod(clients: tuple[Client, Client],
                                                             alice: RunningAgent) -> None:
    m, inst = clients
    await m.create(kinds.PODS, task_pod("lost", "alice-runk", ["sleep", "60"], namespace="alice"))
    await eventually(lambda: phase(m, "lost", "alice", "Running"), 30)
    await inst.delete(kinds.PODS, target_name("alice", "lost"), INSTITUTION_NS, grace_period_seconds=0)
    failed = await eventually(lambda: phase(m, "lost", "alice", "Failed"), 30)
    assert failed["status"]["reason"] == "PhysicalPodLost"
    assert "deleted" in failed["status"]["message"]
    await asyncio.sleep(0)  # the target pod is never recreated:
    with pytest.raises(NotFound):
        await inst.get(kinds.PODS, target_name("alice", "lost"), INSTITUTION_NS)
    await m.delete(kinds.PODS, "lost", "alice")
    await wait_pod_gone(m, "lost", namespace="alice", timeout=30)


async def test_restart_adopts_and_never_duplicates(
    clients: tuple[Client, Client], master: RunningServer, institution: RunningServer, tmp_path: Path
) -> None:
    m, inst = clients
    config = runk_config(master, tmp_path / "carol", "carol", institution.kubeconfig)
    agent = await start_runk(master, config)
    await m.create(kinds.PODS, task_pod("long", "carol-runk", ["sh", "-c", "sleep 3; echo finished"],
                                        namespace="carol"))
    running = await eventually(lambda: phase(m, "long", "carol", "Running"), 30)
    uid = running["metadata"]["annotations"][keys.PHYSICAL_POD_UID]
    await m.create(kinds.PODS, task_pod("orphan", "carol-runk", ["sleep", "60"], namespace="carol"))
    await eventually(lambda: phase(m, "orphan", "carol", "Running"), 30)
    orphan = await m.get(kinds.PODS, "orphan", "carol")
    await agent.stop()  # as a crash: nothing is cleaned up on the way out
    await m.delete(kinds.PODS, "orphan", "carol", grace_period_seconds=0,
                   preconditions={"uid": orphan["metadata"]["uid"]})  # deleted while the agent is down
    agent = await start_runk(master, config)
    try:
        done = await eventually(lambda: phase(m, "long", "carol", "Succeeded"), 30)
        assert done["metadata"]["annotations"][keys.PHYSICAL_POD_UID] == uid
        mine, _ = await inst.list_all(kinds.PODS, INSTITUTION_NS, label_selector=f"{NODE_LABEL}=carol-runk")
        assert [p["metadata"]["name"] for p in mine if p["metadata"]["name"].startswith("long-")] == [
            target_name("carol", "long")]
        await wait_pod_gone(inst, target_name("carol", "orphan"), namespace=INSTITUTION_NS, timeout=30)
    finally:
        await agent.stop()


async def test_two_lites_share_one_namespace_without_clashes(
    clients: tuple[Client, Client], alice: RunningAgent, master: RunningServer, institution: RunningServer,
    tmp_path: Path,
) -> None:
    m, inst = clients
    bob = await start_runk(master, runk_config(master, tmp_path / "bob", "bob", institution.kubeconfig))
    await ensure_namespace(m, "bob")
    try:
        for domain in ("alice", "bob"):
            await m.create(kinds.PODS, task_pod("same-task-0", f"{domain}-runk",
                                                ["sh", "-c", f"echo I am {domain}"], namespace=domain))
        for domain in ("alice", "bob"):
            await eventually(lambda d=domain: phase(m, "same-task-0", d, "Succeeded"), 30)  # type: ignore[misc]
            text = await m.request("GET", f"/api/v1/namespaces/{domain}/pods/same-task-0/log")
            assert text == f"I am {domain}\n"
        names = {target_name(d, "same-task-0") for d in ("alice", "bob")}
        assert len(names) == 2
        for name in names:
            await inst.get(kinds.PODS, name, INSTITUTION_NS)
    finally:
        await bob.stop()


async def test_a_missing_permission_is_a_node_condition(
    clients: tuple[Client, Client], master: RunningServer, institution: RunningServer, tmp_path: Path
) -> None:
    m, inst = clients
    kubeconfig = await limited_kubeconfig(inst, institution, tmp_path, drop=("pods/log",))
    agent = await start_runk(master, runk_config(master, tmp_path / "dave", "dave", kubeconfig))
    try:
        async def condition() -> JSON:
            node = await m.get(kinds.NODES, "dave-runk")
            cond = next(c for c in node["status"]["conditions"] if c["type"] == "RunKPermissions")
            assert cond["status"] == "False", cond
            return cond

        cond = await eventually(condition, 15)
        assert "get pods/log" in cond["message"] and "create pods" not in cond["message"]
        assert f"namespace {INSTITUTION_NS}" in cond["message"]
        node = await m.get(kinds.NODES, "dave-runk")
        assert node["metadata"]["labels"]["kuscia.secretflow/runtime"] == "runk"
    finally:
        await agent.stop()


async def limited_kubeconfig(inst: Client, institution: RunningServer, tmp_path: Path, *,
                             drop: tuple[str, ...]) -> Path:
    """A kubeconfig of a ServiceAccount holding the shipped Role without ``drop``."""
    import yaml

    from atoll.agent.runk.permissions import role_rules

    name = "runk-without-" + "-".join(d.replace("/", "-") for d in drop)
    rules = [r for r in role_rules() if r["resources"][0] not in drop]
    await inst.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": name, "namespace": INSTITUTION_NS}})
    role = {"metadata": {"name": name, "namespace": INSTITUTION_NS}, "rules": rules}
    await inst.create(kinds.kind("rbac.authorization.k8s.io", "roles"), role)
    await inst.create(kinds.ROLEBINDINGS, {
        "metadata": {"name": name, "namespace": INSTITUTION_NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": INSTITUTION_NS}]})
    answer = await inst.request("POST", f"/api/v1/namespaces/{INSTITUTION_NS}/serviceaccounts/{name}/token",
                                body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                      "spec": {"expirationSeconds": 3600}})
    doc = yaml.safe_load(institution.kubeconfig.read_text())
    doc["users"][0]["user"] = {"token": answer["status"]["token"]}
    path = tmp_path / "limited.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_capacity_comes_from_the_namespace_quota_or_is_required(
    clients: tuple[Client, Client], master: RunningServer, institution: RunningServer, tmp_path: Path
) -> None:
    m, inst = clients
    await ensure_namespace(inst, "inst-quota")
    await inst.create(kinds.RESOURCEQUOTAS, {"metadata": {"name": "runk", "namespace": "inst-quota"},
                                             "spec": {"hard": {"requests.cpu": "6", "requests.memory": "12Gi",
                                                               "pods": "40"}}})
    base = runk_config(master, tmp_path / "erin", "erin", institution.kubeconfig)
    assert base.runk is not None
    settings = dataclasses.replace(base.runk, namespace="inst-quota")
    agent = await start_runk(master, dataclasses.replace(base, capacity={}, runk=settings))
    try:
        node = await m.get(kinds.NODES, "erin-runk")
        capacity = node["status"]["capacity"]
        assert (capacity["cpu"], capacity["memory"], capacity["pods"]) == ("6", "12Gi", "40")
    finally:
        await agent.stop()
    unset = dataclasses.replace(base, node_name="frank-runk", capacity={})
    with pytest.raises(RunKSettingsError, match=r"capacity\.cpu: required for runtime runk"):
        await start_runk(master, unset)
