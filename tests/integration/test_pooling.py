"""Compute pooling end to end: one computing control plane, two worker control planes (each with a
RunP agent), all on 127.0.0.1 and shared by the tests of this module. Each test that needs the
workers bound starts from the same point (``bound``: both workers up, leased and bound, their
vnodes Ready, no pods left), whatever ran before it, so the tests pass alone and in any order."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, APIError, NotFound
from atoll.api.quantity import parse_quantity
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.mirror.names import target_name
from atoll.mirror.objects import PVCS, PVS
from atoll.pooling.kinds import CLUSTERBINDINGS, RESOURCELEASINGPOLICIES
from tests.conftest import eventually, kubectl_binary, kubectl_environ
from tests.integration.agents import wait_pod_gone
from tests.integration.pooling import Plane, Pool, bind, lease_policy, plane, pool_of, pooled_pod, worker_of

JSON = dict[str, Any]
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]
COMPUTING = ("namespace", "garbagecollector", "nodelifecycle", "scheduler", "pooling")
VNODE1, VNODE2 = "vnode-cls-w1-w1-node", "vnode-cls-w2-w2-node"
LEASES: dict[str, tuple[str, JSON]] = {  # worker -> its ResourceLeasingPolicy and that policy's spec
    "w1": ("rlp1", {"resourceLimits": [{"resource": "cpu", "percent": 50}]}),
    "w2": ("rlp2", {"resourceLimits": [{"resource": "cpu", "quantity": "1"},
                                       {"resource": "memory", "quantity": "64Gi", "percent": 10}]}),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pool]:
    base: Path = tmp_path_factory.mktemp("pool")
    computing = plane(base, "computing", COMPUTING, {"pooling": {"leaseDurationSeconds": 4}})
    async with pool_of(base, computing, ("w1", "w2")) as running:
        await running.client.create(kinds.NAMESPACES, {"metadata": {"name": "team"}})
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def bound(pool: Pool) -> Pool:
    """``pool`` at the point every test that uses the workers starts from: both worker planes up,
    each leased (``LEASES``) and bound (``cb-w1``, ``cb-w2``, Ready), both vnodes Ready, and no pod
    left in ``team`` or the workers' namespaces. Whatever a test before changed (a binding drained,
    a policy removed, a worker stopped, pods still terminating) is put back or waited out here."""
    for plane_ in pool.workers.values():
        if plane_.task is None:  # stopped by a test that did not get to start it again
            await plane_.start()
    for pod in (await pool.client.list(kinds.PODS, "team"))["items"]:
        if not pod["metadata"].get("deletionTimestamp"):
            await pool.client.delete(kinds.PODS, pod["metadata"]["name"], "team")
    for worker in LEASES:
        await leased_and_bound(pool, worker)

    async def settled() -> None:
        for name in ("cb-w1", "cb-w2"):
            await phase_of(pool, name, "Ready")
        for name in (VNODE1, VNODE2):
            assert ready(await vnode(pool, name)) == "True", name
        left = [p["metadata"]["name"] for ns, client in (("team", pool.client), ("w1", pool.worker("w1")),
                                                          ("w2", pool.worker("w2")))
                for p in (await client.list(kinds.PODS, ns))["items"]]
        assert left == [], left

    await eventually(settled, 60)
    return pool


async def leased_and_bound(pool: Pool, worker: str) -> None:
    """``worker``'s policy (``LEASES``) and its binding ``cb-<worker>`` exist (once any deletion of
    either has finished), as a Kubeocean user writes them."""
    policy, spec = LEASES[worker]
    binding = f"cb-{worker}"
    await eventually(lambda: not_terminating(pool.worker(worker), RESOURCELEASINGPOLICIES, policy), 40)
    if not await exists(pool.worker(worker), RESOURCELEASINGPOLICIES, policy):
        await lease_policy(pool.worker(worker), policy, binding, **spec)
    await eventually(lambda: not_terminating(pool.client, CLUSTERBINDINGS, binding), 40)
    if not await exists(pool.client, CLUSTERBINDINGS, binding):
        with contextlib.suppress(AlreadyExists):  # a drained binding leaves its kubeconfig Secret
            await pool.client.create(kinds.SECRETS, kubeconfig_secret(binding, pool.workers[worker]),
                                     "kubeocean-system")
        await bind(pool.client, binding, f"cls-{worker}", None)


async def exists(client: Client, rd: ResourceDef, name: str) -> bool:
    try:
        await client.get(rd, name)
    except NotFound:
        return False
    return True


async def not_terminating(client: Client, rd: ResourceDef, name: str) -> bool:
    """``name`` is absent or live (not being deleted)."""
    try:
        obj = await client.get(rd, name)
    except NotFound:
        return True
    assert not obj["metadata"].get("deletionTimestamp"), obj["metadata"]
    return True


def kubeconfig_secret(binding: str, worker: Plane) -> JSON:
    """The Secret ``bind`` creates for a binding to ``worker``: its kubeconfig."""
    assert worker.server is not None
    return {"metadata": {"name": f"{binding}-kubeconfig", "namespace": "kubeocean-system"},
            "data": {"kubeconfig": base64.b64encode(worker.server.kubeconfig.read_bytes()).decode()}}


async def phase_of(pool: Pool, name: str, want: str) -> JSON:
    binding = await pool.client.get(CLUSTERBINDINGS, name)
    assert (binding.get("status") or {}).get("phase") == want, binding.get("status")
    return binding


async def vnode(pool: Pool, name: str) -> JSON:
    node: JSON = await pool.client.get(kinds.NODES, name)
    assert (node.get("status") or {}).get("allocatable"), "status not written yet"
    return node


def ready(node: JSON) -> str:
    return next((c["status"] for c in node["status"].get("conditions") or () if c["type"] == "Ready"), "")


def cpu_percent(allocatable: str, percent: int) -> Fraction:
    return Fraction(int(parse_quantity(allocatable) * percent / 100 * 1000), 1000)


@pytest.mark.usefixtures("bound")
async def test_binding_both_workers_builds_vnodes(pool: Pool) -> None:
    """What the policies and bindings ``bound`` wrote (as a Kubeocean user does) have built."""
    for name in ("cb-w1", "cb-w2"):
        binding = await eventually(lambda n=name: phase_of(pool, n, "Ready"), 30)  # type: ignore[misc]
        conditions = {c["type"]: c["status"] for c in binding["status"]["conditions"]}
        assert conditions == {"Ready": "True", "Connected": "True", "SyncerReady": "True", "ProxierReady": "True"}
        assert "kubeocean.io/clusterbinding-manager" in binding["metadata"]["finalizers"]
    v1 = await eventually(lambda: vnode(pool, VNODE1), 30)
    v2 = await eventually(lambda: vnode(pool, VNODE2), 30)
    p1 = await pool.worker("w1").get(kinds.NODES, "w1-node")
    p2 = await pool.worker("w2").get(kinds.NODES, "w2-node")
    labels = v1["metadata"]["labels"]
    assert labels["kubeocean.io/cluster-binding"] == "cb-w1" and labels["kubeocean.io/physical-node-name"] == "w1-node"
    assert labels["node.kubernetes.io/instance-type"] == "vnode" and labels["kubeocean.io/managed-by"] == "kubeocean"
    assert {(t["key"], t["effect"]) for t in v1["spec"]["taints"]} >= {("kubeocean.io/vnode", "NoSchedule")}
    assert "kubeocean.io/vnode" in v1["metadata"]["finalizers"]
    # percent: half of w1's allocatable cpu (no other pods on the node)
    assert parse_quantity(v1["status"]["allocatable"]["cpu"]) == cpu_percent(p1["status"]["allocatable"]["cpu"], 50)
    # quantity for cpu; both for memory (the smaller wins: 10 % of allocatable < 64Gi)
    assert parse_quantity(v2["status"]["allocatable"]["cpu"]) == 1
    mem = parse_quantity(p2["status"]["allocatable"]["memory"])
    assert parse_quantity(v2["status"]["allocatable"]["memory"]) == int(mem * 10 / 100)
    assert v1["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0

    async def stamped() -> None:  # the physical node is labelled right after its vnode is written
        physical = await pool.worker("w1").get(kinds.NODES, "w1-node")
        assert physical["metadata"]["labels"].get("kubeocean.io/policy-applied") == "rlp1", physical["metadata"]

    await eventually(stamped, 30)

    async def policy_active() -> None:
        rlp = await pool.worker("w1").get(RESOURCELEASINGPOLICIES, "rlp1")
        assert rlp.get("status", {}).get("phase") == "Active", rlp.get("status")

    await eventually(policy_active, 30)


async def check(pool: Pool, name: str) -> str:
    """One named check of the computing node's /readyz: "ok", or the reason it fails."""
    try:
        return str(await pool.client.request("GET", f"/readyz/{name}"))
    except APIError as exc:
        assert exc.code == 500, exc
        return exc.message


