"""Subresources, served by the handlers each kind's strategy registers: binding, eviction, the
streaming subresources' preconditions (exec, attach, portforward), ephemeralcontainers, log
preconditions, namespace finalize, and methods a subresource does not serve."""

from __future__ import annotations

import pytest

from tests.integration.kube_http import Api, assert_status, create, pod

pytestmark = pytest.mark.controllers()  # API server semantics only

PODS = "/api/v1/namespaces/default/pods"
CREATED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def binding(pod_name: str, node: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod_name}, "target": {"kind": "Node",
                                                                                           "name": node}}


async def test_binding_sets_the_node_once(api: Api) -> None:
    await create(api, PODS, pod("b"))
    reply = await api.post(f"{PODS}/b/binding", binding("b", "n1"))
    assert (reply.status, reply.json) == (201, CREATED)
    bound = (await api.get(f"{PODS}/b")).json
    assert bound["spec"]["nodeName"] == "n1"
    scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled and scheduled[0]["status"] == "True" and scheduled[0]["lastTransitionTime"].endswith("Z")
    assert_status(await api.post(f"{PODS}/b/binding", binding("b", "n2")), 409, "Conflict",
                  'Operation cannot be fulfilled on pods/binding "b": pod b is already assigned to node "n1"')
    assert_status(await api.post(f"{PODS}/b/binding", {"target": {}}), 422, "Invalid")
    assert_status(await api.get(f"{PODS}/b/binding"), 405, "MethodNotAllowed")


async def test_eviction_deletes_the_pod(api: Api) -> None:
    await create(api, PODS, pod("e"))
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "e"},
                "deleteOptions": {"gracePeriodSeconds": 0}}
    reply = await api.post(f"{PODS}/e/eviction", eviction)
    assert (reply.status, reply.json) == (201, CREATED)
    assert_status(await api.get(f"{PODS}/e"), 404, "NotFound")
    assert_status(await api.post(f"{PODS}/e/eviction", eviction), 404, "NotFound")


async def test_streams_need_websocket_and_a_node(api: Api) -> None:
    await create(api, PODS, pod("x"))
    assert_status(await api.post(f"{PODS}/x/exec?command=true"), 400, "BadRequest",
                  "Upgrade request required: pods/exec is a WebSocket endpoint (remotecommand v5.channel.k8s.io)")
    spdy = await api.post(f"{PODS}/x/exec?command=true", headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"})
    assert spdy.status == 400 and "not SPDY/3.1: use kubectl 1.30 or newer" in spdy.json["message"]
    assert_status(await api.post(f"{PODS}/x/attach"), 400, "BadRequest",
                  "Upgrade request required: pods/attach is a WebSocket endpoint (remotecommand v5.channel.k8s.io)")
    spdy = await api.post(f"{PODS}/x/attach?stdin=true", headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"})
    assert spdy.status == 400 and "v5.channel.k8s.io" in spdy.json["message"]
    spdy = await api.post(f"{PODS}/x/portforward", headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"})
    assert spdy.status == 400 and "SPDY/3.1+portforward.k8s.io" in spdy.json["message"], spdy.json
    ws = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
          "Sec-WebSocket-Version": "13"}
    assert_status(await api.get(f"{PODS}/x/portforward?ports=80,http", headers=ws), 400, "BadRequest",
                  "invalid port 'http' in ports: must be an integer in 1-65535")
    assert_status(await api.get(f"{PODS}/x/attach?stdin=true", headers=ws), 400, "BadRequest",
                  "pod x does not have a host assigned")
    assert_status(await api.get(f"{PODS}/x/log"), 400, "BadRequest", "pod x does not have a host assigned")


async def test_ephemeral_containers_can_only_be_added(api: Api) -> None:
    await create(api, PODS, pod("dbg"))
    path = f"{PODS}/dbg/ephemeralcontainers"
    debugger = {"name": "debugger", "image": "app:v1", "command": ["sh"], "stdin": True, "tty": True}
    added = await api.patch(path, {"spec": {"ephemeralContainers": [debugger]}}, "strategic")
    assert added.status == 200, added
    stored = added.json["spec"]["ephemeralContainers"]
    assert [c["name"] for c in stored] == ["debugger"] and stored[0]["terminationMessagePolicy"] == "File"
    assert (await api.get(path)).json["spec"]["ephemeralContainers"] == stored
    changed = await api.patch(path, {"spec": {"ephemeralContainers": [{**debugger, "image": "app:v2"}]}}, "merge")
    assert_status(changed, 422, "Invalid", 'Pod "dbg" is invalid: spec.ephemeralContainers[0]: Forbidden: '
                                           'existing ephemeral container "debugger" may not be changed')
    removed = await api.patch(path, {"spec": {"ephemeralContainers": []}}, "merge")
    assert_status(removed, 422, "Invalid")
    assert "may not be removed" in removed.json["message"]
    bad = {"name": "main", "image": "app:v1", "ports": [{"containerPort": 80}]}
    refused = await api.patch(path, {"spec": {"ephemeralContainers": [debugger, bad]}}, "merge")
    assert_status(refused, 422, "Invalid")
    fields = [c["field"] for c in refused.json["details"]["causes"]]
    assert fields == ["spec.ephemeralContainers[1].name", "spec.ephemeralContainers[1].ports"], fields
    other = await api.patch(path, {"spec": {"containers": [{"name": "main", "image": "x:2"}]}}, "strategic")
    assert other.status == 200 and other.json["spec"]["containers"][0]["image"] == "busybox:1", other


async def test_namespace_finalize(api: Api) -> None:
    await create(api, "/api/v1/namespaces", {"metadata": {"name": "fin"}})
    got = await api.get("/api/v1/namespaces/fin/finalize")
    assert got.status == 200 and got.json["spec"]["finalizers"] == ["kubernetes"]
    await api.delete("/api/v1/namespaces/fin")
    terminating = (await api.get("/api/v1/namespaces/fin")).json
    assert terminating["status"]["phase"] == "Terminating"
    reply = await api.put("/api/v1/namespaces/fin/finalize", {**terminating, "spec": {"finalizers": []}})
    assert reply.status == 200, reply
    assert_status(await api.get("/api/v1/namespaces/fin"), 404, "NotFound")
    assert_status(await api.post("/api/v1/namespaces/default/finalize", {}), 405, "MethodNotAllowed")
