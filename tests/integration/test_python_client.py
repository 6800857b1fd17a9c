"""The official ``kubernetes`` Python client against Atoll, unchanged, with the admin kubeconfig.

Aspects: loading the kubeconfig Atoll writes (client certificate auth over HTTPS); ConfigMap
create / list with label selectors / watch / strategic-merge and JSON patches / replace / delete;
a Kuscia Domain through ``CustomObjectsApi`` (create, get, list, merge patch, status patch,
replace, watch, delete); ``ApiException`` 404 / 409 / 410 carrying the Status JSON; the version
API; and ``DynamicClient`` (legacy discovery).

The client is synchronous, so every call runs in a worker thread (``asyncio.to_thread``) while
the in-process server keeps serving on the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.conftest import eventually

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers


GROUP, VERSION, PLURAL = "kuscia.secretflow", "v1alpha1", "domains"


class Clients:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)


@pytest.fixture
async def k8s(api_server: Any) -> AsyncIterator[Clients]:
    api_client = await asyncio.to_thread(config.new_client_from_config, config_file=str(api_server.kubeconfig))
    yield Clients(api_client)
    await asyncio.to_thread(api_client.close)


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def expect_error(status: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        await run(fn, *args, **kwargs)
    assert info.value.status == status, info.value
    body = json.loads(info.value.body)
    assert body["kind"] == "Status" and body["code"] == status
    return body


def cm(name: str, data: dict[str, str] | None = None, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or None), data=data or {"k": "v"})


def alice(pods: int = 100) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Domain",
        "metadata": {"name": "alice", "labels": {"party": "a"}},
        "spec": {"role": "partner", "cert": "base64<certificate>", "resourceQuota": {"podMaxCount": pods}},
    }


def collect_watch(
    fn: Callable[..., Any], *args: Any, count: int, timeout: int = 5, **kwargs: Any
) -> list[dict[str, Any]]:
    """Run a watch until ``count`` events arrived (or its server-side timeout ended it)."""
    events: list[dict[str, Any]] = []
    w = watch.Watch()
    for event in w.stream(fn, *args, timeout_seconds=timeout, **kwargs):
        events.append(event)
        if len(events) >= count:
            w.stop()
    return events


async def test_version_api(k8s: Clients) -> None:
    info = await run(client.VersionApi(k8s.api_client).get_code)
    assert info.major == "1" and info.minor == "32"


async def test_configmap_crud(k8s: Clients) -> None:
    core = k8s.core
    created = await run(core.create_namespaced_config_map, "default", cm("py-a", {"a": "1"}, app="web"))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    await run(core.create_namespaced_config_map, "default", cm("py-b", app="db"))
    await run(core.create_namespaced_config_map, "default", cm("py-c"))

    body = await expect_error(409, core.create_namespaced_config_map, "default", cm("py-a"))
    assert body["reason"] == "AlreadyExists" and body["message"] == 'configmaps "py-a" already exists'
    body = await expect_error(404, core.read_namespaced_config_map, "nosuch", "default")
    assert body["message"] == 'configmaps "nosuch" not found'
    await expect_error(404, core.create_namespaced_config_map, "nowhere", cm("x"))

    got = await run(core.read_namespaced_config_map, "py-a", "default")
    assert got.data == {"a": "1"} and got.metadata.labels == {"app": "web"}

    listed = await run(core.list_namespaced_config_map, "default", label_selector="app")
    assert sorted(i.metadata.name for i in listed.items) == ["py-a", "py-b"]
    listed = await run(core.list_namespaced_config_map, "default", label_selector="app in (web),app!=db")
    assert [i.metadata.name for i in listed.items] == ["py-a"]
    listed = await run(core.list_namespaced_config_map, "default", field_selector="metadata.name=py-c")
    assert [i.metadata.name for i in listed.items] == ["py-c"]
    page = await run(core.list_namespaced_config_map, "default", limit=2)
    assert len(page.items) == 2 and page.metadata._continue
    rest = await run(core.list_namespaced_config_map, "default", limit=2, _continue=page.metadata._continue)
    assert len(page.items) + len(rest.items) == 3

    # strategic merge patch (the client's default for a dict body on a built-in)
    patched = await run(
        core.patch_namespaced_config_map, "py-a", "default", {"data": {"b": "2"}, "metadata": {"labels": {"tier": "x"}}}
    )
    assert patched.data == {"a": "1", "b": "2"} and patched.metadata.labels == {"app": "web", "tier": "x"}
    # JSON patch (a list body)
    patched = await run(core.patch_namespaced_config_map, "py-a", "default", [{"op": "remove", "path": "/data/a"}])
    assert patched.data == {"b": "2"}

    # replace: conditional on the read resourceVersion
    current = await run(core.read_namespaced_config_map, "py-a", "default")
    current.data = {"replaced": "yes"}
    replaced = await run(core.replace_namespaced_config_map, "py-a", "default", current)
    assert replaced.data == {"replaced": "yes"}
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)
    current.data = {"stale": "write"}
    body = await expect_error(409, core.replace_namespaced_config_map, "py-a", "default", current)
    assert body["reason"] == "Conflict" and "the object has been modified" in body["message"]

    status = await run(core.delete_namespaced_config_map, "py-a", "default")  # returned as a plain dict
    assert status["kind"] == "Status" and status["status"] == "Success" and status["details"]["name"] == "py-a"
    await expect_error(404, core.read_namespaced_config_map, "py-a", "default")
    await expect_error(404, core.delete_namespaced_config_map, "py-a", "default")
    await run(core.delete_collection_namespaced_config_map, "default", label_selector="app=db")
    remaining = await run(core.list_namespaced_config_map, "default")
    assert [i.metadata.name for i in remaining.items] == ["py-c"]


def watch_registered(api_server: Any) -> Callable[[], bool]:
    """A check that holds once one more watch than now is registered with the server."""
    cache = api_server.node.server.cache
    before = cache.watcher_count
    return lambda: cache.watcher_count > before


async def test_configmap_watch(k8s: Clients, api_server: Any) -> None:
    core = k8s.core
    await run(core.create_namespaced_config_map, "default", cm("w-a", app="w"))
    listed = await run(core.list_namespaced_config_map, "default", label_selector="app=w")
    rv = listed.metadata.resource_version

    registered = watch_registered(api_server)
    watcher = asyncio.create_task(
        run(
            collect_watch,
            core.list_namespaced_config_map,
            "default",
            count=3,
            resource_version=rv,
            label_selector="app=w",
        )
    )
    await eventually(registered)
    await run(core.create_namespaced_config_map, "default", cm("w-b", app="w"))
    await run(core.create_namespaced_config_map, "default", cm("ignored", app="other"))
    await run(core.patch_namespaced_config_map, "w-a", "default", {"data": {"k": "changed"}})
    await run(core.delete_namespaced_config_map, "w-b", "default")
    events = await asyncio.wait_for(watcher, 15)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "w-b"),
        ("MODIFIED", "w-a"),
        ("DELETED", "w-b"),
    ]
    assert isinstance(events[1]["object"], client.V1ConfigMap)
    assert events[1]["object"].data == {"k": "changed"}


async def test_watch_from_zero_lists_current_objects_and_ends_on_timeout(k8s: Clients) -> None:
    await run(k8s.core.create_namespaced_config_map, "default", cm("z1"))
    events = await run(collect_watch, k8s.core.list_namespaced_config_map, "default", count=10, timeout=1)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "z1")]


async def test_watch_too_old_resource_version_raises_410(k8s: Clients, api_server: Any) -> None:
    created = await run(k8s.core.create_namespaced_config_map, "default", cm("old"))
    await run(k8s.core.patch_namespaced_config_map, "old", "default", {"data": {"n": "1"}})
    server = api_server.node.server
    await server.compactor.compact(server.cache.revision)  # everything up to now is compacted
    with pytest.raises(ApiException) as info:
        await run(
            collect_watch,
            k8s.core.list_namespaced_config_map,
            "default",
            count=1,
            resource_version=created.metadata.resource_version,
        )
    assert info.value.status == 410


async def test_domain_with_custom_objects_api(k8s: Clients) -> None:
    custom = k8s.custom
    created = await run(custom.create_cluster_custom_object, GROUP, VERSION, PLURAL, alice())
    assert created["metadata"]["uid"] and created["spec"]["resourceQuota"]["podMaxCount"] == 100
    body = await expect_error(409, custom.create_cluster_custom_object, GROUP, VERSION, PLURAL, alice())
    assert body["message"] == 'domains.kuscia.secretflow "alice" already exists'
    body = await expect_error(404, custom.get_cluster_custom_object, GROUP, VERSION, PLURAL, "bob")
    assert body["message"] == 'domains.kuscia.secretflow "bob" not found'
    bad = alice()
    bad["metadata"]["name"] = "eve"
    bad["spec"]["role"] = "wrong"
    body = await expect_error(422, custom.create_cluster_custom_object, GROUP, VERSION, PLURAL, bad)
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.role"]

    got = await run(custom.get_cluster_custom_object, GROUP, VERSION, PLURAL, "alice")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = await run(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, label_selector="party=a")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["alice"]
    assert listed["kind"] == "DomainList"
    listed = await run(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, label_selector="party!=a")
    assert listed["items"] == []

    # merge patch (CustomObjectsApi sends application/merge-patch+json)
    patched = await run(
        custom.patch_cluster_custom_object,
        GROUP,
        VERSION,
        PLURAL,
        "alice",
        {"spec": {"resourceQuota": {"podMaxCount": 200}}},
    )
    assert patched["spec"]["resourceQuota"]["podMaxCount"] == 200 and patched["spec"]["role"] == "partner"
    generation = patched["metadata"]["generation"]
    assert generation >= 2

    status = {"nodeStatuses": [{"name": "agent-1", "status": "Ready", "version": "v1"}]}
    patched = await run(
        custom.patch_cluster_custom_object_status,
        GROUP,
        VERSION,
        PLURAL,
        "alice",
        {"status": status, "spec": {"role": ""}},
    )
    assert patched["status"]["nodeStatuses"] == status["nodeStatuses"] and patched["spec"]["role"] == "partner"
    assert patched["metadata"]["generation"] == generation

    # replace keeps status (status subresource) and checks the resourceVersion (the Domain controller
    # may write in between: retry like any client would)
    for _ in range(10):
        current = await run(custom.get_cluster_custom_object, GROUP, VERSION, PLURAL, "alice")
        current["spec"]["cert"] = "new-cert"
        try:
            replaced = await run(custom.replace_cluster_custom_object, GROUP, VERSION, PLURAL, "alice", current)
            break
        except ApiException as exc:
            assert exc.status == 409
    assert replaced["spec"]["cert"] == "new-cert"
    assert replaced["status"]["nodeStatuses"] == status["nodeStatuses"]
    current["spec"]["cert"] = "stale"
    await expect_error(409, custom.replace_cluster_custom_object, GROUP, VERSION, PLURAL, "alice", current)

    deleted = await run(custom.delete_cluster_custom_object, GROUP, VERSION, PLURAL, "alice")
    assert deleted["metadata"]["name"] == "alice"
    await expect_error(404, custom.get_cluster_custom_object, GROUP, VERSION, PLURAL, "alice")
    await expect_error(404, custom.delete_cluster_custom_object, GROUP, VERSION, PLURAL, "alice")


async def test_domain_watch(k8s: Clients, api_server: Any) -> None:
    custom = k8s.custom
    listed = await run(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
    registered = watch_registered(api_server)

    def watch_domains() -> list[dict[str, Any]]:
        return collect_watch(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            count=3,
            resource_version=listed["metadata"]["resourceVersion"],
        )

    watcher = asyncio.create_task(asyncio.to_thread(watch_domains))
    await eventually(registered)
    await run(custom.create_cluster_custom_object, GROUP, VERSION, PLURAL, alice())
    await run(
        custom.patch_cluster_custom_object_status,
        GROUP,
        VERSION,
        PLURAL,
        "alice",
        {"status": {"nodeStatuses": [{"name": "n", "status": "Ready", "version": "1"}]}},
    )
    await run(custom.delete_cluster_custom_object, GROUP, VERSION, PLURAL, "alice")
    events = await asyncio.wait_for(watcher, 15)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "alice"),
        ("MODIFIED", "alice"),
        ("DELETED", "alice"),
    ]
    assert events[1]["object"]["status"]["nodeStatuses"][0]["status"] == "Ready"
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


async def test_namespace_with_bare_body(k8s: Clients) -> None:
    ns = await run(k8s.core.create_namespace, {"metadata": {"name": "py-ns"}})
    assert ns.status.phase == "Active" and ns.spec.finalizers == ["kubernetes"]
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "py-ns"
    patched = await run(k8s.core.patch_namespace, "py-ns", {"metadata": {"labels": {"team": "a"}}})
    assert patched.metadata.labels["team"] == "a"
    await run(k8s.core.delete_namespace, "py-ns")
    ns = await run(k8s.core.read_namespace, "py-ns")
    assert ns.status.phase == "Terminating"


async def test_dynamic_client_uses_legacy_discovery(k8s: Clients) -> None:
    def go() -> list[str]:
        dyn = dynamic.DynamicClient(k8s.api_client)
        domains = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="Domain")
        assert domains.namespaced is False
        domains.create(body=alice())
        cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
        cms.create(body={"metadata": {"name": "dyn"}, "data": {"a": "b"}}, namespace="default")
        return [i.metadata.name for i in domains.get().items] + [cms.get(name="dyn", namespace="default").metadata.name]

    assert await run(go) == ["alice", "dyn"]