@pytest.mark.usefixtures("bound")
async def test_health_lists_each_binding(pool: Pool) -> None:
    async def both_ok() -> str:  # read from the manager's informer cache: it follows the API's status
        verbose = str(await pool.client.request("GET", "/readyz", params={"verbose": ""}))
        assert "[+]pooling/cb-w1 ok\n[+]pooling/cb-w2 ok\n" in verbose, verbose
        return verbose

    verbose = await eventually(both_ok, 30)
    assert verbose.endswith("readyz check passed\n")
    assert "[+]poststarthook/bootstrap ok" in verbose
    assert await check(pool, "pooling/cb-w1") == "ok"
    assert "[+]pooling/cb-w2 ok" in await pool.client.request("GET", "/healthz", params={"verbose": "1"})
    with pytest.raises(NotFound):
        await pool.client.request("GET", "/readyz/pooling/no-such-binding")


@pytest.mark.usefixtures("bound")
async def test_metrics(pool: Pool) -> None:
    async def recorded() -> None:  # gauges are set once the writes they describe have been answered
        text = await pool.client.request("GET", "/metrics")
        for line in ('kubeocean_clusterbindings_total{status="Ready"} 2.0',
                     'kubeocean_syncer_vnode_total{clusterbinding="cb-w1"} 1.0',
                     f'kubeocean_syncer_vnode_available_resource{{clusterbinding="cb-w2",node="{VNODE2}",'
                     'resource="cpu"} 1000.0'):
            assert line in text, (line, [m for m in text.splitlines() if m.startswith(line.split("{")[0])])
        assert "kubeocean_manager_sync_duration_seconds_bucket" in text

    await eventually(recorded, 30)


