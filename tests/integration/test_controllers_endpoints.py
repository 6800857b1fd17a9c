"""The endpoints controller against a real in-process master (API server + controller manager).

Aspects: Ready pods under ``addresses`` and others under ``notReadyAddresses`` (with nodeName and
targetRef), numeric and named target ports, pods without an IP left out, selector changes and pod
label changes moving pods in and out, Services without a selector left alone, no write when
nothing changed, and the Endpoints deleted with their Service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from atoll.api.errors import NotFound
from atoll.api.kinds import ENDPOINTS, NAMESPACES, PODS, SERVICES
from atoll.client import Client
from atoll.controllers.endpoints.subsets import desired_subsets
from tests.conftest import RunningServer, eventually
from tests.integration.controllers import reconciles, settled

pytestmark = pytest.mark.controllers("endpoints")
JSON = dict[str, Any]
NS = "eps"
TIMEOUT = 15.0



@pytest.fixture
async def client(api_server: RunningServer) -> AsyncIterator[Client]:
    async with api_server.client() as c:
        await c.create(NAMESPACES, {"metadata": {"name": NS}})
        yield c


def service(name: str, selector: dict[str, str] | None, ports: list[JSON]) -> JSON:
    spec: JSON = {"ports": ports}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "x"}}, "spec": spec}


async def add_pod(
    client: Client, name: str, ip: str | None, *, ready: bool, labels: dict[str, str] | None = None
) -> JSON:
    container = {
        "name": "main",
        "image": "busybox:1",
        "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
    }
    body = {
        "metadata": {"name": name, "labels": labels if labels is not None else {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [container]},
    }
    pod = await client.create(PODS, body, NS)
    status: JSON = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    return await client.update(PODS, {**pod, "status": status}, subresource="status")


async def wait_endpoints(client: Client, name: str, check: Callable[[JSON], bool]) -> JSON:
    async def matched() -> JSON:
        try:
            last = await client.get(ENDPOINTS, name, NS)
        except NotFound:
            last = {}
        assert check(last), f"endpoints {name} never matched: {last}"
        return last

    return await eventually(matched, TIMEOUT)


def ips(subset: JSON, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


async def test_ready_and_not_ready_pods_with_named_ports(api_server: RunningServer, client: Client) -> None:
    web = await add_pod(client, "web-1", "10.0.0.2", ready=True)
    await add_pod(client, "web-2", "10.0.0.1", ready=False)
    await add_pod(client, "web-3", None, ready=True)  # no IP yet: not listed
    await add_pod(client, "other", "10.0.0.9", ready=True, labels={"app": "db"})
    ports = [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "metrics", "port": 9000, "targetPort": 9090},
    ]
    await client.create(SERVICES, service("web", {"app": "web"}, ports), NS)
    eps = await wait_endpoints(client, "web", lambda e: bool(e.get("subsets")))
    assert eps["metadata"]["labels"] == {"team": "x"}
    [subset] = eps["subsets"]
    assert ips(subset) == ["10.0.0.2"]
    assert ips(subset, "notReadyAddresses") == ["10.0.0.1"]
    address = subset["addresses"][0]
    assert address["nodeName"] == "node-1"
    assert address["targetRef"] == {"kind": "Pod", "namespace": NS, "name": "web-1", "uid": web["metadata"]["uid"]}
    assert subset["ports"] == [
        {"name": "http", "port": 8080, "protocol": "TCP"},
        {"name": "metrics", "port": 9090, "protocol": "TCP"},
    ]

    # the not-ready pod becomes ready
    pod = await client.get(PODS, "web-2", NS)
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    await client.update(PODS, pod, subresource="status")
    eps = await wait_endpoints(client, "web", lambda e: len(ips(e["subsets"][0])) == 2)
    assert ips(eps["subsets"][0]) == ["10.0.0.1", "10.0.0.2"]
    assert "notReadyAddresses" not in eps["subsets"][0]

    # nothing changes: no write
    rv = eps["metadata"]["resourceVersion"]
    await client.patch(PODS, "web-1", {"metadata": {"annotations": {"touched": "yes"}}}, NS)  # filtered out
    seen = reconciles("endpoints")
    await client.patch(SERVICES, "web", {"metadata": {"annotations": {"touched": "yes"}}}, NS)  # reconciled
    await settled(api_server, "endpoints", seen)
    assert (await client.get(ENDPOINTS, "web", NS))["metadata"]["resourceVersion"] == rv


async def test_named_port_missing_in_a_pod_leaves_it_out_of_that_port(client: Client) -> None:
    await add_pod(client, "a", "10.0.1.1", ready=True)
    await client.create(
        SERVICES, service("grpc", {"app": "web"}, [{"name": "g", "port": 50, "targetPort": "grpc"}]), NS
    )
    await client.create(SERVICES, service("ok", {"app": "web"}, [{"port": 80, "targetPort": 8080}]), NS)
    eps = await wait_endpoints(client, "ok", lambda e: bool(e.get("subsets")))
    assert eps["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    grpc = await wait_endpoints(client, "grpc", lambda e: bool(e))
    assert not grpc.get("subsets")


async def test_selector_and_label_changes(client: Client) -> None:
    await add_pod(client, "blue", "10.0.2.1", ready=True, labels={"app": "web", "color": "blue"})
    await add_pod(client, "green", "10.0.2.2", ready=True, labels={"app": "web", "color": "green"})
    await client.create(SERVICES, service("live", {"color": "blue"}, [{"port": 80, "targetPort": 8080}]), NS)
    await wait_endpoints(client, "live", lambda e: bool(e.get("subsets")) and ips(e["subsets"][0]) == ["10.0.2.1"])
    # switch the selector
    await client.patch(SERVICES, "live", {"spec": {"selector": {"color": "green"}}}, NS)
    await wait_endpoints(client, "live", lambda e: bool(e.get("subsets")) and ips(e["subsets"][0]) == ["10.0.2.2"])
    # relabel a pod into the selection
    await client.patch(PODS, "blue", {"metadata": {"labels": {"color": "green"}}}, NS)
    await wait_endpoints(client, "live", lambda e: bool(e.get("subsets")) and len(ips(e["subsets"][0])) == 2)
    # delete both pods: empty endpoints
    for name in ("blue", "green"):
        await client.delete(PODS, name, NS, grace_period_seconds=0)
    await wait_endpoints(client, "live", lambda e: bool(e) and not e.get("subsets"))


async def test_service_deletion_deletes_endpoints_and_selectorless_are_left_alone(
    api_server: RunningServer, client: Client
) -> None:
    await add_pod(client, "p", "10.0.3.1", ready=True)
    await client.create(SERVICES, service("gone", {"app": "web"}, [{"port": 80}]), NS)
    await wait_endpoints(client, "gone", lambda e: bool(e.get("subsets")))
    await client.delete(SERVICES, "gone", NS)
    await wait_endpoints(client, "gone", lambda e: not e)

    manual = {"metadata": {"name": "ext"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 5}]}]}
    await client.create(ENDPOINTS, manual, NS)
    seen = reconciles("endpoints")
    await client.create(SERVICES, service("ext", None, [{"port": 5}]), NS)
    await settled(api_server, "endpoints", seen)
    assert ips((await client.get(ENDPOINTS, "ext", NS))["subsets"][0]) == ["192.0.2.1"]


def test_subsets_group_by_port_set_and_publish_not_ready() -> None:
    def pod(name: str, ip: str, ports: list[JSON], *, ready: bool, deleting: bool = False) -> JSON:
        meta: JSON = {"name": name, "namespace": "n", "uid": f"uid-{name}"}
        if deleting:
            meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        return {
            "metadata": meta,
            "spec": {"containers": [{"name": "c", "ports": ports}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]},
        }

    named = [{"name": "http", "containerPort": 81}]
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}
    pods = [
        pod("a", "10.0.0.1", named, ready=True),
        pod("b", "10.0.0.2", [{"name": "http", "containerPort": 82}], ready=True),
        pod("c", "10.0.0.3", named, ready=False, deleting=True),
    ]
    subsets = desired_subsets(svc, pods)
    assert [(ips(s), s["ports"][0]["port"]) for s in subsets] == [(["10.0.0.1"], 81), (["10.0.0.2"], 82)]
    published = desired_subsets({**svc, "spec": {**svc["spec"], "publishNotReadyAddresses": True}}, pods)
    assert [ips(s) for s in published] == [["10.0.0.1", "10.0.0.3"], ["10.0.0.2"]]
