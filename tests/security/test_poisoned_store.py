"""Finding 2b/2c: a master whose store already holds malformed objects (written before validation
existed) starts, serves, authorizes, and its controllers skip exactly those objects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from atoll.store.endpoint import open_store
from tests.conftest import RunningServer, eventually, running_master
from tests.security.conftest import Network

pytestmark = pytest.mark.slow

POISON: dict[str, object] = {
    "/core/pods/default/listspec": {"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": "listspec", "namespace": "default", "uid": "u1"},
                                    "spec": [1]},
    "/core/pods/default/dictnode": {"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": "dictnode", "namespace": "default", "uid": "u2"},
                                    "spec": {"nodeName": {"a": 1}, "containers": [{"name": "c", "image": "i"}]}},
    "/rbac.authorization.k8s.io/rolebindings/default/bad": {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "bad", "namespace": "default", "uid": "u3"},
        "roleRef": {"kind": "ClusterRole", "name": "admin"}, "subjects": "abc"},
    "/core/configmaps/default/domaincfg": {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "domaincfg", "namespace": "default", "uid": "u4",
                     "labels": {"kuscia.secretflow/domain-name": "default"}}, "spec": "x"},
    "/core/configmaps/default/notanobject": [1, 2, 3],
}


async def _poison(data_dir: Path) -> None:
    store = open_store(None, data_dir)
    await store.start()
    try:
        for key, value in POISON.items():
            await store.create(key, orjson.dumps(value))
        await store.create("/core/configmaps/default/garbage", b"{not json")
    finally:
        await store.close()


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    data_dir = tmp_path_factory.mktemp("poisoned") / "master"
    data_dir.mkdir(parents=True)
    asyncio.run(_poison(data_dir))
    with running_master(data_dir) as server:
        yield Network(server, {})


async def test_master_serves_and_authorizes_despite_poisoned_objects(poisoned: Network) -> None:
    reply = await poisoned.call("GET", "/api/v1/pods")
    assert reply.status == 200, reply.body
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    for path in ("/api/v1/pods", "/api/v1/configmaps", "/apis/rbac.authorization.k8s.io/v1/rolebindings"):
        reply = await poisoned.call("GET", path, headers={"Accept": table})
        assert reply.status == 200, (path, reply.body)
    reply = await poisoned.call("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dx")
    assert reply.status == 200, reply.body
    ns = {"metadata": {"name": "carol"}}
    assert (await poisoned.call("POST", "/api/v1/namespaces", body=ns)).status == 201
    sa = {"metadata": {"name": "carol"}}
    assert (await poisoned.call("POST", "/api/v1/namespaces/carol/serviceaccounts", body=sa)).status == 201
    binding = {"metadata": {"name": "carol"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "carol", "namespace": "carol"}]}
    reply = await poisoned.call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/carol/rolebindings",
                                body=binding)
    assert reply.status == 201, reply.body
    reply = await poisoned.call("POST", "/api/v1/namespaces/carol/serviceaccounts/carol/token",
                                body={"spec": {"expirationSeconds": 3600}})
    poisoned.tokens["carol"] = reply.body["status"]["token"]
    assert (await poisoned.call("GET", "/api/v1/namespaces/carol/configmaps", as_="carol")).status == 200
    assert (await poisoned.call("GET", "/api/v1/namespaces/default/configmaps", as_="carol")).status == 403


async def test_controllers_skip_the_bad_objects_and_keep_working(poisoned: Network) -> None:
    server: RunningServer = poisoned.server
    domain = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": "dave"},
              "spec": {"role": ""}}
    assert (await poisoned.call("POST", "/apis/kuscia.secretflow/v1alpha1/domains", body=domain)).status == 201

    async def namespace_made() -> None:
        reply = await poisoned.call("GET", "/api/v1/namespaces/dave")
        assert reply.status == 200, reply.body

    await eventually(namespace_made, 20)
    metrics = await poisoned.call("GET", "/metrics")
    lines = [ln for ln in str(metrics.body).splitlines() if ln.startswith("informer_malformed_objects_total")]
    assert any('resource="pods"' in ln and not ln.endswith(" 0.0") for ln in lines), lines
    assert (server.data_dir / "server.log").exists()