@pytest.mark.usefixtures("bound")
async def test_pod_runs_in_the_worker_and_comes_back(pool: Pool) -> None:
    client = pool.client
    await client.create(kinds.CONFIGMAPS, {"metadata": {"name": "greeting", "namespace": "team"},
                                           "data": {"GREETING": "hello-from-configmap"}}, "team")
    await client.create(kinds.SECRETS, {"metadata": {"name": "creds", "namespace": "team"},
                                        "data": {"TOKEN": base64.b64encode(b"s3cret").decode()}}, "team")
    script = 'echo "$GREETING $TOKEN"; cat /etc/cfg/GREETING; echo; sleep 3; echo done'
    pod = pooled_pod("job-1", "cls-w1", script, container={
        "envFrom": [{"configMapRef": {"name": "greeting"}}, {"secretRef": {"name": "creds"}}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]},
        volumes=[{"name": "cfg", "configMap": {"name": "greeting"}}])
    await client.create(kinds.PODS, pod, "team")
    physical_name = target_name("team", "job-1")

    async def phase(want: str) -> JSON:
        current: JSON = await client.get(kinds.PODS, "job-1", "team")
        assert current.get("status", {}).get("phase") == want, current.get("status")
        return current

    running = await eventually(lambda: phase("Running"), 30)
    assert running["spec"]["nodeName"] == VNODE1
    annotations = running["metadata"]["annotations"]
    assert annotations["kubeocean.io/physical-pod-name"] == physical_name
    assert annotations["kubeocean.io/physical-pod-namespace"] == "w1"
    worker = pool.worker("w1")
    physical = await worker.get(kinds.PODS, physical_name, "w1")
    assert physical["metadata"]["annotations"]["kubeocean.io/virtual-pod-uid"] == running["metadata"]["uid"]
    assert annotations["kubeocean.io/physical-pod-uid"] == physical["metadata"]["uid"]
    copy_cm = await worker.get(kinds.CONFIGMAPS, target_name("team", "greeting"), "w1")
    assert copy_cm["data"] == {"GREETING": "hello-from-configmap"}
    await worker.get(kinds.SECRETS, target_name("team", "creds"), "w1")
    source_cm = await client.get(kinds.CONFIGMAPS, "greeting", "team")
    assert "kubeocean.io/finalizer-cls-w1" in source_cm["metadata"]["finalizers"]

    done = await eventually(lambda: phase("Succeeded"), 30)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    log = await client.request("GET", "/api/v1/namespaces/team/pods/job-1/log")
    assert log == "hello-from-configmap s3cret\nhello-from-configmap\ndone\n"
    tail = await client.request("GET", "/api/v1/namespaces/team/pods/job-1/log", params={"tailLines": "1"})
    assert tail == "done\n"

    await client.delete(kinds.PODS, "job-1", "team")

    async def cleaned() -> None:
        left = []
        for rd in (kinds.PODS, kinds.CONFIGMAPS, kinds.SECRETS):
            left += [f"{rd.kind}/{o['metadata']['name']}" for o in (await worker.list(rd, "w1"))["items"]]
        assert left == [], left
        cm = await client.get(kinds.CONFIGMAPS, "greeting", "team")
        assert not cm["metadata"].get("finalizers"), cm["metadata"]

    await eventually(cleaned, 30)


