"""Finding 2a/3: malformed built-in objects are refused (422 naming the field) on every write path."""

from __future__ import annotations

import pytest

from tests.security.conftest import Network, pod

pytestmark = pytest.mark.slow
PODS = "/api/v1/namespaces/alice/pods"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


async def test_strategic_patch_turning_spec_into_a_list_is_refused(network: Network) -> None:
    assert (await network.call("POST", PODS, as_="alice", body=pod("victim", "alice"))).status == 201
    for ctype in (STRATEGIC, MERGE):
        reply = await network.call("PATCH", PODS + "/victim", as_="alice", body={"spec": [1]}, content_type=ctype)
        assert reply.status in (400, 422), reply.body
        assert reply.body["kind"] == "Status"
    reply = await network.call("PATCH", PODS + "/victim", as_="alice", content_type="application/json-patch+json",
                               body=[{"op": "add", "path": "/spec/nodeName", "value": {"a": 1}}])
    assert reply.status == 422 and "spec.nodeName" in reply.cause_fields(), reply.body


async def test_wrong_types_on_create_and_update_name_the_field(network: Network) -> None:
    reply = await network.call("POST", PODS, as_="alice", body=pod("typed", "alice", nodeName={"a": 1}))
    assert reply.status == 422 and reply.cause_fields() == ["spec.nodeName"], reply.body
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "labelled", "labels": {"a": 1}}}
    reply = await network.call("POST", "/api/v1/namespaces/alice/configmaps", as_="alice", body=cm)
    assert reply.status == 422 and reply.cause_fields() == ["metadata.labels.a"], reply.body
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "domaincfg",
          "labels": {"kuscia.secretflow/domain-name": "alice"}}, "spec": "x"}
    reply = await network.call("POST", "/api/v1/namespaces/alice/configmaps", as_="alice", body=cm)
    assert reply.status in (400, 422) and "spec" in reply.body["message"], reply.body
    cm["spec"] = {"a": 1}
    reply = await network.call("POST", "/api/v1/namespaces/alice/configmaps?fieldValidation=Strict", as_="alice",
                               body=cm)
    assert reply.status == 400 and 'unknown field "spec"' in reply.body["message"], reply.body
    reply = await network.call("POST", "/api/v1/namespaces/alice/configmaps?fieldValidation=Warn", as_="alice",
                               body=cm)
    assert reply.status == 201 and "spec" not in reply.body, reply.body
    assert 'unknown field \\"spec\\"' in reply.headers.get("Warning", "")
    reply = await network.call("PUT", "/api/v1/namespaces/alice/configmaps/domaincfg", as_="alice",
                               body={**reply.body, "data": {"k": ["v"]}})
    assert reply.status == 422 and reply.cause_fields() == ["data.k"], reply.body


async def test_bad_rolebinding_is_refused_and_authorization_keeps_working(network: Network) -> None:
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "bad"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"}, "subjects": "abc"}
    reply = await network.call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/alice/rolebindings",
                               as_="alice", body=binding)
    assert reply.status == 422 and reply.cause_fields() == ["subjects"], reply.body
    reply = await network.call("GET", "/api/v1/namespaces/bob/pods", as_="bob")
    assert reply.status == 200, reply.body


async def test_apply_is_validated(network: Network) -> None:
    doc = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: applied\nspec:\n  containers: notalist\n"
    reply = await network.call("PATCH", PODS + "/applied?fieldManager=t", as_="alice", raw=doc,
                               content_type="application/apply-patch+yaml")
    assert reply.status == 422 and reply.cause_fields() == ["spec.containers"], reply.body
