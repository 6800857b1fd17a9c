"""Subresources, served by the handlers each kind's strategy registers: binding, eviction, exec
(refused), log preconditions, namespace finalize, and methods a subresource does not serve."""

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


async def test_exec_needs_websocket_attach_is_refused_and_logs_need_a_node(api: Api) -> None:
    await create(api, PODS, pod("x"))
    assert_status(await api.post(f"{PODS}/x/exec?command=true"), 400, "BadRequest",
                  "Upgrade request required: pods/exec is a WebSocket endpoint (remotecommand v5.channel.k8s.io)")
    spdy = await api.post(f"{PODS}/x/exec?command=true", headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"})
    assert spdy.status == 400 and "not SPDY/3.1: use kubectl 1.30 or newer" in spdy.json["message"]
    assert_status(await api.post(f"{PODS}/x/attach"), 501, message="the pods/attach subresource is not served "
                                                                  "by this server yet")
    assert_status(await api.get(f"{PODS}/x/log"), 400, "BadRequest", "pod x does not have a host assigned")


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
