"""CRUD semantics of the API server over HTTPS, as kubectl and the Python client see them on the wire.

Aspects: create (generateName, dryRun, apiVersion/kind from the URL, namespace checks), get, list,
update with optimistic concurrency, the three patch types, delete with finalizers, preconditions
and propagation policies, deletecollection, scope, server-managed metadata (uid, creationTimestamp,
generation), the status subresource, Namespace defaults and termination, label and field
selectors, pagination with continue tokens, resourceVersion semantics.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.kube_http import DOMAINS, Api, assert_status, configmap, create, domain, names, pod

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
NAMESPACES = "/api/v1/namespaces"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers


# ---- create ----------------------------------------------------------------------------------------


async def test_create_sets_server_fields_and_get_returns_it(api: Api) -> None:
    created = await create(api, DOMAINS, domain("alice"))
    md = created["metadata"]
    assert UID.match(md["uid"]), md
    assert RFC3339.match(md["creationTimestamp"]), md
    assert md["generation"] == 1
    assert int(md["resourceVersion"]) > 0
    assert "namespace" not in md
    assert created["spec"]["resourceQuota"]["podMaxCount"] == 100
    got = await api.get(f"{DOMAINS}/alice")
    assert got.status == 200
    assert got.json["metadata"] == md
    assert got.json["apiVersion"] == "kuscia.secretflow/v1alpha1" and got.json["kind"] == "Domain"


async def test_create_ignores_client_supplied_server_fields(api: Api) -> None:
    body = configmap("c1")
    body["metadata"].update(uid="not-a-uid", creationTimestamp="2001-01-01T00:00:00Z", generation=7)
    created = await create(api, CMS, body)
    assert created["metadata"]["uid"] != "not-a-uid" and UID.match(created["metadata"]["uid"])
    assert created["metadata"]["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert "generation" not in created["metadata"], "ConfigMaps have no generation (as upstream)"
    deployment = {"metadata": {"name": "d1", "generation": 7}, "spec": {
        "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
            "containers": [{"name": "c", "image": "i"}]}}}}
    created = await create(api, "/apis/apps/v1/namespaces/default/deployments", deployment)
    assert created["metadata"]["generation"] == 1


async def test_create_with_resource_version_is_rejected(api: Api) -> None:
    body = configmap("c1")
    body["metadata"]["resourceVersion"] = "5"
    assert_status(await api.post(CMS, body), 400, "BadRequest")


async def test_duplicate_create_is_already_exists(api: Api) -> None:
    await create(api, DOMAINS, domain("carol"))
    status = assert_status(
        await api.post(DOMAINS, domain("carol")),
        409,
        "AlreadyExists",
        'domains.kuscia.secretflow "carol" already exists',
    )
    assert status["details"] == {"name": "carol", "group": "kuscia.secretflow", "kind": "domains"}


async def test_generate_name(api: Api) -> None:
    body = configmap("")
    body["metadata"] = {"generateName": "gen-"}
    first = await create(api, CMS, body)
    second = await create(api, CMS, body)
    for obj in (first, second):
        assert re.match(r"^gen-[a-z0-9]{5}$", obj["metadata"]["name"]), obj["metadata"]
        assert obj["metadata"]["generateName"] == "gen-"
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert (await api.get(f"{CMS}/{first['metadata']['name']}")).status == 200


async def test_create_without_name_is_invalid(api: Api) -> None:
    status = assert_status(await api.post(CMS, {"data": {"a": "b"}}), 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "metadata.name"


async def test_dry_run_create_does_not_persist(api: Api) -> None:
    before = names((await api.get(CMS)).json)
    reply = await api.post(CMS, configmap("ghost"), params={"dryRun": "All"})
    assert reply.status == 201, reply
    assert reply.json["metadata"]["name"] == "ghost"
    assert "resourceVersion" not in reply.json["metadata"]  # never stored, so no revision
    assert_status(await api.get(f"{CMS}/ghost"), 404, "NotFound", 'configmaps "ghost" not found')
    assert names((await api.get(CMS)).json) == before  # nothing was written
    # and the name is still free
    await create(api, CMS, configmap("ghost"))


async def test_api_version_and_kind_come_from_the_url(api: Api) -> None:
    created = await create(api, CMS, {"metadata": {"name": "bare"}, "data": {"x": "y"}})
    assert created["apiVersion"] == "v1" and created["kind"] == "ConfigMap"
    got = (await api.get(f"{CMS}/bare")).json
    assert got["apiVersion"] == "v1" and got["kind"] == "ConfigMap"
    ns = await create(api, NAMESPACES, {"metadata": {"name": "bare-ns"}})
    assert ns["kind"] == "Namespace" and ns["apiVersion"] == "v1"


async def test_kind_mismatch_is_bad_request(api: Api) -> None:
    body = configmap("c1")
    body["kind"] = "Secret"
    assert_status(await api.post(CMS, body), 400, "BadRequest")


async def test_namespace_mismatch_is_bad_request(api: Api) -> None:
    body = configmap("c1")
    body["metadata"]["namespace"] = "kube-system"
    status = assert_status(await api.post(CMS, body), 400, "BadRequest")
    assert "namespace" in status["message"]
    # a matching namespace in the body is fine
    body["metadata"]["namespace"] = "default"
    created = await create(api, CMS, body)
    assert created["metadata"]["namespace"] == "default"


async def test_create_in_missing_namespace_is_not_found(api: Api) -> None:
    status = assert_status(
        await api.post("/api/v1/namespaces/nowhere/configmaps", configmap("c1")),
        404,
        "NotFound",
        'namespaces "nowhere" not found',
    )
    assert status["details"]["name"] == "nowhere"


async def test_namespace_is_filled_from_the_url(api: Api) -> None:
    created = await create(api, CMS, configmap("c2"))
    assert created["metadata"]["namespace"] == "default"


# ---- get / list / scope ---------------------------------------------------------------------------


async def test_get_missing_is_not_found_with_details(api: Api) -> None:
    status = assert_status(
        await api.get(f"{DOMAINS}/nosuch"), 404, "NotFound", 'domains.kuscia.secretflow "nosuch" not found'
    )
    assert status["details"] == {"name": "nosuch", "group": "kuscia.secretflow", "kind": "domains"}
    assert_status(await api.get(f"{PODS}/nosuch"), 404, "NotFound", 'pods "nosuch" not found')


async def test_list_shape(api: Api) -> None:
    for name in ("b", "a", "c"):
        await create(api, DOMAINS, domain(name))
    reply = await api.get(DOMAINS)
    assert reply.status == 200
    body = reply.json
    assert body["kind"] == "DomainList" and body["apiVersion"] == "kuscia.secretflow/v1alpha1"
    assert names(body) == ["a", "b", "c"]
    assert all(
        item["kind"] == "Domain" and item["apiVersion"] == "kuscia.secretflow/v1alpha1" for item in body["items"]
    )
    rv = int(body["metadata"]["resourceVersion"])
    assert rv >= max(int(i["metadata"]["resourceVersion"]) for i in body["items"])
    core = (await api.get(CMS)).json
    assert core["kind"] == "ConfigMapList" and core["apiVersion"] == "v1"


async def test_namespaced_list_across_namespaces_and_scope(api: Api) -> None:
    await create(api, CMS, configmap("here"))
    await create(api, "/api/v1/namespaces/kube-system/configmaps", configmap("there"))
    assert names((await api.get(CMS)).json) == ["here"]
    everywhere = (await api.get("/api/v1/configmaps")).json
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]} >= {
        ("default", "here"),
        ("kube-system", "there"),
    }
    # a namespaced object's name without a namespace is not a valid path
    assert_status(await api.get("/api/v1/configmaps/here"), 404, "NotFound")
    # a cluster-scoped resource has no namespaced form
    await create(api, DOMAINS, domain("alice"))
    assert_status(await api.get("/apis/kuscia.secretflow/v1alpha1/namespaces/default/domains/alice"), 404)
    assert (await api.get(f"{DOMAINS}/alice")).status == 200


# ---- update -----------------------------------------------------------------------------------------


async def test_update_with_stale_resource_version_conflicts(api: Api) -> None:
    created = await create(api, DOMAINS, domain("dave"))
    first = dict(created, spec={**created["spec"], "role": ""})
    reply = await api.put(f"{DOMAINS}/dave", first)
    assert reply.status == 200, reply
    assert int(reply.json["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, spec={**created["spec"], "cert": "other"})
    status = assert_status(
        await api.put(f"{DOMAINS}/dave", stale),
        409,
        "Conflict",
        'Operation cannot be fulfilled on domains.kuscia.secretflow "dave": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )
    assert status["details"]["name"] == "dave" and status["details"]["kind"] == "domains"
    assert (await api.get(f"{DOMAINS}/dave")).json["spec"]["cert"] == "base64<certificate>"


async def test_unconditional_update(api: Api) -> None:
    created = await create(api, CMS, configmap("u", {"a": "1"}))
    body = configmap("u", {"a": "2"})  # no resourceVersion: last write wins
    reply = await api.put(f"{CMS}/u", body)
    assert reply.status == 200, reply
    assert reply.json["data"] == {"a": "2"}
    assert reply.json["metadata"]["uid"] == created["metadata"]["uid"]
    assert reply.json["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert int(reply.json["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_update_missing_object_is_not_found(api: Api) -> None:
    assert_status(await api.put(f"{CMS}/absent", configmap("absent")), 404, "NotFound", 'configmaps "absent" not found')


async def test_update_name_mismatch_is_bad_request(api: Api) -> None:
    await create(api, CMS, configmap("x"))
    assert_status(await api.put(f"{CMS}/x", configmap("y")), 400, "BadRequest")


async def test_update_keeps_uid_and_creation_timestamp(api: Api) -> None:
    created = await create(api, CMS, configmap("keep"))
    body = configmap("keep", {"z": "1"})
    body["metadata"].update(uid="11111111-1111-1111-1111-111111111111", creationTimestamp="2001-01-01T00:00:00Z")
    updated = (await api.put(f"{CMS}/keep", body)).json
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


async def test_noop_update_does_not_bump_resource_version(api: Api) -> None:
    created = await create(api, CMS, configmap("same", {"a": "1"}))
    again = (await api.put(f"{CMS}/same", configmap("same", {"a": "1"}))).json
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# ---- generation ---------------------------------------------------------------------------------------


async def test_generation_bumps_on_spec_change_only(api: Api) -> None:
    created = await create(api, DOMAINS, domain("gen"))
    assert created["metadata"]["generation"] == 1
    labelled = (await api.patch(f"{DOMAINS}/gen", {"metadata": {"labels": {"a": "b"}}})).json
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    status = (await api.patch(f"{DOMAINS}/gen/status", {"status": {"nodeStatuses": []}})).json
    assert status["metadata"]["generation"] == 1
    changed = (await api.patch(f"{DOMAINS}/gen", {"spec": {"resourceQuota": {"podMaxCount": 5}}})).json
    assert changed["metadata"]["generation"] == 2
    put = dict(changed, spec={**changed["spec"], "role": ""})
    assert (await api.put(f"{DOMAINS}/gen", put)).json["metadata"]["generation"] == 3


# ---- patch ---------------------------------------------------------------------------------------------


async def test_json_merge_patch(api: Api) -> None:
    await create(api, CMS, configmap("m", {"a": "1", "b": "2"}, app="x"))
    reply = await api.patch(f"{CMS}/m", {"data": {"a": None, "c": "3"}, "metadata": {"labels": {"tier": "web"}}})
    assert reply.status == 200, reply
    assert reply.json["data"] == {"b": "2", "c": "3"}
    assert reply.json["metadata"]["labels"] == {"app": "x", "tier": "web"}
    assert (await api.get(f"{CMS}/m")).json["data"] == {"b": "2", "c": "3"}


async def test_merge_patch_of_a_custom_resource_and_strategic_as_merge(api: Api) -> None:
    await create(api, DOMAINS, domain("alice"))
    reply = await api.patch(f"{DOMAINS}/alice", {"spec": {"resourceQuota": {"podMaxCount": 200}}})
    assert reply.status == 200, reply
    assert reply.json["spec"] == {
        "role": "partner",
        "cert": "base64<certificate>",
        "resourceQuota": {"podMaxCount": 200},
    }
    # kubectl's default patch type: the server treats it as a merge patch for custom resources
    reply = await api.patch(f"{DOMAINS}/alice", {"spec": {"role": ""}}, "strategic")
    assert reply.status in (200, 415), reply
    if reply.status == 200:
        assert reply.json["spec"]["role"] == "" and reply.json["spec"]["resourceQuota"]["podMaxCount"] == 200


async def test_patch_with_stale_resource_version_conflicts(api: Api) -> None:
    created = await create(api, CMS, configmap("p"))
    await api.patch(f"{CMS}/p", {"data": {"k": "w"}})
    reply = await api.patch(
        f"{CMS}/p", {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"k": "stale"}}
    )
    assert_status(reply, 409, "Conflict")
    assert (await api.get(f"{CMS}/p")).json["data"] == {"k": "w"}


async def test_json_patch(api: Api) -> None:
    await create(api, CMS, configmap("j", {"a": "1"}))
    ops = [
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "test", "path": "/data/b", "value": "2"},
        {"op": "copy", "from": "/data/a", "path": "/data/c"},
        {"op": "move", "from": "/data/c", "path": "/data/d"},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
    ]
    reply = await api.patch(f"{CMS}/j", ops, "json")
    assert reply.status == 200, reply
    assert reply.json["data"] == {"a": "10", "b": "2", "d": "10"}
    assert reply.json["metadata"]["labels"] == {"x": "y"}
    reply = await api.patch(f"{CMS}/j", [{"op": "remove", "path": "/data/d"}], "json")
    assert reply.json["data"] == {"a": "10", "b": "2"}


async def test_json_patch_failing_test_op_is_unprocessable(api: Api) -> None:
    created = await create(api, CMS, configmap("t", {"a": "1"}))
    ops = [{"op": "replace", "path": "/data/a", "value": "2"}, {"op": "test", "path": "/data/a", "value": "nope"}]
    status = assert_status(await api.patch(f"{CMS}/t", ops, "json"), 422)
    assert status["reason"] == "Invalid" or "test" in status["message"].lower(), status
    got = (await api.get(f"{CMS}/t")).json
    assert got["data"] == {"a": "1"}  # nothing applied
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_json_patch_removing_a_missing_path_fails(api: Api) -> None:
    await create(api, CMS, configmap("r", {"a": "1"}))
    reply = await api.patch(f"{CMS}/r", [{"op": "remove", "path": "/data/zzz"}], "json")
    assert reply.status in (400, 422), reply
    assert reply.json["kind"] == "Status"


async def test_json_patch_body_must_be_a_list(api: Api) -> None:
    await create(api, CMS, configmap("l"))
    assert_status(await api.patch(f"{CMS}/l", {"op": "add"}, "json"), 400, "BadRequest")


async def test_strategic_merge_patch_merges_pod_containers_by_name(api: Api) -> None:
    created = await create(
        api,
        PODS,
        pod(
            "web",
            {"name": "main", "image": "busybox:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "envoy:1"},
        ),
    )
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "main"}, {"name": "side"}],
            "containers": [{"name": "main", "image": "busybox:2"}],
        }
    }
    reply = await api.patch(f"{PODS}/web", patch, "strategic")
    assert reply.status == 200, reply
    containers = reply.json["spec"]["containers"]
    assert [c["name"] for c in containers] == ["main", "side"]
    assert containers[0]["image"] == "busybox:2"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]  # other fields of the element kept
    assert containers[1]["image"] == "envoy:1"
    # a plain merge patch of the same list replaces it: main loses its env and side goes, which a
    # pod's spec may not do (only images change after create)
    merged = await api.patch(f"{PODS}/web", {"spec": {"containers": [{"name": "main", "image": "busybox:3"}]}})
    assert_status(merged, 422, "Invalid")
    assert "spec.containers" in merged.json["message"]


async def test_strategic_merge_patch_of_pod_template_containers_merges_by_name(api: Api) -> None:
    template = {"metadata": {"labels": {"app": "tpl"}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1", "env": [{"name": "A", "value": "1"}]},
                                        {"name": "side", "image": "envoy:1"}]}}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tpl"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "tpl"}}, "template": template}}
    await create(api, DEPLOYS, body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}}}}
    reply = await api.patch(f"{DEPLOYS}/tpl", patch, "strategic")
    assert reply.status == 200, reply
    containers = reply.json["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("main", "busybox:2"), ("side", "envoy:1")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]
    merged = await api.patch(f"{DEPLOYS}/tpl", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "busybox:3"}]}}}})
    assert [c["name"] for c in merged.json["spec"]["template"]["spec"]["containers"]] == ["main"]


async def test_strategic_merge_patch_delete_directive(api: Api) -> None:
    template = {"metadata": {"labels": {"app": "two"}},
                "spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}
    await create(api, DEPLOYS, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "two"},
                                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "two"}},
                                         "template": template}})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}}}
    reply = await api.patch(f"{DEPLOYS}/two", patch, "strategic")
    assert reply.status == 200, reply
    assert [c["name"] for c in reply.json["spec"]["template"]["spec"]["containers"]] == ["a"]


async def test_patch_unsupported_content_type(api: Api) -> None:
    await create(api, CMS, configmap("ct"))
    reply = await api.call("PATCH", f"{CMS}/ct", {"data": {}}, ctype="text/plain")
    assert_status(reply, 415, "UnsupportedMediaType")


async def test_patch_missing_object_is_not_found(api: Api) -> None:
    assert_status(await api.patch(f"{CMS}/absent", {"data": {"a": "b"}}), 404, "NotFound")


async def test_server_side_apply_creates_then_merges(api: Api) -> None:
    body = domain("ssa")
    reply = await api.patch(f"{DOMAINS}/ssa", body, "apply", params={"fieldManager": "kubectl", "force": "false"})
    assert reply.status == 201, reply
    body["spec"]["resourceQuota"]["podMaxCount"] = 7
    reply = await api.patch(f"{DOMAINS}/ssa", body, "apply", params={"fieldManager": "kubectl"})
    assert reply.status == 200, reply
    assert reply.json["spec"]["resourceQuota"]["podMaxCount"] == 7


# ---- delete -------------------------------------------------------------------------------------------


async def test_delete_returns_200_and_removes(api: Api) -> None:
    created = await create(api, DOMAINS, domain("bye"))
    reply = await api.delete(f"{DOMAINS}/bye", {"propagationPolicy": "Background"})
    assert reply.status == 200, reply
    assert reply.json["metadata"]["uid"] == created["metadata"]["uid"]
    assert_status(await api.get(f"{DOMAINS}/bye"), 404, "NotFound", 'domains.kuscia.secretflow "bye" not found')
    assert_status(await api.delete(f"{DOMAINS}/bye"), 404, "NotFound")
    # a built-in answering a Status
    await create(api, CMS, configmap("bye"))
    reply = await api.delete(f"{CMS}/bye")
    assert reply.status == 200, reply
    assert reply.json["kind"] in ("Status", "ConfigMap")
    if reply.json["kind"] == "Status":
        assert reply.json["status"] == "Success" and reply.json["details"]["name"] == "bye"


async def test_dry_run_delete_keeps_the_object(api: Api) -> None:
    await create(api, DOMAINS, domain("keep"))
    reply = await api.delete(f"{DOMAINS}/keep", {"propagationPolicy": "Background", "dryRun": ["All"]})
    assert reply.status == 200, reply
    assert (await api.get(f"{DOMAINS}/keep")).status == 200
    reply = await api.delete(f"{DOMAINS}/keep", params={"dryRun": "All"})
    assert reply.status == 200
    assert (await api.get(f"{DOMAINS}/keep")).status == 200


async def test_delete_with_finalizers_then_remove_last_finalizer(api: Api) -> None:
    body = domain("bob")
    body["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    created = await create(api, DOMAINS, body)
    stream = await api.watch(
        DOMAINS, {"resourceVersion": created["metadata"]["resourceVersion"], "fieldSelector": "metadata.name=bob"}
    )
    try:
        reply = await api.delete(f"{DOMAINS}/bob", {"propagationPolicy": "Background"})
        assert reply.status in (200, 202), reply
        marked = reply.json
        assert RFC3339.match(marked["metadata"]["deletionTimestamp"])
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
        got = (await api.get(f"{DOMAINS}/bob")).json
        assert got["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
        ev = await stream.next()
        assert ev is not None and ev["type"] == "MODIFIED" and ev["object"]["metadata"].get("deletionTimestamp")
        # deleting again changes nothing
        again = await api.delete(f"{DOMAINS}/bob")
        assert again.status in (200, 202)
        assert again.json["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
        # no new finalizers once deletion started
        reply = await api.patch(
            f"{DOMAINS}/bob", {"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/c"]}}
        )
        assert_status(reply, 422, "Invalid")
        # removing one finalizer keeps it
        reply = await api.patch(f"{DOMAINS}/bob", [{"op": "remove", "path": "/metadata/finalizers/0"}], "json")
        assert reply.status == 200, reply
        assert reply.json["metadata"]["finalizers"] == ["example.com/b"]
        assert (await api.get(f"{DOMAINS}/bob")).status == 200
        ev = await stream.next()
        assert ev is not None and ev["type"] == "MODIFIED"
        # removing the last one deletes it
        reply = await api.patch(f"{DOMAINS}/bob", {"metadata": {"finalizers": None}})
        assert reply.status == 200, reply
        assert_status(await api.get(f"{DOMAINS}/bob"), 404, "NotFound")
        ev = await stream.next()
        assert ev is not None and ev["type"] == "DELETED", ev
        assert ev["object"]["metadata"]["name"] == "bob"
        assert int(ev["object"]["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    finally:
        await stream.close()


async def test_delete_precondition_uid_mismatch_conflicts(api: Api) -> None:
    created = await create(api, DOMAINS, domain("pre"))
    status = assert_status(await api.delete(f"{DOMAINS}/pre", {"preconditions": {"uid": "wrong-uid"}}), 409, "Conflict")
    assert "Precondition failed" in status["message"] and "wrong-uid" in status["message"]
    assert (await api.get(f"{DOMAINS}/pre")).status == 200
    stale_rv = {"preconditions": {"resourceVersion": "1"}}
    assert_status(await api.delete(f"{DOMAINS}/pre", stale_rv), 409, "Conflict")
    good = {
        "preconditions": {"uid": created["metadata"]["uid"], "resourceVersion": created["metadata"]["resourceVersion"]}
    }
    assert (await api.delete(f"{DOMAINS}/pre", good)).status == 200
    assert (await api.get(f"{DOMAINS}/pre")).status == 404


@pytest.mark.parametrize(("policy", "finalizer"), [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
async def test_propagation_policy_adds_finalizer(api: Api, policy: str, finalizer: str) -> None:
    await create(api, CMS, configmap("prop"))
    reply = await api.delete(f"{CMS}/prop", {"propagationPolicy": policy})
    assert reply.status in (200, 202), reply
    got = (await api.get(f"{CMS}/prop")).json
    assert got["metadata"]["finalizers"] == [finalizer]
    assert got["metadata"].get("deletionTimestamp")
    reply = await api.patch(f"{CMS}/prop", {"metadata": {"finalizers": []}})
    assert reply.status == 200
    assert (await api.get(f"{CMS}/prop")).status == 404


async def test_delete_collection_with_label_selector(api: Api) -> None:
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        await create(api, CMS, configmap(name, app=app))
    await create(api, "/api/v1/namespaces/kube-system/configmaps", configmap("d", app="x"))
    reply = await api.delete(CMS, params={"labelSelector": "app=x"})
    assert reply.status == 200, reply
    assert reply.json["kind"] == "ConfigMapList"
    assert sorted(names(reply.json)) == ["a", "b"]
    assert names((await api.get(CMS)).json) == ["c"]
    assert names(
        (await api.get("/api/v1/namespaces/kube-system/configmaps", params={"labelSelector": "app=x"})).json
    ) == ["d"]


async def test_delete_collection_of_custom_resources(api: Api) -> None:
    for name in ("d1", "d2", "d3"):
        await create(api, DOMAINS, domain(name, **({"tier": "a"} if name != "d3" else {})))
    reply = await api.delete(DOMAINS, params={"labelSelector": "tier=a"})
    assert reply.status == 200, reply
    assert names((await api.get(DOMAINS)).json) == ["d3"]


# ---- status subresource ---------------------------------------------------------------------------------


N2 = {"name": "n2", "status": "NotReady", "version": "v2"}


async def test_domain_status_subresource(api: Api) -> None:
    body = domain("st")
    body["status"] = {"nodeStatuses": [{"name": "ignored", "status": "Ready", "version": "v0"}]}
    created = await create(api, DOMAINS, body)
    assert "status" not in created or not created["status"]  # status is not set through the main resource
    status = {"nodeStatuses": [{"name": "n1", "status": "Ready", "version": "v1"}]}
    put_body = dict(created, status=status, spec={**created["spec"], "role": ""})
    reply = await api.put(f"{DOMAINS}/st/status", put_body)
    assert reply.status == 200, reply
    assert reply.json["status"] == status
    assert reply.json["spec"]["role"] == "partner"  # spec ignored on /status
    rv1 = int(reply.json["metadata"]["resourceVersion"])
    assert rv1 > int(created["metadata"]["resourceVersion"])
    # main PUT ignores status
    main = dict(reply.json, status={"nodeStatuses": []}, spec={**reply.json["spec"], "cert": "c2"})
    reply = await api.put(f"{DOMAINS}/st", main)
    assert reply.status == 200, reply
    assert reply.json["status"] == status and reply.json["spec"]["cert"] == "c2"
    # PATCH /status
    reply = await api.patch(f"{DOMAINS}/st/status", {"status": {"nodeStatuses": [N2]}, "spec": {"role": ""}})
    assert reply.status == 200, reply
    assert reply.json["status"]["nodeStatuses"] == [N2]
    assert reply.json["spec"]["role"] == "partner"
    got = await api.get(f"{DOMAINS}/st/status")
    assert got.status == 200 and got.json["status"]["nodeStatuses"] == [N2]
    # main PATCH ignores status
    reply = await api.patch(f"{DOMAINS}/st", {"status": {"nodeStatuses": []}, "metadata": {"labels": {"a": "b"}}})
    assert reply.json["status"]["nodeStatuses"] == [N2]
    assert reply.json["metadata"]["labels"] == {"a": "b"}


async def test_pod_status_subresource(api: Api) -> None:
    created = await create(api, PODS, pod("sp", node="node-1"))
    assert created["status"]["phase"] == "Pending"
    reply = await api.patch(
        f"{PODS}/sp/status", {"status": {"phase": "Running", "podIP": "10.0.0.5"}, "spec": {"nodeName": "elsewhere"}}
    )
    assert reply.status == 200, reply
    assert reply.json["status"]["phase"] == "Running" and reply.json["status"]["podIP"] == "10.0.0.5"
    assert reply.json["spec"]["nodeName"] == "node-1"
    assert "generation" not in reply.json["metadata"] and "generation" not in created["metadata"]  # as upstream
    main = dict(reply.json, status={"phase": "Failed"})
    main["metadata"] = dict(main["metadata"], labels={"x": "y"})
    reply = await api.put(f"{PODS}/sp", main)
    assert reply.status == 200, reply
    assert reply.json["status"]["phase"] == "Running"
    assert reply.json["metadata"]["labels"] == {"x": "y"}


async def test_status_of_a_resource_without_the_subresource_is_not_found(api: Api) -> None:
    await create(api, CMS, configmap("nostatus"))
    assert_status(await api.get(f"{CMS}/nostatus/status"), 404, "NotFound")


# ---- namespaces ----------------------------------------------------------------------------------------------


async def test_namespace_defaults(api: Api) -> None:
    ns = await create(api, NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alice"}})
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "alice"
    # the name label cannot be changed away
    reply = await api.patch(
        f"{NAMESPACES}/alice", {"metadata": {"labels": {"kubernetes.io/metadata.name": "x", "team": "a"}}}
    )
    assert reply.json["metadata"]["labels"] == {"kubernetes.io/metadata.name": "alice", "team": "a"}
    bootstrapped = names((await api.get(NAMESPACES)).json)
    for name in ("default", "kube-system", "kube-public", "kube-node-lease", "kuscia-system"):
        assert name in bootstrapped


async def test_namespace_name_must_be_a_dns_label(api: Api) -> None:
    status = assert_status(await api.post(NAMESPACES, {"metadata": {"name": "Bad.Name"}}), 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "metadata.name"


async def test_namespace_deletion_terminates_then_finalize_removes(api: Api) -> None:
    await create(api, NAMESPACES, {"metadata": {"name": "doomed"}})
    await create(api, "/api/v1/namespaces/doomed/configmaps", configmap("inside"))
    reply = await api.delete(f"{NAMESPACES}/doomed")
    assert reply.status in (200, 202), reply
    ns = (await api.get(f"{NAMESPACES}/doomed")).json
    assert ns["status"]["phase"] == "Terminating"
    assert ns["metadata"].get("deletionTimestamp")
    # creating in a terminating namespace is forbidden
    reply = await api.post("/api/v1/namespaces/doomed/configmaps", configmap("late"))
    assert_status(reply, 403, "Forbidden")
    assert "being terminated" in reply.json["message"]
    # the namespace controller's last step
    ns["spec"]["finalizers"] = []
    reply = await api.put(f"{NAMESPACES}/doomed/finalize", ns)
    assert reply.status == 200, reply
    assert_status(await api.get(f"{NAMESPACES}/doomed"), 404, "NotFound", 'namespaces "doomed" not found')


# ---- selectors ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def labelled(api: Api) -> Api:
    for name, labels in (
        ("a", {"env": "prod", "tier": "web"}),
        ("b", {"env": "dev", "tier": "db"}),
        ("c", {"env": "test"}),
        ("d", {}),
    ):
        await create(api, CMS, configmap(name, **labels))
    return api


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["a"]),
        ("env==prod", ["a"]),
        ("env!=prod", ["b", "c", "d"]),
        ("env in (prod,dev)", ["a", "b"]),
        ("env notin (prod,dev)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("env=dev,tier=db", ["b"]),
        ("env,!tier", ["c"]),
        ("env=nothing", []),
        ("", ["a", "b", "c", "d"]),
    ],
)
async def test_label_selectors(labelled: Api, selector: str, expected: list[str]) -> None:
    reply = await labelled.get(CMS, params={"labelSelector": selector})
    assert reply.status == 200, reply
    assert names(reply.json) == expected


async def test_invalid_label_selector_is_bad_request(labelled: Api) -> None:
    assert_status(await labelled.get(CMS, params={"labelSelector": "env in (prod"}), 400, "BadRequest")
    assert_status(await labelled.get(CMS, params={"labelSelector": "!!x"}), 400, "BadRequest")


async def test_field_selectors(api: Api) -> None:
    await create(api, PODS, pod("p1", node="n1"))
    await create(api, PODS, pod("p2", node="n2"))
    await create(api, PODS, pod("p3"))
    await api.patch(f"{PODS}/p2/status", {"status": {"phase": "Running"}})
    await create(api, "/api/v1/namespaces/kube-system/pods", pod("p4", node="n1"))

    async def sel(path: str, selector: str) -> list[str]:
        reply = await api.get(path, params={"fieldSelector": selector})
        assert reply.status == 200, reply
        return sorted(names(reply.json))

    assert await sel(PODS, "metadata.name=p1") == ["p1"]
    assert await sel(PODS, "metadata.name!=p1") == ["p2", "p3"]
    assert await sel("/api/v1/pods", "metadata.namespace=kube-system") == ["p4"]
    assert await sel("/api/v1/pods", "spec.nodeName=n1") == ["p1", "p4"]
    assert await sel(PODS, "spec.nodeName=") == ["p3"]
    assert await sel(PODS, "status.phase=Running") == ["p2"]
    assert await sel(PODS, "status.phase!=Running") == ["p1", "p3"]
    assert await sel(PODS, "status.phase=Pending,spec.nodeName=n1") == ["p1"]
    assert await sel(DOMAINS, "metadata.name=nothing") == []


async def test_unsupported_field_selector_is_bad_request(api: Api) -> None:
    status = assert_status(await api.get(CMS, params={"fieldSelector": "data.k=v"}), 400, "BadRequest")
    assert "data.k" in status["message"]
    assert_status(await api.get(DOMAINS, params={"fieldSelector": "spec.role=partner"}), 400, "BadRequest")
    assert_status(await api.get(DOMAINS, params={"fieldSelector": "spec.role=partner", "watch": "true"}), 400)


# ---- pagination ------------------------------------------------------------------------------------------------------


async def _pages(api: Api, path: str, limit: int, **params: str) -> tuple[list[list[str]], list[str]]:
    pages, rvs = [], []
    token = ""
    while True:
        query = {"limit": str(limit), **params}
        if token:
            query["continue"] = token
        body = (await api.get(path, params=query)).json
        pages.append(names(body))
        rvs.append(body["metadata"]["resourceVersion"])
        token = body["metadata"].get("continue", "")
        if not token:
            return pages, rvs


async def test_limit_and_continue(api: Api) -> None:
    for i in range(7):
        await create(api, CMS, configmap(f"cm-{i}"))
    first = (await api.get(CMS, params={"limit": "3"})).json
    assert names(first) == ["cm-0", "cm-1", "cm-2"]
    assert first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 4
    pages, rvs = await _pages(api, CMS, 3)
    assert pages == [["cm-0", "cm-1", "cm-2"], ["cm-3", "cm-4", "cm-5"], ["cm-6"]]
    assert len(set(rvs)) == 1
    # a limit larger than the list: no continue
    body = (await api.get(CMS, params={"limit": "100"})).json
    assert len(names(body)) == 7 and "continue" not in body["metadata"]


async def test_limit_with_label_selector(api: Api) -> None:
    for i in range(6):
        await create(api, CMS, configmap(f"s-{i}", parity=str(i % 2)))
    pages, _ = await _pages(api, CMS, 2, labelSelector="parity=0")
    assert pages == [["s-0", "s-2"], ["s-4"]] or pages == [["s-0", "s-2"], ["s-4"], []]


async def test_continue_after_writes_is_a_consistent_snapshot(api: Api) -> None:
    for i in range(6):
        await create(api, CMS, configmap(f"snap-{i}", {"v": "old"}))
    first = (await api.get(CMS, params={"limit": "2"})).json
    snapshot_rv = first["metadata"]["resourceVersion"]
    # writes after the first page: create, update, delete
    await create(api, CMS, configmap("snap-9"))
    await api.patch(f"{CMS}/snap-3", {"data": {"v": "new"}})
    await api.delete(f"{CMS}/snap-4")
    items = list(first["items"])
    token = first["metadata"]["continue"]
    while token:
        page = await api.get(CMS, params={"limit": "2", "continue": token})
        assert page.status == 200, page
        assert page.json["metadata"]["resourceVersion"] == snapshot_rv
        items += page.json["items"]
        token = page.json["metadata"].get("continue", "")
    assert [i["metadata"]["name"] for i in items] == [f"snap-{i}" for i in range(6)]
    assert {i["metadata"]["name"]: i["data"]["v"] for i in items}["snap-3"] == "old"
    # a fresh list sees the writes
    now = names((await api.get(CMS)).json)
    assert "snap-9" in now and "snap-4" not in now


async def test_bad_continue_token_is_bad_request(api: Api) -> None:
    assert_status(await api.get(CMS, params={"limit": "1", "continue": "!!garbage!!"}), 400, "BadRequest")


async def test_continue_token_with_compacted_revision_is_gone(api: Api, api_server: Any) -> None:
    for i in range(3):
        await create(api, CMS, configmap(f"old-{i}"))
    first = (await api.get(CMS, params={"limit": "1"})).json
    for i in range(3):
        await api.patch(f"{CMS}/old-{i}", {"data": {"v": str(i)}})
    server = api_server.node.server
    await server.compactor.compact(await server.store.current_revision())
    reply = await api.get(CMS, params={"limit": "1", "continue": first["metadata"]["continue"]})
    assert_status(reply, 410, "Expired")


# ---- resourceVersion semantics ------------------------------------------------------------------------------


async def test_resource_versions_increase_across_kinds(api: Api) -> None:
    rvs = []
    rvs.append(int((await create(api, CMS, configmap("r1")))["metadata"]["resourceVersion"]))
    rvs.append(int((await create(api, DOMAINS, domain("r2")))["metadata"]["resourceVersion"]))
    rvs.append(int((await api.patch(f"{CMS}/r1", {"data": {"n": "1"}})).json["metadata"]["resourceVersion"]))
    rvs.append(int((await api.delete(f"{DOMAINS}/r2")).json["metadata"]["resourceVersion"]))
    assert rvs == sorted(rvs) and len(set(rvs)) == 4
    list_rv = int((await api.get(CMS)).json["metadata"]["resourceVersion"])
    assert list_rv >= rvs[-1]  # a list is at least as fresh as the last acknowledged write


async def test_list_resource_version_zero_and_bad_values(api: Api) -> None:
    await create(api, CMS, configmap("z"))
    reply = await api.get(CMS, params={"resourceVersion": "0"})
    assert reply.status == 200 and "z" in names(reply.json)
    assert reply.json["metadata"]["resourceVersion"].isdigit()
    reply = await api.get(CMS, params={"resourceVersion": "0", "fieldSelector": "metadata.name=z", "limit": "500"})
    assert names(reply.json) == ["z"]
    assert_status(await api.get(CMS, params={"watch": "true", "resourceVersion": "abc"}), 400, "BadRequest")
    assert_status(await api.get(CMS, params={"limit": "x"}), 400, "BadRequest")


async def test_get_returns_current_resource_version(api: Api) -> None:
    created = await create(api, CMS, configmap("cur"))
    patched = (await api.patch(f"{CMS}/cur", {"data": {"k": "2"}})).json
    got = (await api.get(f"{CMS}/cur")).json
    assert got["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
    assert got["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
