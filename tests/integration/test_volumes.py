"""Persistent volumes on a real in-process master running the ``persistentvolume``, ``statefulset``,
``daemonset`` and garbage-collector controllers and the scheduler; Nodes are plain objects (no
agent), each publishing a local-path root as a RunP agent does. Covers the default ``local-path``
class, WaitForFirstConsumer binding through the scheduler's selected node, the provisioned
volume's shape, protection finalizers, Retain/Delete reclaim, domain isolation of bindings,
StatefulSet claims and their retention policy, and DaemonSet ControllerRevisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import errors
from atoll.api.kinds import CONTROLLERREVISIONS, DAEMONSETS, EVENTS, NAMESPACES, NODES, PODS, STATEFULSETS, kind
from atoll.api.storage import (
    BIND_COMPLETED,
    LOCAL_PATH_CLEANUP,
    LOCAL_PATH_ROOT,
    PV_PROTECTION,
    PVC_PROTECTION,
    SELECTED_NODE,
    STORAGE_CLASSES,
)
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.jobs import running_master

pytestmark = pytest.mark.asyncio(loop_scope="module")
JSON = dict[str, Any]
PVCS, PVS = kind("", "persistentvolumeclaims"), kind("", "persistentvolumes")
CONTROLLERS = ("namespace", "garbagecollector", "persistentvolume", "statefulset", "daemonset", "scheduler")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def master(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    async with running_master(tmp_path_factory.mktemp("volumes") / "master", controllers=CONTROLLERS) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(master: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    roots = tmp_path_factory.mktemp("roots")
    async with master.client() as c:
        for domain in ("alice", "bob"):
            await c.create(NAMESPACES, {"metadata": {"name": domain, "labels": {
                "kuscia.secretflow/domain-name": domain}}})
            await add_node(c, f"{domain}-node", domain, roots / domain)
        await c.create(NAMESPACES, {"metadata": {"name": "plain"}})
        yield c


async def add_node(c: Client, name: str, domain: str, root: Path) -> None:
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110"}
    body = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "kuscia.secretflow/namespace": domain},
                         "annotations": {LOCAL_PATH_ROOT: str(root)}},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
    created = await c.create(NODES, body)
    await c.update(NODES, {**created, "status": body["status"]}, subresource="status")


def claim(name: str, *, storage: str = "1Gi", cls: str | None = None) -> JSON:
    spec: JSON = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def pod_with(name: str, claim_name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "app:v1", "command": ["true"]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}}


def static_volume(name: str, node: str | None, *, cls: str = "", policy: str = "Retain") -> JSON:
    spec: JSON = {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                  "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/srv/{name}"}}
    if node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


async def phase(c: Client, rd: Any, name: str, ns: str | None, want: str) -> JSON:
    async def check() -> JSON:
        obj = await c.get(rd, name, ns)
        assert (obj.get("status") or {}).get("phase") == want, obj.get("status")
        return obj
    return await eventually(check, 20)


async def kubelet_finishes_deletion(c: Client, name: str, ns: str) -> None:
    """No agent runs these pods: once the controller deleted one, remove it as its kubelet would."""
    async def marked() -> None:
        assert (await c.get(PODS, name, ns))["metadata"].get("deletionTimestamp")
    await eventually(marked, 20)
    await c.delete(PODS, name, ns, grace_period_seconds=0)
    await gone(c, PODS, name, ns)


async def reasons(c: Client, ns: str, name: str) -> set[str]:
    events = (await c.list(EVENTS, ns))["items"]
    return {e["reason"] for e in events if e["involvedObject"]["name"] == name}


async def gone(c: Client, rd: Any, name: str, ns: str | None) -> None:
    async def check() -> bool:
        try:
            await c.get(rd, name, ns)
        except errors.NotFound:
            return True
        return False
    await eventually(check, 20)


async def test_default_class_and_wait_for_first_consumer_then_provisioned_on_the_pods_node(client: Client) -> None:
    c = client
    sc = await c.get(STORAGE_CLASSES, "local-path")
    assert sc["provisioner"] == "rancher.io/local-path" and sc["reclaimPolicy"] == "Delete"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"

    created = await c.create(PVCS, claim("data"), "alice")
    assert created["spec"]["storageClassName"] == "local-path"
    assert PVC_PROTECTION in created["metadata"]["finalizers"]
    assert await eventually(lambda: _has(c, "alice", "data", "WaitForFirstConsumer"))
    assert (await c.get(PVCS, "data", "alice"))["status"]["phase"] == "Pending"

    await c.create(PODS, pod_with("user", "data"), "alice")
    bound = await phase(c, PVCS, "data", "alice", "Bound")
    assert bound["metadata"]["annotations"][SELECTED_NODE] == "alice-node"
    assert bound["metadata"]["annotations"][BIND_COMPLETED] == "yes"
    pv = await phase(c, PVS, bound["spec"]["volumeName"], None, "Bound")
    assert pv["metadata"]["name"] == f"pvc-{bound['metadata']['uid']}"
    assert pv["spec"]["hostPath"]["type"] == "DirectoryOrCreate"
    assert pv["spec"]["hostPath"]["path"].endswith(f"/alice/pvc-{bound['metadata']['uid']}_alice_data")
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [
        "alice-node"]
    assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert set(pv["metadata"]["finalizers"]) == {PV_PROTECTION, LOCAL_PATH_CLEANUP}
    assert bound["status"]["capacity"] == {"storage": "1Gi"}
    assert await _has(c, "alice", "data", "ProvisioningSucceeded")

    # protection: the claim stays while its pod exists; then the volume is released and deleted,
    # held by the cleanup finalizer until the node's agent (none here) or the node's removal frees it
    await c.delete(PVCS, "data", "alice")
    assert (await c.get(PVCS, "data", "alice"))["metadata"]["deletionTimestamp"]
    await c.delete(PODS, "user", "alice", grace_period_seconds=0)
    await gone(c, PODS, "user", "alice")
    await gone(c, PVCS, "data", "alice")

    async def held() -> None:
        obj = await c.get(PVS, pv["metadata"]["name"])
        assert obj["metadata"].get("deletionTimestamp") and obj["metadata"]["finalizers"] == [LOCAL_PATH_CLEANUP]
    await eventually(held, 20)


async def _has(c: Client, ns: str, name: str, reason: str) -> bool:
    return reason in await reasons(c, ns, name)


async def test_static_volume_binds_immediately_and_is_retained(client: Client) -> None:
    c = client
    await c.create(PVS, static_volume("static-a", None))
    await phase(c, PVS, "static-a", None, "Available")
    await c.create(PVCS, claim("manual", cls=""), "plain")
    bound = await phase(c, PVCS, "manual", "plain", "Bound")
    assert bound["spec"]["volumeName"] == "static-a" and bound["status"]["capacity"] == {"storage": "5Gi"}
    pv = await phase(c, PVS, "static-a", None, "Bound")
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    await c.delete(PVCS, "manual", "plain")
    await phase(c, PVS, "static-a", None, "Released")  # Retain: kept for the administrator
    await c.delete(PVS, "static-a")
    await gone(c, PVS, "static-a", None)


async def test_domain_claim_never_binds_another_domains_volume(client: Client) -> None:
    c = client
    await c.create(PVS, static_volume("on-bob", "bob-node"))
    await phase(c, PVS, "on-bob", None, "Available")
    await c.create(PVCS, claim("steal", cls=""), "alice")
    assert await eventually(lambda: _has(c, "alice", "steal", "FailedBinding"))
    assert (await c.get(PVCS, "steal", "alice"))["status"]["phase"] == "Pending"
    assert "claimRef" not in (await c.get(PVS, "on-bob"))["spec"]
    # naming it in spec.volumeName does not help
    body = claim("named", cls="")
    body["spec"]["volumeName"] = "on-bob"
    await c.create(PVCS, body, "alice")
    assert await eventually(lambda: _has(c, "alice", "named", "VolumeMismatch"))
    assert "claimRef" not in (await c.get(PVS, "on-bob"))["spec"]
    await c.delete(PVCS, "named", "alice")
    # bob's claim takes it
    await c.create(PVCS, claim("mine", cls=""), "bob")
    assert (await phase(c, PVCS, "mine", "bob", "Bound"))["spec"]["volumeName"] == "on-bob"
    # a node of another domain selected by hand is refused by the provisioner
    body = claim("forced")
    body["metadata"]["annotations"] = {SELECTED_NODE: "bob-node"}
    await c.create(PVCS, body, "alice")
    assert await eventually(lambda: _has(c, "alice", "forced", "ProvisioningFailed"))
    assert (await c.get(PVCS, "forced", "alice"))["status"]["phase"] == "Pending"


def stateful(name: str, replicas: int, policy: JSON | None = None) -> JSON:
    spec: JSON = {
        "replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "main", "image": "app:v1", "command": ["true"],
                                              "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    }
    if policy:
        spec["persistentVolumeClaimRetentionPolicy"] = policy
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec}


async def test_statefulset_claims_per_ordinal_kept_on_scale_down(client: Client) -> None:
    c = client
    await c.create(STATEFULSETS, stateful("db", 2), "alice")
    for i in range(2):
        pvc = await eventually(lambda i=i: c.get(PVCS, f"data-db-{i}", "alice"), 20)
        assert pvc["metadata"]["labels"] == {"app": "db"} and not pvc["metadata"].get("ownerReferences")
        pod = await eventually(lambda i=i: c.get(PODS, f"db-{i}", "alice"), 20)
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-db-{i}"}} in pod["spec"]["volumes"]
        await phase(c, PVCS, f"data-db-{i}", "alice", "Bound")
    await c.patch(STATEFULSETS, "db", {"spec": {"replicas": 1}}, "alice")
    await kubelet_finishes_deletion(c, "db-1", "alice")
    assert (await c.get(PVCS, "data-db-1", "alice"))["status"]["phase"] == "Bound"  # Retain


async def test_statefulset_retention_delete_policies(client: Client) -> None:
    c = client
    await c.create(STATEFULSETS, stateful("cache", 2, {"whenDeleted": "Delete", "whenScaled": "Delete"}), "alice")
    sts = await c.get(STATEFULSETS, "cache", "alice")

    async def owned_by_set(i: int) -> None:
        refs = (await c.get(PVCS, f"data-cache-{i}", "alice"))["metadata"].get("ownerReferences") or []
        assert [r["uid"] for r in refs] == [sts["metadata"]["uid"]], refs
    for i in range(2):
        await eventually(lambda i=i: owned_by_set(i), 20)
    await c.patch(STATEFULSETS, "cache", {"spec": {"replicas": 1}}, "alice")

    async def owned_by_pod() -> None:
        refs = (await c.get(PVCS, "data-cache-1", "alice"))["metadata"].get("ownerReferences") or []
        assert [(r["kind"], r["name"]) for r in refs] == [("Pod", "cache-1")], refs
    await eventually(owned_by_pod, 20)
    await kubelet_finishes_deletion(c, "cache-1", "alice")
    await gone(c, PVCS, "data-cache-1", "alice")  # whenScaled: Delete, through its pod
    await c.delete(STATEFULSETS, "cache", "alice")
    await kubelet_finishes_deletion(c, "cache-0", "alice")  # the garbage collector deletes the pod
    await gone(c, PVCS, "data-cache-0", "alice")  # whenDeleted: Delete (once no pod uses it)


async def test_daemonset_revisions_follow_template_changes_and_undo(client: Client) -> None:
    c = client
    template = {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "main", "image": "app:v1", "command": ["true"]}]}}
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template}}
    await c.create(DAEMONSETS, body, "alice")

    async def revisions(count: int) -> dict[str, int]:
        items = (await c.list(CONTROLLERREVISIONS, "alice", label_selector="app=agent"))["items"]
        assert len(items) == count, [i["metadata"]["name"] for i in items]
        return {i["data"]["spec"]["template"]["spec"]["containers"][0]["image"]: i["revision"] for i in items}
    assert await eventually(lambda: revisions(1), 20) == {"app:v1": 1}
    image = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "app:v2", "command": ["true"]}]}}}}
    await c.patch(DAEMONSETS, "agent", image, "alice")
    assert await eventually(lambda: revisions(2), 20) == {"app:v1": 1, "app:v2": 2}
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "app:v1"
    await c.patch(DAEMONSETS, "agent", image, "alice")

    async def renumbered() -> None:
        assert await revisions(2) == {"app:v1": 3, "app:v2": 2}
    await eventually(renumbered, 20)


async def test_scheduler_follows_volume_node_affinity_and_the_selected_node(client: Client) -> None:
    c = client
    await c.create(PVS, static_volume("pinned-bob", "bob-node"))
    await c.create(PVCS, claim("pinned", cls=""), "plain")
    await phase(c, PVCS, "pinned", "plain", "Bound")
    shared = await c.create(PVCS, claim("shared"), "plain")  # local-path, WaitForFirstConsumer
    assert shared["spec"]["storageClassName"] == "local-path"
    for i in range(4):  # LeastAllocated would spread them over both nodes without the volumes
        await c.create(PODS, pod_with(f"on-pinned-{i}", "pinned"), "plain")
        await c.create(PODS, pod_with(f"on-shared-{i}", "shared"), "plain")

    async def placed(prefix: str) -> set[str]:
        pods = [p for p in (await c.list(PODS, "plain"))["items"] if p["metadata"]["name"].startswith(prefix)]
        nodes = {str(p["spec"].get("nodeName") or "") for p in pods}
        assert len(pods) == 4 and "" not in nodes, nodes
        return nodes
    assert await eventually(lambda: placed("on-pinned-"), 20) == {"bob-node"}
    selected = (await phase(c, PVCS, "shared", "plain", "Bound"))["metadata"]["annotations"][SELECTED_NODE]
    assert await eventually(lambda: placed("on-shared-"), 20) == {selected}
