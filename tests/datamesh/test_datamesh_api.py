"""DataMesh's HTTP API (Kuscia's paths and messages) against a real master: CRUD of DomainData and
DomainDataSource, scoping to the lite's own domain, and the default data source of a new Domain."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest

from atoll.api import errors, kinds
from atoll.client import Client, resource_path
from atoll.datamesh import DataMeshServer, DataMeshSettings
from atoll.datamesh.constants import DEFAULT_DATA_SOURCE_ID, DOMAINDATAS, DOMAINDATASOURCES
from tests.conftest import RunningServer, eventually
from tests.datamesh.conftest import Mesh, call, ensure_domain

pytestmark = pytest.mark.slow
COLUMNS = [{"name": "id", "type": "str"}, {"name": "age", "type": "int"}]


async def test_new_domain_gets_the_default_localfs_source(admin: Client) -> None:
    await ensure_domain(admin, "carol")
    source = await admin.get(DOMAINDATASOURCES, DEFAULT_DATA_SOURCE_ID, "carol")
    assert source["spec"] == {"name": DEFAULT_DATA_SOURCE_ID, "type": "localfs", "uri": "var/storage/data",
                              "accessDirectly": True}
    assert source["metadata"]["labels"]["kuscia.secretflow/domaindatasource-type"] == "localfs"
    await admin.delete(DOMAINDATASOURCES, DEFAULT_DATA_SOURCE_ID, "carol")  # the controller puts it back

    async def back() -> None:
        await admin.get(DOMAINDATASOURCES, DEFAULT_DATA_SOURCE_ID, "carol")

    await eventually(back, 30)
    partner = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": "dave"},
               "spec": {"role": "partner"}}
    await admin.create(kinds.DOMAINS, partner)
    await eventually(lambda: admin.get(kinds.NAMESPACES, "dave"), 30)
    items, _ = await admin.list_all(DOMAINDATASOURCES, namespace="dave")
    assert items == []  # a partner's data lives at its own master


async def test_domaindata_create_query_update_delete(meshes: dict[str, Mesh], admin: Client) -> None:
    alice = meshes["alice"]
    created = await call(alice, "domaindata/create", {"domaindata_id": "alice-table", "name": "alice table",
                                                      "type": "table", "relative_uri": "alice.csv",
                                                      "columns": COLUMNS, "attributes": {"Owner": "x"}})
    assert created == {"status": {"code": 0, "message": "success", "details": []},
                       "data": {"domaindata_id": "alice-table"}}
    obj = await admin.get(DOMAINDATAS, "alice-table", "alice")
    assert obj["spec"]["author"] == "alice" and obj["spec"]["dataSource"] == DEFAULT_DATA_SOURCE_ID
    assert obj["spec"]["fileFormat"] == "csv" and obj["spec"]["vendor"] == "manual"
    assert obj["metadata"]["labels"]["kuscia.secretflow/domaindata-type"] == "table"

    queried = await call(alice, "domaindata/query", {"domaindataId": "alice-table"})  # JSON name accepted too
    assert queried["data"] == {
        "domaindata_id": "alice-table", "name": "alice table", "type": "table", "relative_uri": "alice.csv",
        "datasource_id": DEFAULT_DATA_SOURCE_ID, "attributes": {"Owner": "x"}, "partition": None,
        "columns": [{**c, "comment": "", "not_nullable": False} for c in COLUMNS], "vendor": "manual",
        "file_format": "CSV", "author": "alice",
    }

    updated = await call(alice, "domaindata/update", {"domaindata_id": "alice-table", "vendor": "secretflow",
                                                      "relativeUri": "v2/alice.csv"})
    assert updated["status"]["code"] == 0, updated
    after = (await call(alice, "domaindata/query", {"domaindata_id": "alice-table"}))["data"]
    assert (after["vendor"], after["relative_uri"], after["name"]) == ("secretflow", "v2/alice.csv", "alice table")

    again = await call(alice, "domaindata/create", {"domaindata_id": "alice-table", "name": "renamed"})
    assert again["status"]["code"] == 0  # Kuscia: create of an existing id updates it
    assert (await admin.get(DOMAINDATAS, "alice-table", "alice"))["spec"]["name"] == "renamed"

    generated = await call(alice, "domaindata/create", {"type": "report", "relative_uri": "out/Report.txt"})
    new_id = generated["data"]["domaindata_id"]
    assert new_id.startswith("reporttxt-") and len(new_id) == len("reporttxt-") + 16

    assert (await call(alice, "domaindata/delete", {"domaindata_id": "alice-table"}))["status"]["code"] == 0
    missing = await call(alice, "domaindata/query", {"domaindata_id": "alice-table"})
    assert missing["status"]["code"] == 12201 and "alice-table" in missing["status"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "table", "relative_uri": "../etc/passwd", "columns": COLUMNS}, "relative_uri"),
        ({"type": "table", "relative_uri": "/etc/passwd", "columns": COLUMNS}, "relative_uri"),
        ({"type": "table", "relative_uri": "a.csv"}, "columns"),
        ({"type": "movie", "relative_uri": "a.csv"}, "type"),
        ({"domaindata_id": "Bad_ID", "type": "table", "relative_uri": "a.csv", "columns": COLUMNS}, "domaindata_id"),
        ({"type": "table", "relative_uri": "a.csv", "columns": COLUMNS, "datasource_id": "nope"}, "nope"),
    ],
)
async def test_bad_domaindata_requests_name_the_field(meshes: dict[str, Mesh], body: dict[str, object],
                                                      field: str) -> None:
    result = await call(meshes["alice"], "domaindata/create", body)
    assert result["status"]["code"] != 0 and field in result["status"]["message"], result


async def test_datasource_crud_seals_the_info_with_the_domain_key(meshes: dict[str, Mesh], admin: Client) -> None:
    alice = meshes["alice"]
    db = {"endpoint": "127.0.0.1:3306", "user": "u", "password": "secret-pw", "database": "d"}
    created = await call(alice, "domaindatasource/create", {"datasource_id": "warehouse", "type": "mysql",
                                                            "info": {"database": db}})
    assert created["data"] == {"datasource_id": "warehouse"}, created
    obj = await admin.get(DOMAINDATASOURCES, "warehouse", "alice")
    sealed = obj["spec"]["data"]["encryptedInfo"]
    assert "secret-pw" not in str(obj) and len(base64.b64decode(sealed)) == 256  # one RSA-2048 OAEP block
    queried = await call(alice, "domaindatasource/query", {"datasource_id": "warehouse"})
    assert queried["data"]["info"]["database"] == db and queried["data"]["status"] == "Available"

    local = await call(alice, "domaindatasource/create", {"datasource_id": "scratch", "type": "localfs",
                                                          "info": {"localfs": {"path": "scratch"}}})
    assert local["status"]["code"] == 0
    info = (await call(alice, "domaindatasource/query", {"datasource_id": "scratch"}))["data"]["info"]
    assert info["localfs"] == {"path": str(alice.data_dir / "scratch")}  # relative to the lite's dataDir

    moved = await call(alice, "domaindatasource/update", {"datasource_id": "scratch", "name": "Scratch",
                                                          "info": {"localfs": {"path": "/srv/data"}}})
    assert moved["status"]["code"] == 0
    after = (await call(alice, "domaindatasource/query", {"datasource_id": "scratch"}))["data"]
    assert after["name"] == "Scratch" and after["info"]["localfs"] == {"path": "/srv/data"}

    dup = await call(alice, "domaindatasource/create", {"datasource_id": "scratch", "type": "localfs",
                                                        "info": {"localfs": {"path": "x"}}})
    assert dup["status"]["code"] == 12304
    bad = await call(alice, "domaindatasource/create", {"type": "localfs", "info": {}})
    assert bad["status"]["code"] == 12301 and "info.localfs.path" in bad["status"]["message"]

    default = (await call(alice, "domaindatasource/query", {"datasource_id": DEFAULT_DATA_SOURCE_ID}))["data"]
    assert default["type"] == "localfs" and default["info"]["localfs"] == {"path": str(alice.data_root)}

    assert (await call(alice, "domaindatasource/delete", {"datasource_id": "scratch"}))["status"]["code"] == 0
    gone = await call(alice, "domaindatasource/delete", {"datasource_id": "scratch"})
    assert gone["status"]["code"] == 12305


async def test_a_datamesh_sees_only_its_own_domain(meshes: dict[str, Mesh], admin: Client) -> None:
    alice, bob = meshes["alice"], meshes["bob"]
    await call(bob, "domaindata/create", {"domaindata_id": "bob-secret", "type": "table", "relative_uri": "b.csv",
                                          "columns": COLUMNS})
    seen = await call(alice, "domaindata/query", {"domaindata_id": "bob-secret"})
    assert seen["status"]["code"] == 12201 and "domain alice" in seen["status"]["message"]
    assert (await call(alice, "domaindata/delete", {"domaindata_id": "bob-secret"}))["status"]["code"] != 0
    assert (await call(alice, "domaindata/update", {"domaindata_id": "bob-secret", "name": "x"}))["status"]["code"]
    await admin.get(DOMAINDATAS, "bob-secret", "bob")  # untouched
    await call(bob, "domaindatasource/create", {"datasource_id": "bob-db", "type": "localfs",
                                                "info": {"localfs": {"path": "p"}}})
    assert (await call(alice, "domaindatasource/query", {"datasource_id": "bob-db"}))["status"]["code"] == 12302


async def test_malformed_bodies_and_health(meshes: dict[str, Mesh]) -> None:
    url = meshes["alice"].url
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/v1/datamesh/domaindata/query", data=b"{nope") as resp:
            assert resp.status == 400 and (await resp.json())["status"]["code"] == 12100
        async with http.post(f"{url}/api/v1/datamesh/domaindata/query", json=[1]) as resp:
            assert resp.status == 400
        async with http.get(f"{url}/healthZ") as resp:
            assert resp.status == 200 and (await resp.json())["status"]["code"] == 0
        async with http.post(f"{url}/api/v1/datamesh/domaindata/list", json={}) as resp:
            assert resp.status == 404


async def test_datamesh_with_the_domains_own_identity(meshes: dict[str, Mesh], admin: Client,
                                                      master: RunningServer, tmp_path: Path) -> None:
    """Run with alice's ServiceAccount token (what a registered lite holds): its own namespace works,
    bob's is refused by RBAC even when asked directly."""
    path = resource_path(kinds.SERVICEACCOUNTS, "alice", "alice", "token")
    issued = await admin.request("POST", path, body={"apiVersion": "authentication.k8s.io/v1",
                                                     "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})
    token = issued["status"]["token"]
    async with Client(master.url, ssl_context=master.ssl_context(), token=token) as lite_client:
        server = DataMeshServer(lite_client, "alice", tmp_path / "alice-sa", DataMeshSettings(), None)
        await server.start()
        try:
            mesh = Mesh("alice", server, tmp_path / "alice-sa", "")
            created = await call(mesh, "domaindata/create", {"domaindata_id": "sa-table", "type": "table",
                                                             "relative_uri": "s.csv", "columns": COLUMNS})
            assert created["status"]["code"] == 0, created
            assert (await admin.get(DOMAINDATAS, "sa-table", "alice"))["spec"]["author"] == "alice"
            with pytest.raises(errors.Forbidden):
                await lite_client.list(DOMAINDATAS, namespace="bob")
        finally:
            await server.close()
