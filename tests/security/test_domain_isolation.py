"""Finding 1: no cross-domain code execution; a lite's own credentials write only its own objects."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from atoll.agent.agent import Agent
from atoll.api import kinds
from atoll.api.storage import LOCAL_PATH_CLEANUP, LOCAL_PATH_ROOT
from atoll.client import Client
from tests.conftest import eventually, start_until_ready
from tests.integration.agents import agent_config, kill_leftovers, load_image
from tests.security.conftest import Network, node, pod

pytestmark = pytest.mark.slow
PODS = "/api/v1/namespaces/{ns}/pods"


@pytest.fixture(scope="module", autouse=True)
def nodes(network: Network) -> None:
    import asyncio

    async def create() -> None:
        bob_vm = node("bob-vm", "bob")
        bob_vm["metadata"]["labels"]["zone"] = "b"
        for obj in (bob_vm, node("alice-vm", "alice"), node("shared-vm", None)):
            reply = await network.call("POST", "/api/v1/nodes", body=obj)
            assert reply.status in (201, 409), reply.body

    asyncio.run(create())


def _forbidden_naming_both(reply: object) -> None:
    status, body = reply.status, reply.body  # type: ignore[attr-defined]
    assert status == 403, body
    assert body["kind"] == "Status" and body["reason"] == "Forbidden"
    assert '"alice"' in body["message"] and "bob" in body["message"], body["message"]


async def test_pod_with_another_domains_node_name_is_refused(network: Network) -> None:
    reply = await network.call("POST", PODS.format(ns="alice"), as_="alice",
                               body=pod("steal", "alice", nodeName="bob-vm"))
    _forbidden_naming_both(reply)


async def test_pod_selecting_another_domains_nodes_is_refused(network: Network) -> None:
    by_label = pod("steal-sel", "alice", nodeSelector={"kuscia.secretflow/namespace": "bob"})
    _forbidden_naming_both(await network.call("POST", PODS.format(ns="alice"), as_="alice", body=by_label))
    term = {"matchExpressions": [{"key": "kuscia.secretflow/namespace", "operator": "In", "values": ["bob"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    by_affinity = pod("steal-aff", "alice", affinity=affinity)
    _forbidden_naming_both(await network.call("POST", PODS.format(ns="alice"), as_="alice", body=by_affinity))
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["bob-vm"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [by_name]}}}
    reply = await network.call("POST", PODS.format(ns="alice"), as_="alice", body=pod("steal-f", "alice",
                                                                                       affinity=affinity))
    _forbidden_naming_both(reply)


async def test_own_and_shared_nodes_are_allowed(network: Network) -> None:
    for name, target in (("mine", "alice-vm"), ("shared", "shared-vm")):
        reply = await network.call("POST", PODS.format(ns="alice"), as_="alice", body=pod(name, "alice",
                                                                                          nodeName=target))
        assert reply.status == 201, reply.body


async def test_binding_to_another_domains_node_is_refused_even_for_the_admin(network: Network) -> None:
    reply = await network.call("POST", PODS.format(ns="alice"), as_="alice", body=pod("unbound", "alice"))
    assert reply.status == 201, reply.body
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "unbound"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "bob-vm"}}
    reply = await network.call("POST", PODS.format(ns="alice") + "/unbound/binding", body=binding)
    _forbidden_naming_both(reply)


async def test_domain_credentials_write_only_its_own_node_and_lease(network: Network) -> None:
    own = await network.call("POST", "/api/v1/nodes", as_="alice", body=node("alice-lite", "alice"))
    assert own.status == 201, own.body
    for obj in (node("fake-bob", "bob"), node("unlabelled", None)):
        reply = await network.call("POST", "/api/v1/nodes", as_="alice", body=obj)
        assert reply.status == 403, reply.body
    relabel = {"metadata": {"labels": {"kuscia.secretflow/namespace": "bob"}}}
    reply = await network.call("PATCH", "/api/v1/nodes/alice-lite", as_="alice", body=relabel,
                               content_type="application/merge-patch+json")
    assert reply.status == 403, reply.body
    for verb in ("PATCH", "DELETE"):
        reply = await network.call(verb, "/api/v1/nodes/bob-vm", as_="alice", body={"metadata": {}},
                                   content_type="application/merge-patch+json")
        assert reply.status == 403, reply.body
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    for name, wanted in (("alice-lite", 201), ("bob-vm", 403)):
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}
        reply = await network.call("POST", leases, as_="alice", body=lease)
        assert reply.status == wanted, reply.body


async def test_domain_credentials_watch_only_their_nodes_pods(network: Network) -> None:
    mine = await network.call("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dalice-vm", as_="alice")
    assert mine.status == 200, mine.body
    for query in ("", "?fieldSelector=spec.nodeName%3Dbob-vm"):
        reply = await network.call("GET", "/api/v1/pods" + query, as_="alice")
        assert reply.status == 403, reply.body
    await network.call("POST", PODS.format(ns="bob"), as_="bob", body=pod("bobs", "bob"))
    status = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bobs", "namespace": "bob"},
              "status": {"phase": "Failed"}}
    reply = await network.call("PUT", PODS.format(ns="bob") + "/bobs/status", as_="alice", body=status)
    assert reply.status == 403, reply.body


async def test_agent_on_domain_credentials_runs_its_pods_and_refuses_others(network: Network, tmp_path: Path) -> None:
    server = network.server
    config = agent_config(server, tmp_path / "lite", "alice")
    load_image(config.data_dir)
    client = Client(server.url, ssl_context=server.ssl_context(), token=network.tokens["alice"])
    agent = Agent(client, config)
    task = await start_until_ready(agent.run(), agent.ready, 20, "agent on alice's token not ready in 20 s")
    try:
        reply = await network.call("POST", "/api/v1/namespaces", body={"metadata": {"name": "plain"}})
        assert reply.status in (201, 409)
        smuggled = pod("smuggled", "plain", nodeName=config.name)
        assert (await network.call("POST", PODS.format(ns="plain"), body=smuggled)).status == 201
        own = pod("own", "alice", nodeName=config.name, restartPolicy="Never")
        own["spec"]["containers"][0]["command"] = ["true"]
        assert (await network.call("POST", PODS.format(ns="alice"), as_="alice", body=own)).status == 201

        async def own_ran() -> None:
            current = await client.get(kinds.PODS, "own", "alice")
            assert (current.get("status") or {}).get("phase") == "Succeeded", current.get("status")

        await eventually(own_ran, 20)

        async def refused() -> None:
            events = await network.call("GET", "/api/v1/namespaces/alice/events", as_="alice")
            assert any(e["reason"] == "DomainMismatch" and "plain/smuggled" in e["message"]
                       for e in events.body["items"]), events.body

        await eventually(refused, 10)
        assert "smuggled" not in {w.pod["metadata"]["name"] for w in agent.runtime.workers.values()}
        current = await network.call("GET", PODS.format(ns="plain") + "/smuggled")
        assert not (current.body.get("status") or {}).get("containerStatuses"), current.body
    finally:
        task.cancel()
        try:
            await task
        except BaseException:  # cancellation, or the agent's own error (already reported by the test)
            pass
        await client.close()
        kill_leftovers(config.data_dir)


async def test_domain_credentials_read_volumes_but_release_only_their_nodes(network: Network) -> None:
    """Node grants for local-path volumes: an agent reads PersistentVolumes and may drop the cleanup
    finalizer of a volume pinned to its own node, never of another domain's."""
    def volume(name: str, node_name: str) -> dict[str, object]:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}
        return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "hostPath": {"path": f"/srv/{name}"}, "nodeAffinity": {"required": {"nodeSelectorTerms": [
                             term]}}}}
    for name, node_name in (("vol-alice", "alice-vm"), ("vol-bob", "bob-vm")):
        reply = await network.call("POST", "/api/v1/persistentvolumes", body=volume(name, node_name))
        assert reply.status in (201, 409), reply.body
    listed = await network.call("GET", "/api/v1/persistentvolumes", as_="alice")
    assert listed.status == 200, listed.body
    release = {"metadata": {"finalizers": ["kubernetes.io/pv-protection"]}}  # drops only the cleanup finalizer
    held = {"metadata": {"finalizers": ["kubernetes.io/pv-protection", LOCAL_PATH_CLEANUP]}}
    for name in ("vol-alice", "vol-bob"):
        reply = await network.call("PATCH", f"/api/v1/persistentvolumes/{name}", body=held,
                                   content_type="application/merge-patch+json")
        assert reply.status == 200, reply.body
    patch = release
    own = await network.call("PATCH", "/api/v1/persistentvolumes/vol-alice", as_="alice", body=patch,
                             content_type="application/merge-patch+json")
    assert own.status == 200 and LOCAL_PATH_CLEANUP not in own.body["metadata"]["finalizers"], own.body
    theirs = await network.call("PATCH", "/api/v1/persistentvolumes/vol-bob", as_="alice", body=patch,
                                content_type="application/merge-patch+json")
    assert theirs.status == 403, theirs.body
    assert (await network.call("PATCH", "/api/v1/persistentvolumes/vol-alice", body=held,
                               content_type="application/merge-patch+json")).status == 200
    for verb in ("DELETE", "POST"):
        path = "/api/v1/persistentvolumes" + ("/vol-alice" if verb == "DELETE" else "")
        reply = await network.call(verb, path, as_="alice", body=volume("vol-new", "alice-vm"))
        assert reply.status == 403, reply.body
    # a registered lite's own certificate identity gets the same volume rights
    lite = {"Impersonate-User": "system:node:alice", "Impersonate-Group": "system:nodes"}
    for name, wanted in (("vol-alice", 200), ("vol-bob", 403)):
        reply = await network.call("PATCH", f"/api/v1/persistentvolumes/{name}", body=patch, headers=lite,
                                   content_type="application/merge-patch+json")
        assert reply.status == wanted, reply.body


