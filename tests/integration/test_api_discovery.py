"""Version, health, discovery (aggregated v2 and legacy), OpenAPI v3, and the CRD life cycle.

Aspects: /version reports minor "32" (the kubectl dispatcher picks its binary from it); health
endpoints answer without credentials; aggregated discovery carries the exact content type kubectl
needs; legacy /api, /apis, /api/v1 and per-group documents; Kuscia resources with their short
names, verbs, categories, singular names and subresources; a CRD created at run time is served at
once (discovery, OpenAPI, its own endpoints) with Established/NamesAccepted conditions; every
Kuscia CRD is installed when the master starts; the client's preferred resources from aggregated
discovery equal the legacy walk's.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from atoll.api.crd import kuscia_crds
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.client.discovery import AGGREGATED_ACCEPT, Discovery
from tests.integration.kube_http import Api, assert_status

AGG_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)
AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUSCIA = "kuscia.secretflow"

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers


def _resources(doc: dict[str, Any], group: str, version: str) -> dict[str, dict[str, Any]]:
    for item in doc["items"]:
        if item["metadata"]["name"] == group:
            for v in item["versions"]:
                if v["version"] == version:
                    return {r["resource"]: r for r in v["resources"]}
    raise AssertionError(f"{group}/{version} not in aggregated discovery")


async def test_version(api: Api) -> None:
    reply = await api.get("/version", params={"timeout": "5s"})
    assert reply.status == 200
    info = reply.json
    assert info["major"] == "1" and info["minor"] == "32"
    assert info["gitVersion"].startswith("v1.32.")
    for key in ("gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"):
        assert isinstance(info[key], str) and info[key]


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
async def test_health_endpoints_need_no_credentials(api_server: Any, path: str) -> None:
    async with Api(api_server, token=None) as anonymous:
        reply = await anonymous.get(path)
    assert reply.status == 200
    assert reply.raw == b"ok"
    async with Api(api_server, token=None) as anonymous:
        assert (await anonymous.get("/version")).status == 200
        assert (await anonymous.get("/api")).status == 401


async def test_readyz_waits_for_the_master_bootstrap(api: Api, api_server: Any) -> None:
    # kubectl run right after /readyz must find the Kuscia CRDs: readiness includes the bootstrap
    node = api_server.node
    node.ready.clear()  # as while the master is still installing namespaces and CRDs
    try:
        assert (await api.get("/readyz")).status == 503
        assert (await api.get("/healthz")).status == 503
        assert (await api.get("/livez")).status == 200
    finally:
        node.ready.set()
    assert (await api.get("/readyz")).status == 200


async def test_root_lists_paths(api: Api) -> None:
    reply = await api.get("/")
    assert reply.status == 200
    assert {"/api", "/apis", "/version", "/openapi/v3"} <= set(reply.json["paths"])


async def test_aggregated_discovery_content_type_and_core(api: Api) -> None:
    reply = await api.get("/api", params={"timeout": "32s"}, headers={"Accept": AGG_ACCEPT})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == AGG_V2
    doc = json.loads(reply.raw)
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [item["metadata"]["name"] for item in doc["items"]] == [""]
    core = _resources(doc, "", "v1")
    assert {"namespaces", "configmaps", "pods", "secrets", "services", "events", "resourcequotas"} <= set(core)
    ns = core["namespaces"]
    assert ns["scope"] == "Cluster" and ns["singularResource"] == "namespace" and ns["shortNames"] == ["ns"]
    assert ns["responseKind"] == {"group": "", "version": "v1", "kind": "Namespace"}
    pods = core["pods"]
    assert pods["scope"] == "Namespaced" and pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert {"status", "log", "exec", "binding", "eviction"} <= set(subs)
    assert subs["log"]["verbs"] == ["get"]
    assert sorted(subs["exec"]["verbs"]) == ["create", "get"]
    assert sorted(subs["attach"]["verbs"]) == sorted(subs["portforward"]["verbs"]) == ["create", "get"]
    assert sorted(subs["ephemeralcontainers"]["verbs"]) == ["get", "patch", "update"]
    assert subs["ephemeralcontainers"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert sorted(subs["status"]["verbs"]) == ["get", "patch", "update"]
    assert core["configmaps"]["verbs"] == sorted(
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    )


async def test_aggregated_discovery_groups(api: Api) -> None:
    reply = await api.get("/apis", headers={"Accept": AGG_ACCEPT})
    assert reply.headers["Content-Type"] == AGG_V2
    doc = json.loads(reply.raw)
    groups = [item["metadata"]["name"] for item in doc["items"]]
    assert "" not in groups
    assert {KUSCIA, "apiextensions.k8s.io", "coordination.k8s.io", "rbac.authorization.k8s.io"} <= set(groups)
    kuscia = _resources(doc, KUSCIA, "v1alpha1")
    domains = kuscia["domains"]
    assert domains["scope"] == "Cluster"
    assert domains["singularResource"] == "domain"
    assert domains["responseKind"] == {"group": KUSCIA, "version": "v1alpha1", "kind": "Domain"}
    assert domains["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    assert domains["subresources"] == [
        {
            "subresource": "status",
            "verbs": ["get", "patch", "update"],
            "responseKind": {"group": KUSCIA, "version": "v1alpha1", "kind": "Domain"},
        }
    ]
    assert kuscia["clusterdomainroutes"]["shortNames"] == ["cdr"]
    assert kuscia["kusciajobs"]["shortNames"] == ["kj"] and kuscia["kusciajobs"]["scope"] == "Namespaced"
    assert kuscia["kusciatasks"]["shortNames"] == ["kt"]
    assert kuscia["domainroutes"]["shortNames"] == ["dr"]
    crds = _resources(doc, "apiextensions.k8s.io", "v1")["customresourcedefinitions"]
    assert crds["shortNames"] == ["crd", "crds"] and crds["categories"] == ["api-extensions"]


async def test_aggregated_v2beta1_for_older_clients(api: Api) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    reply = await api.get("/apis", headers={"Accept": accept})
    assert reply.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    assert json.loads(reply.raw)["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


async def test_legacy_discovery(api: Api) -> None:
    reply = await api.get("/api", headers={"Accept": "application/json"})
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["kind"] == "APIVersions" and reply.json["versions"] == ["v1"]
    assert reply.json["serverAddressByClientCIDRs"][0]["clientCIDR"] == "0.0.0.0/0"

    groups = (await api.get("/apis")).json
    assert groups["kind"] == "APIGroupList" and groups["apiVersion"] == "v1"
    by_name = {g["name"]: g for g in groups["groups"]}
    assert by_name[KUSCIA]["versions"] == [{"groupVersion": f"{KUSCIA}/v1alpha1", "version": "v1alpha1"}]
    assert by_name[KUSCIA]["preferredVersion"] == {"groupVersion": f"{KUSCIA}/v1alpha1", "version": "v1alpha1"}

    group = (await api.get(f"/apis/{KUSCIA}")).json
    assert group["kind"] == "APIGroup" and group["name"] == KUSCIA

    core = (await api.get("/api/v1")).json
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    core_names = {r["name"]: r for r in core["resources"]}
    assert core_names["namespaces"]["namespaced"] is False
    assert core_names["configmaps"]["namespaced"] is True and core_names["configmaps"]["shortNames"] == ["cm"]
    assert "pods/status" in core_names and "pods/log" in core_names and "namespaces/finalize" in core_names


async def test_legacy_kuscia_group_version(api: Api) -> None:
    doc = (await api.get(f"/apis/{KUSCIA}/v1alpha1")).json
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == f"{KUSCIA}/v1alpha1"
    resources = {r["name"]: r for r in doc["resources"]}
    assert resources["domains"] == {
        "name": "domains",
        "singularName": "domain",
        "namespaced": False,
        "kind": "Domain",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        **({"shortNames": resources["domains"]["shortNames"]} if "shortNames" in resources["domains"] else {}),
        **({"categories": resources["domains"]["categories"]} if "categories" in resources["domains"] else {}),
    }
    assert resources["domains/status"]["verbs"] == ["get", "patch", "update"]
    assert resources["domains/status"]["kind"] == "Domain"
    assert resources["clusterdomainroutes"]["shortNames"] == ["cdr"]
    assert resources["kusciajobs"]["namespaced"] is True and resources["kusciajobs"]["singularName"] == "kusciajob"
    assert resources["appimages"]["shortNames"] == ["aimg"]


async def test_unknown_group_and_version_are_not_found(api: Api) -> None:
    msg = "the server could not find the requested resource"
    assert_status(await api.get("/apis/nosuch.example.com"), 404, "NotFound", msg)
    assert_status(await api.get("/apis/nosuch.example.com/v1"), 404, "NotFound", msg)
    assert_status(await api.get(f"/apis/{KUSCIA}/v9"), 404, "NotFound", msg)
    assert_status(await api.get("/api/v2"), 404, "NotFound", msg)
    assert_status(await api.get("/openapi/v3/apis/nosuch.example.com/v1"), 404, "NotFound", msg)


async def test_all_kuscia_crds_installed_and_served(api: Api) -> None:
    expected = kuscia_crds()
    assert len(expected) >= 15
    listing = (await api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")).json
    installed = {item["metadata"]["name"]: item for item in listing["items"]}
    agg = json.loads((await api.get("/apis", headers={"Accept": AGG_ACCEPT})).raw)
    served = _resources(agg, KUSCIA, "v1alpha1")
    kinds = set()
    for crd in expected:
        name = crd["metadata"]["name"]
        assert name in installed, name
        conditions = {c["type"]: c["status"] for c in installed[name]["status"]["conditions"]}
        assert conditions == {"NamesAccepted": "True", "Established": "True"}
        names = crd["spec"]["names"]
        assert served[names["plural"]]["responseKind"]["kind"] == names["kind"]
        assert served[names["plural"]]["scope"] == crd["spec"]["scope"]
        assert served[names["plural"]].get("shortNames", []) == names.get("shortNames", [])
        kinds.add(names["kind"])
        reply = await api.get(f"/apis/{KUSCIA}/v1alpha1/{names['plural']}")
        assert reply.status == 200, (name, reply)
        assert reply.json["kind"] == names.get("listKind", names["kind"] + "List")
    assert {
        "Domain",
        "DomainRoute",
        "ClusterDomainRoute",
        "Gateway",
        "KusciaJob",
        "KusciaTask",
        "TaskResourceGroup",
        "TaskResource",
        "AppImage",
        "DomainData",
        "DomainDataSource",
        "DomainDataGrant",
        "KusciaDeployment",
        "InteropConfig",
    } <= kinds


async def test_openapi_v3_index_and_documents(api: Api) -> None:
    index = (await api.get("/openapi/v3")).json
    assert {"api/v1", f"apis/{KUSCIA}/v1alpha1", "apis/apiextensions.k8s.io/v1"} <= set(index["paths"])
    url = index["paths"][f"apis/{KUSCIA}/v1alpha1"]["serverRelativeURL"]
    assert url.startswith(f"/openapi/v3/apis/{KUSCIA}/v1alpha1?hash=")
    doc = (await api.get(url + "&timeout=32s")).json
    patch = doc["paths"][f"/apis/{KUSCIA}/v1alpha1/domains/{{name}}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": KUSCIA, "version": "v1alpha1", "kind": "Domain"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation"
    ).items()
    schema = next(
        s
        for s in doc["components"]["schemas"].values()
        if {"group": KUSCIA, "version": "v1alpha1", "kind": "Domain"} in s["x-kubernetes-group-version-kind"]
    )
    assert schema["type"] == "object" and schema["description"]
    assert "role" in schema["properties"]["spec"]["properties"]
    core = (await api.get(index["paths"]["api/v1"]["serverRelativeURL"])).json
    ns_patch = core["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert ns_patch["x-kubernetes-group-version-kind"]["kind"] == "Namespace"


async def test_openapi_v2_protobuf_for_older_kubectl(api: Api) -> None:
    # kubectl <= 1.28 downloads this (protobuf) before every apply and fails on a 404 (the document's
    # content is tested with real kubectl in tests/e2e/test_openapi_v2.py)
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    reply = await api.get("/openapi/v2", headers={"Accept": accept})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert reply.raw.startswith(b"\x0a\x032.0\x12")  # Document.swagger = "2.0", then Document.info
    doc = (await api.get("/openapi/v2", headers={"Accept": "application/json"})).json
    assert doc["swagger"] == "2.0"


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
            "shortNames": ["wd"],
            "categories": ["all"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}},
                            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}


async def test_new_crd_is_served_at_once(api: Api) -> None:
    index_before = (await api.get("/openapi/v3")).json
    assert "apis/example.com/v1" not in index_before["paths"]
    assert_status(await api.get("/apis/example.com/v1/namespaces/default/widgets"), 404)

    reply = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
    assert reply.status == 201, reply
    status = reply.json["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True" and conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert conditions["Established"]["status"] == "True"
    assert conditions["Established"]["reason"] == "InitialNamesAccepted"
    assert status["acceptedNames"]["kind"] == "Widget" and status["acceptedNames"]["plural"] == "widgets"
    assert status["storedVersions"] == ["v1"]

    # discovery, immediately
    agg = json.loads((await api.get("/apis", headers={"Accept": AGG_ACCEPT})).raw)
    widgets = _resources(agg, "example.com", "v1")["widgets"]
    assert widgets["shortNames"] == ["wd"] and widgets["categories"] == ["all"]
    assert widgets["singularResource"] == "widget" and widgets["scope"] == "Namespaced"
    assert [s["subresource"] for s in widgets["subresources"]] == ["status"]
    legacy = (await api.get("/apis/example.com/v1")).json
    assert {r["name"] for r in legacy["resources"]} == {"widgets", "widgets/status"}
    assert "example.com" in {g["name"] for g in (await api.get("/apis")).json["groups"]}

    # OpenAPI, immediately
    index = (await api.get("/openapi/v3")).json
    assert "apis/example.com/v1" in index["paths"]
    doc = (await api.get(index["paths"]["apis/example.com/v1"]["serverRelativeURL"])).json
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}" in doc["paths"]

    # and the resource itself, with its schema
    path = "/apis/example.com/v1/namespaces/default/widgets"
    reply = await api.post(
        path, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    )
    assert reply.status == 201, reply
    assert_status(await api.post(path, {"metadata": {"name": "w2"}, "spec": {"size": 0}}), 422, "Invalid")
    table = (await api.get(path, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})).json
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size"]
    assert table["rows"][0]["cells"] == ["w1", 3]

    # deleting the CRD stops serving its resources
    reply = await api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    assert reply.status == 200, reply
    assert_status(await api.get(path), 404, "NotFound")
    agg = json.loads((await api.get("/apis", headers={"Accept": AGG_ACCEPT})).raw)
    assert "example.com" not in [item["metadata"]["name"] for item in agg["items"]]
    assert "apis/example.com/v1" not in (await api.get("/openapi/v3")).json["paths"]


async def test_invalid_crd_is_rejected(api: Api) -> None:
    bad = json.loads(json.dumps(WIDGET_CRD))
    bad["metadata"]["name"] = "wrong.example.com"
    reply = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
    assert_status(reply, 422, "Invalid")
    builtin_clash = json.loads(json.dumps(WIDGET_CRD))
    builtin_clash["metadata"]["name"] = "pods.example.com"
    builtin_clash["spec"]["names"].update(plural="pods", singular="pod", kind="Pod", listKind="PodList")
    # another group may reuse a built-in plural; the core resource is unaffected
    reply = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", builtin_clash)
    assert reply.status == 201, reply
    assert (await api.get("/apis/example.com/v1/namespaces/default/pods")).json["kind"] == "PodList"
    assert (await api.get("/api/v1/namespaces/default/pods")).json["kind"] == "PodList"
    agg = json.loads((await api.get("/api", headers={"Accept": AGG_ACCEPT})).raw)
    assert _resources(agg, "", "v1")["pods"]["responseKind"]["group"] == ""


async def test_discovery_over_anonymous_connection_is_refused(api_server: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(api_server.url + "/apis", ssl=api_server.ssl_context()) as resp:
            assert resp.status == 401
            body = await resp.json()
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_client_preferred_resources_from_aggregated_discovery(client: Client) -> None:
    """The client's ``preferred_resources`` (garbage collector, namespace controller) reads
    aggregated discovery in two requests, with the same result as the legacy walk; a server that
    answers the legacy documents gets the legacy walk."""
    fetched: list[str] = []

    async def fetch(path: str) -> dict[str, Any]:
        fetched.append(path)
        return await client.get_path(path)

    async def aggregated(path: str) -> dict[str, Any]:
        fetched.append(f"aggregated {path}")
        result: dict[str, Any] = await client.request("GET", path, headers={"Accept": AGGREGATED_ACCEPT})
        return result

    async def legacy_only(path: str) -> dict[str, Any]:
        fetched.append(f"aggregated {path}")
        return await client.get_path(path)

    def key(rd: ResourceDef) -> tuple[str, str, str]:
        return rd.group, rd.version, rd.plural

    legacy, legacy_failed = await Discovery(fetch).preferred_resources()
    walked = len(fetched)
    assert walked > 2 and not legacy_failed
    fetched.clear()
    found, failed = await Discovery(fetch, aggregated).preferred_resources()
    assert fetched == ["aggregated /api", "aggregated /apis"] and not failed
    assert sorted(found, key=key) == sorted(legacy, key=key)
    assert any(rd.plural == "pods" and rd.subresources and rd.namespaced for rd in found)
    fetched.clear()
    again, _ = await Discovery(fetch, legacy_only).preferred_resources()
    assert fetched[0] == "aggregated /api" and len(fetched) == walked + 1
    assert sorted(again, key=key) == sorted(legacy, key=key)