@pytest.mark.usefixtures("bound")
async def test_kubectl_logs_follow(pool: Pool) -> None:
    client = pool.client
    await client.create(kinds.PODS, pooled_pod("talker", "cls-w2", "for i in 1 2 3; do echo line-$i; sleep 1; done"),
                        "team")

    async def started() -> None:
        pod = await client.get(kinds.PODS, "talker", "team")
        assert pod.get("status", {}).get("phase") in ("Running", "Succeeded"), pod.get("status")

    await eventually(started, 30)
    stream = await client.request("GET", "/api/v1/namespaces/team/pods/talker/log", params={"follow": "true"},
                                  stream=True, read_timeout=20)
    try:
        body = b"".join([chunk async for chunk in stream.chunks()])
    finally:
        stream.close()
    assert body == b"line-1\nline-2\nline-3\n"
    kubectl = kubectl_binary()
    env = kubectl_environ(pool.computing.config.data_dir / "kubectl")
    assert pool.computing.server is not None
    proc = await asyncio.create_subprocess_exec(
        kubectl, "--kubeconfig", str(pool.computing.server.kubeconfig), "-n", "team", "logs", "talker", "--tail", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    assert (proc.returncode, out) == (0, b"line-2\nline-3\n"), err
    await client.delete(kinds.PODS, "talker", "team")


@pytest.mark.usefixtures("bound")
async def test_kubectl_exec_reaches_the_worker_pod(pool: Pool) -> None:
    """kubectl exec (WebSocket v5) on a pod of a vnode: API server → proxier → worker pods/exec →
    the worker agent; stdout, stderr, stdin and the exit code all make the round trip."""
    client = pool.client
    await client.create(kinds.PODS, pooled_pod("shell", "cls-w2", "sleep 600", container={
        "env": [{"name": "GREETING", "value": "from-the-worker"}]}), "team")

    async def running() -> None:
        pod = await client.get(kinds.PODS, "shell", "team")
        assert pod.get("status", {}).get("phase") == "Running", pod.get("status")

    await eventually(running, 30)
    assert pool.computing.server is not None
    base = [kubectl_binary(), "--kubeconfig", str(pool.computing.server.kubeconfig), "-n", "team", "exec"]
    env = kubectl_environ(pool.computing.config.data_dir / "kubectl")

    async def kubectl(*args: str, stdin: bytes | None = None) -> tuple[int | None, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *base, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
        return proc.returncode, out, err

    code, out, err = await kubectl("shell", "--", "sh", "-c", 'echo "$HOSTNAME $GREETING"; echo oops >&2; exit 3')
    assert (code, out) == (3, b"shell from-the-worker\n"), err
    assert b"oops" in err
    code, out, err = await kubectl("-i", "shell", "--", "cat", stdin=b"piped through two clusters\n")
    assert (code, out) == (0, b"piped through two clusters\n"), err
    await client.delete(kinds.PODS, "shell", "team")


async def test_physical_pod_deleted_behind_our_back(pool: Pool, tmp_path: Path) -> None:
    """On a worker, binding and policy of its own (runs alone too), removed after."""
    client = pool.client
    async with worker_of(tmp_path, "w3") as (worker, _):
        assert worker.server is not None and worker.client is not None
        await lease_policy(worker.client, "rlp3", "cb-w3", resourceLimits=[{"resource": "cpu", "percent": 50}])
        await bind(client, "cb-w3", "cls-w3", worker.server)
        try:
            await client.create(kinds.PODS, pooled_pod("sleeper", "cls-w3", "sleep 600"), "team")

            async def running() -> None:
                pod = await client.get(kinds.PODS, "sleeper", "team")
                assert pod.get("status", {}).get("phase") == "Running", pod.get("status")

            await eventually(running, 30)
            await worker.client.delete(kinds.PODS, target_name("team", "sleeper"), "w3", grace_period_seconds=0)

            async def lost() -> None:
                pod = await client.get(kinds.PODS, "sleeper", "team")
                assert (pod["status"].get("phase"), pod["status"].get("reason")) == ("Failed", "PhysicalPodLost")

            await eventually(lost, 30)
            await client.delete(kinds.PODS, "sleeper", "team")
        finally:
            await client.delete(CLUSTERBINDINGS, "cb-w3")
            await client.delete(kinds.SECRETS, "cb-w3-kubeconfig", "kubeocean-system")
            await eventually(lambda: binding_gone(pool, "cb-w3"), 40)  # drained while its worker is up


async def binding_gone(pool: Pool, name: str) -> bool:
    try:
        await pool.client.get(CLUSTERBINDINGS, name)
    except NotFound:
        return True
    return False


@pytest.mark.usefixtures("bound")
async def test_no_policy_removes_the_vnode(pool: Pool) -> None:
    rlp = await pool.worker("w2").get(RESOURCELEASINGPOLICIES, "rlp2")
    await pool.worker("w2").delete(RESOURCELEASINGPOLICIES, "rlp2")

    async def gone() -> None:
        left = [n["metadata"]["name"] for n in (await pool.client.list(kinds.NODES))["items"]]
        assert VNODE2 not in left, [(p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get("phase"))
                                    for p in (await pool.client.list(kinds.PODS, "team"))["items"]]
        with pytest.raises(NotFound):
            await pool.worker("w2").get(RESOURCELEASINGPOLICIES, "rlp2")  # our finalizer was released

    await eventually(gone, 30)
    spec = rlp["spec"]
    await lease_policy(pool.worker("w2"), "rlp2", "cb-w2", resourceLimits=spec["resourceLimits"])
    await eventually(lambda: vnode(pool, VNODE2), 30)


@pytest.mark.usefixtures("bound")
async def test_worker_down_other_binding_unaffected(pool: Pool) -> None:
    client = pool.client
    await client.create(kinds.PODS, pooled_pod("survivor", "cls-w2", "sleep 600"), "team")

    async def running(name: str) -> None:
        pod = await client.get(kinds.PODS, name, "team")
        assert pod.get("status", {}).get("phase") == "Running", pod.get("status")

    await eventually(lambda: running("survivor"), 30)
    await pool.workers["w2"].stop()

    async def not_ready() -> None:
        node = await vnode(pool, VNODE2)
        lease = await client.get(kinds.LEASES, VNODE2, "kube-node-lease")
        why = ([(m["manager"], m["time"], m.get("subresource")) for m in node["metadata"]["managedFields"]],
               lease["spec"], lease["metadata"].get("managedFields"))
        assert ready(node) == "Unknown", why

    await eventually(not_ready, 30)
    assert ready(await vnode(pool, VNODE1)) == "True"
    # the binding's health check fails with its reason; the node stays ready (informational check)
    assert await check(pool, "pooling/cb-w2") == "internal server error: worker cluster API unreachable"
    assert await check(pool, "pooling/cb-w1") == "ok"
    assert await pool.client.request("GET", "/readyz") == "ok"
    verbose = await pool.client.request("GET", "/readyz", params={"verbose": ""})
    assert "[-]pooling/cb-w2 failed: reason withheld (informational)\n" in verbose, verbose
    assert verbose.endswith("readyz check passed\n")
    await client.create(kinds.PODS, pooled_pod("meanwhile", "cls-w1", "echo fine"), "team")

    async def succeeded() -> None:
        pod = await client.get(kinds.PODS, "meanwhile", "team")
        assert pod.get("status", {}).get("phase") == "Succeeded", pod.get("status")

    await eventually(succeeded, 30)
    await pool.workers["w2"].start()

    async def recovered() -> None:
        assert ready(await vnode(pool, VNODE2)) == "True"

    await eventually(recovered, 40)
    await eventually(lambda: running("survivor"), 30)
    pods = (await pool.worker("w2").list(kinds.PODS, "w2"))["items"]
    assert [p["metadata"]["name"] for p in pods] == [target_name("team", "survivor")]
    for name in ("survivor", "meanwhile"):
        await client.delete(kinds.PODS, name, "team")


@pytest.mark.parametrize(
    ("name", "cluster_id", "spec", "reason", "field"),
    [
        ("bad-id", "Not_Valid", {}, "ValidationFailed", "spec.clusterID"),
        ("no-secret", "cls-x", {}, "ConnectivityFailed", "spec.secretRef"),
        ("nowhere", "cls-y", {"secretRef": {"name": "nowhere-kubeconfig", "namespace": "kubeocean-system"}},
         "ConnectivityFailed", "worker API"),
    ],
)
async def test_bad_input_fails_naming_the_field(
    pool: Pool, name: str, cluster_id: str, spec: JSON, reason: str, field: str
) -> None:
    if name == "nowhere":
        kubeconfig = ("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: "
                      "'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\ncontexts: [{name: c, context: "
                      "{cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n")
        await pool.client.create(kinds.SECRETS, {"metadata": {"name": "nowhere-kubeconfig",
                                                             "namespace": "kubeocean-system"},
                                                "stringData": {"kubeconfig": kubeconfig}}, "kubeocean-system")
    await bind(pool.client, name, cluster_id, None, **spec)
    binding = await eventually(lambda: phase_of(pool, name, "Failed"), 40)
    cond = next(c for c in binding["status"]["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "False" and cond["reason"] == reason
    assert field in cond["message"], cond["message"]
    assert await check(pool, f"pooling/{name}") == f"internal server error: {reason}: {cond['message']}"
    await pool.client.delete(CLUSTERBINDINGS, name)

    async def gone() -> None:
        items = (await pool.client.list(CLUSTERBINDINGS))["items"]
        assert name not in [b["metadata"]["name"] for b in items], [b["metadata"] for b in items]

    await eventually(gone, 30)


@pytest.mark.usefixtures("bound")
async def test_invalid_window_fails_the_policy(pool: Pool) -> None:
    await lease_policy(pool.worker("w1"), "bad-window", "cb-w1", timeWindows=[{"start": "8:00", "end": "18:00"}])

    async def failed() -> JSON:
        rlp: JSON = await pool.worker("w1").get(RESOURCELEASINGPOLICIES, "bad-window")
        assert rlp.get("status", {}).get("phase") == "Failed", rlp.get("status")
        return rlp

    rlp = await eventually(failed, 30)
    valid = next(c for c in rlp["status"]["conditions"] if c["type"] == "Valid")
    assert valid["message"].startswith("spec.timeWindows[0].start")
    await pool.worker("w1").delete(RESOURCELEASINGPOLICIES, "bad-window")


@pytest.mark.usefixtures("bound")
async def test_claims_and_volumes_reach_the_worker(pool: Pool) -> None:
    """A bound claim brings its volume (re-pointed, Retain), an unbound one is copied for the
    worker's provisioner; the copies follow a resize, outlive the last pod using them (a claim's
    data must be there for the next pod) and go when the claims are deleted."""
    client, worker = pool.client, pool.worker("w1")
    await client.create(kinds.NAMESPACES, {"metadata": {"name": "storage"}})
    await client.create(kinds.SECRETS, {"metadata": {"name": "nfs-creds", "namespace": "storage"},
                                        "stringData": {"password": "p"}}, "storage")
    csi = {"driver": "nfs.csi.k8s.io", "volumeHandle": "10.0.0.1#exports",
           "nodePublishSecretRef": {"name": "nfs-creds", "namespace": "storage"}}
    await client.create(PVS, {"metadata": {"name": "nfs-1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "persistentVolumeReclaimPolicy": "Delete",
        "csi": csi, "claimRef": {"namespace": "team", "name": "data"}}})
    await client.create(PVCS, {"metadata": {"name": "data", "namespace": "team"}, "spec": {
        "accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "nfs-1",
        "storageClassName": ""}}, "team")
    await client.create(PVCS, {"metadata": {"name": "scratch", "namespace": "team"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "local-path"}}, "team")
    await client.create(kinds.CONFIGMAPS, {"metadata": {"name": "settings", "namespace": "team"}, "data": {"a": "1"}},
                        "team")
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
               {"name": "scratch", "persistentVolumeClaim": {"claimName": "scratch"}},
               {"name": "settings", "configMap": {"name": "settings"}}]
    await client.create(kinds.PODS, pooled_pod("stateful", "cls-w1", "sleep 600", volumes=volumes), "team")
    pv_copy, data_copy, scratch_copy = target_name("", "nfs-1"), target_name("team", "data"), target_name(
        "team", "scratch")

    async def copied() -> tuple[JSON, JSON, JSON]:
        pod = await client.get(kinds.PODS, "stateful", "team")
        assert pod["metadata"].get("annotations", {}).get("kubeocean.io/physical-pod-uid"), pod["metadata"]
        return (await worker.get(PVS, pv_copy), await worker.get(PVCS, data_copy, "w1"),
                await worker.get(PVCS, scratch_copy, "w1"))

    pv, data, scratch = await eventually(copied, 30)
    creds_copy = target_name("storage", "nfs-creds")
    assert pv["spec"]["csi"] == {**csi, "nodePublishSecretRef": {"name": creds_copy, "namespace": "w1"}}
    assert (await worker.get(kinds.SECRETS, creds_copy, "w1"))["data"] == {"password": "cA=="}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    ref = pv["spec"]["claimRef"]  # the worker's binder adds the claim's uid once it binds the pair
    assert {k: ref.get(k) for k in ("apiVersion", "kind", "namespace", "name")} == {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "w1", "name": data_copy}
    assert pv["metadata"]["annotations"]["kubeocean.io/virtual-name"] == "nfs-1"
    assert data["spec"]["volumeName"] == pv_copy
    assert data["metadata"]["labels"]["kubeocean.io/managed-by"] == "kubeocean"
    # copied unbound: only the worker's own provisioner may have bound it since (pvc-<uid of the copy>)
    assert scratch["spec"].get("volumeName") in (None, f"pvc-{scratch['metadata']['uid']}"), scratch["spec"]
    assert scratch["spec"]["storageClassName"] == "local-path"
    physical = await worker.get(kinds.PODS, target_name("team", "stateful"), "w1")
    assert [v["persistentVolumeClaim"]["claimName"] for v in physical["spec"]["volumes"]
            if "persistentVolumeClaim" in v] == [data_copy, scratch_copy]
    sources = ((PVS, "nfs-1", None), (PVCS, "data", "team"), (PVCS, "scratch", "team"),
               (kinds.SECRETS, "nfs-creds", "storage"))
    for rd, name, namespace in sources:
        source = await client.get(rd, name, namespace)
        assert "kubeocean.io/finalizer-cls-w1" in source["metadata"]["finalizers"], (name, source["metadata"])
        assert source["metadata"]["labels"]["kubeocean.io/synced-by-cls-w1"] == "true"

    await client.patch(PVCS, "scratch", {"spec": {"resources": {"requests": {"storage": "8Gi"}}}}, "team")

    async def resized() -> None:
        copy = await worker.get(PVCS, scratch_copy, "w1")
        assert copy["spec"]["resources"]["requests"]["storage"] == "8Gi", copy["spec"]

    await eventually(resized, 30)
    await client.delete(kinds.PODS, "stateful", "team")
    await wait_pod_gone(client, "stateful", namespace="team", timeout=30)

    async def configmap_released() -> None:  # the dependencies were reconciled after the pod went
        copies = [c["metadata"]["name"] for c in (await worker.list(kinds.CONFIGMAPS, "w1"))["items"]]
        assert target_name("team", "settings") not in copies, copies

    await eventually(configmap_released, 30)
    # no pod uses the claims any more, yet their copies (and the bound claim's volume) stay
    assert await worker.get(PVCS, scratch_copy, "w1") and await worker.get(PVCS, data_copy, "w1")
    assert await worker.get(PVS, pv_copy)
    for name in ("data", "scratch"):
        await client.delete(PVCS, name, "team")

    async def released() -> None:
        assert (await worker.list(PVCS, "w1"))["items"] == []
        assert pv_copy not in [v["metadata"]["name"] for v in (await worker.list(PVS))["items"]]
        assert creds_copy not in [v["metadata"]["name"] for v in (await worker.list(kinds.SECRETS, "w1"))["items"]]
        for rd, name, namespace in sources:
            try:
                source = await client.get(rd, name, namespace)
            except NotFound:
                continue
            assert "kubeocean.io/finalizer-cls-w1" not in (source["metadata"].get("finalizers") or []), name

    await eventually(released, 30)


@pytest.mark.usefixtures("bound")
async def test_host_ports_of_worker_pods_get_a_placeholder(pool: Pool) -> None:
    """Host ports taken by the worker's own pods are declared on the vnode by one placeholder pod
    in kubeocean-fake, replaced when they change, removed when none is taken; never synced down."""
    client, worker = pool.client, pool.worker("w1")

    def native(name: str, port: int, protocol: str = "TCP") -> JSON:
        return {"metadata": {"name": name, "namespace": "w1"}, "spec": {
            "nodeName": "w1-node", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "app:v1", "command": ["sleep", "600"],
                            "ports": [{"containerPort": 8080, "hostPort": port, "protocol": protocol}]}]}}

    async def placeholders(want: list[tuple[int, str]]) -> list[JSON]:
        pods = (await client.list(kinds.PODS, "kubeocean-fake",
                                  label_selector="kubeocean.io/hostport-fake-pod=true"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        declared = [sorted((port["hostPort"], port["protocol"]) for c in p["spec"]["containers"]
                           for port in c.get("ports") or ()) for p in live]
        assert declared == ([want] if want else []), declared
        return live

    await worker.create(kinds.PODS, native("native-web", 18080), "w1")
    [fake] = await eventually(lambda: placeholders([(18080, "TCP")]), 30)
    assert fake["metadata"]["name"].startswith("fake-pod-for-hostport-")
    assert fake["spec"]["nodeName"] == VNODE1 and fake["spec"]["priorityClassName"] == "system-node-critical"
    assert fake["spec"]["containers"][0]["image"] == "busybox:1.28"
    assert fake["metadata"]["labels"]["kubeocean.io/cluster-binding"] == "cb-w1"
    await worker.create(kinds.PODS, native("native-dns", 19053, "UDP"), "w1")
    [second] = await eventually(lambda: placeholders([(18080, "TCP"), (19053, "UDP")]), 30)
    assert second["metadata"]["uid"] != fake["metadata"]["uid"]
    managed = (await worker.list(kinds.PODS, "w1", label_selector="kubeocean.io/managed-by=kubeocean"))["items"]
    assert managed == [], "a placeholder was synced down"
    for name in ("native-web", "native-dns"):
        await worker.delete(kinds.PODS, name, "w1")
    await eventually(lambda: placeholders([]), 30)


@pytest.mark.usefixtures("bound")
async def test_binding_deleted_drains_everything(pool: Pool) -> None:
    client = pool.client
    await client.create(kinds.CONFIGMAPS, {"metadata": {"name": "cfg2", "namespace": "team"}, "data": {"a": "b"}},
                        "team")
    pod = pooled_pod("last", "cls-w1", "sleep 600", container={"envFrom": [{"configMapRef": {"name": "cfg2"}}]})
    await client.create(kinds.PODS, pod, "team")

    async def running() -> None:
        current = await client.get(kinds.PODS, "last", "team")
        assert current.get("status", {}).get("phase") == "Running", current.get("status")

    await eventually(running, 30)
    await client.delete(CLUSTERBINDINGS, "cb-w1")

    async def drained() -> None:
        worker = pool.worker("w1")
        nodes = [n["metadata"]["name"] for n in (await client.list(kinds.NODES))["items"]]
        pods = [(p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get("phase"),
                 p["metadata"].get("deletionTimestamp")) for p in (await client.list(kinds.PODS, "team"))["items"]]
        bindings = [(b["metadata"]["name"], b["metadata"].get("finalizers"))
                    for b in (await client.list(CLUSTERBINDINGS))["items"]]
        assert "cb-w1" not in [b[0] for b in bindings], (bindings, nodes, pods)
        assert VNODE1 not in nodes
        assert "last" not in [p[0] for p in pods]
        for rd in (kinds.PODS, kinds.CONFIGMAPS, kinds.SECRETS, PVCS):
            items = (await worker.list(rd, "w1", label_selector="kubeocean.io/managed-by=kubeocean"))["items"]
            assert items == [], [i["metadata"]["name"] for i in items]
        cm = await client.get(kinds.CONFIGMAPS, "cfg2", "team")
        assert not cm["metadata"].get("finalizers")
        physical = await worker.get(kinds.NODES, "w1-node")
        assert "kubeocean.io/policy-applied" not in physical["metadata"]["labels"]

    await eventually(drained, 40)
    assert (await vnode(pool, VNODE2))["metadata"]["labels"]["kubeocean.io/cluster-binding"] == "cb-w2"