async def test_domain_credentials_cannot_repoint_their_volumes(network: Network) -> None:
    """Regression (review): the volume grant is for releasing the cleanup finalizer only. A tenant
    that could rewrite its own node's volume could pin it to another domain's node and directory
    and, by deleting its claim, have that node's agent delete the other domain's data."""
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["alice-vm"]}]}
    body = {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "vol-repoint", "finalizers": [LOCAL_PATH_CLEANUP]},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/srv/vol-repoint"}, "nodeAffinity": {"required": {"nodeSelectorTerms": [
                         term]}}}}
    reply = await network.call("POST", "/api/v1/persistentvolumes", body=body)
    assert reply.status in (201, 409), reply.body
    bob_term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["bob-vm"]}]}
    lite = {"Impersonate-User": "system:node:alice", "Impersonate-Group": "system:nodes"}
    attempts = [
        ("spec", {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [bob_term]}}}}),
        ("spec", {"spec": {"hostPath": {"path": "/srv/bob-data"}}}),
        ("spec", {"spec": {"claimRef": {"namespace": "bob", "name": "data"}}}),
        ("metadata.labels", {"metadata": {"labels": {"seen": "yes"}}}),
        ("metadata.finalizers", {"metadata": {"finalizers": [LOCAL_PATH_CLEANUP, "example.com/hold"]}}),
    ]
    for headers in ({}, lite):
        for field, patch in attempts:
            reply = await network.call("PATCH", "/api/v1/persistentvolumes/vol-repoint", body=patch,
                                       as_=None if headers else "alice", headers=headers,
                                       content_type="application/merge-patch+json")
            assert reply.status == 403 and reply.cause_fields() == [field], (field, reply.body)
            assert "vol-repoint" in reply.body["message"], reply.body
    current = await network.call("GET", "/api/v1/persistentvolumes/vol-repoint")
    assert current.body["spec"]["hostPath"]["path"] == "/srv/vol-repoint", current.body
    assert current.body["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [term], current.body


async def test_agent_on_domain_credentials_provisions_and_removes_its_local_volumes(network: Network,
                                                                                   tmp_path: Path) -> None:
    """The agent half of the local-path provisioner with nothing but the domain's token: it publishes
    its root on its Node, creates a volume's directory (0700) and, once the volume is deleted,
    removes the directory and releases the volume's cleanup finalizer."""
    server = network.server
    config = agent_config(server, tmp_path / "lite-volumes", "alice")
    config = dataclasses.replace(config, node_name="alice-volumes")
    client = Client(server.url, ssl_context=server.ssl_context(), token=network.tokens["alice"])
    agent = Agent(client, config)
    task = await start_until_ready(agent.run(), agent.ready, 20, "agent on alice's token not ready in 20 s")
    try:
        async def root() -> Path:
            node = await network.call("GET", "/api/v1/nodes/alice-volumes")
            published = (node.body["metadata"].get("annotations") or {}).get(LOCAL_PATH_ROOT)
            assert published, node.body["metadata"]
            return Path(published)
        directory = await eventually(root, 20) / "pvc-1_alice_data"
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["alice-volumes"]}]}
        body = {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "local-alice", "finalizers": [LOCAL_PATH_CLEANUP]},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "hostPath": {"path": str(directory), "type": "DirectoryOrCreate"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}}}}
        assert (await network.call("POST", "/api/v1/persistentvolumes", body=body)).status == 201
        await eventually(lambda: directory.is_dir() and directory.stat().st_mode & 0o777 == 0o700, 20)
        (directory / "data").write_text("x")
        assert (await network.call("DELETE", "/api/v1/persistentvolumes/local-alice")).status == 200

        async def removed() -> bool:
            reply = await network.call("GET", "/api/v1/persistentvolumes/local-alice")
            return reply.status == 404 and not directory.exists()
        await eventually(removed, 20)
    finally:
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        await client.close()
        kill_leftovers(config.data_dir)
