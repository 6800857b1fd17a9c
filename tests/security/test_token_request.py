"""Finding 9 (+ the TokenRequest part of 11): boundObjectRef never changes the identity and must
name an existing Pod or Secret; resourceNames rules match verbs on named URLs."""

from __future__ import annotations

import pytest

from tests.security.conftest import Network, pod

pytestmark = pytest.mark.slow
NS = "/api/v1/namespaces/alice"
RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces/alice"
LIMITED = NS + "/serviceaccounts/limited/token"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def token_request(**spec: object) -> dict[str, object]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


async def _whoami(network: Network, token: str) -> tuple[int, str]:
    network.tokens["probe"] = token
    reply = await network.call("POST", WHOAMI, as_="probe", body={"apiVersion": "authentication.k8s.io/v1",
                                                                  "kind": "SelfSubjectReview"})
    if reply.status != 201:
        return reply.status, ""
    return reply.status, reply.body["status"]["userInfo"]["username"]


@pytest.fixture(scope="module", autouse=True)
def limited(network: Network) -> None:
    import asyncio

    async def create() -> None:
        await network.call("POST", NS + "/serviceaccounts", body={"metadata": {"name": "limited"}})
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "token-limited"},
                "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                           "resourceNames": ["limited"]}]}
        assert (await network.call("POST", RBAC + "/roles", body=role)).status == 201
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "token-limited"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "token-limited"},
                   "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": "alice"}]}
        assert (await network.call("POST", RBAC + "/rolebindings", body=binding)).status == 201

    asyncio.run(create())


async def test_resource_names_rule_allows_the_named_token_only(network: Network) -> None:
    reply = await network.call("POST", LIMITED, as_="alice", body=token_request())
    assert reply.status == 201, reply.body
    assert await _whoami(network, reply.body["status"]["token"]) == (201, "system:serviceaccount:alice:limited")
    reply = await network.call("POST", NS + "/serviceaccounts/alice/token", as_="alice", body=token_request())
    assert reply.status == 403, reply.body


async def test_bound_object_ref_cannot_change_the_subject(network: Network) -> None:
    ref = {"kind": "ServiceAccount", "apiVersion": "v1", "name": "alice"}
    reply = await network.call("POST", LIMITED, as_="alice",
                               body=token_request(boundObjectRef=ref))
    assert reply.status == 422 and reply.cause_fields() == ["spec.boundObjectRef.kind"], reply.body


async def test_bound_object_must_exist_and_match_and_binds_the_token(network: Network) -> None:
    missing = {"kind": "Pod", "apiVersion": "v1", "name": "nope"}
    reply = await network.call("POST", LIMITED, body=token_request(boundObjectRef=missing))
    assert reply.status == 404, reply.body
    created = await network.call("POST", NS + "/pods", body=pod("holder", "alice"))
    assert created.status == 201, created.body
    wrong_uid = {"kind": "Pod", "apiVersion": "v1", "name": "holder", "uid": "not-the-uid"}
    reply = await network.call("POST", LIMITED, body=token_request(boundObjectRef=wrong_uid))
    assert reply.status == 409, reply.body
    secret = await network.call("POST", NS + "/secrets", body={"metadata": {"name": "holder"}})
    assert secret.status == 201, secret.body
    ref = {"kind": "Secret", "apiVersion": "v1", "name": "holder", "uid": secret.body["metadata"]["uid"]}
    reply = await network.call("POST", LIMITED, body=token_request(boundObjectRef=ref))
    assert reply.status == 201, reply.body
    token = reply.body["status"]["token"]
    assert await _whoami(network, token) == (201, "system:serviceaccount:alice:limited")
    assert (await network.call("DELETE", NS + "/secrets/holder")).status == 200
    assert (await _whoami(network, token))[0] == 401


@pytest.mark.parametrize(("spec", "field"), [
    ({"expirationSeconds": "abc"}, "spec.expirationSeconds"),
    ({"boundObjectRef": "x"}, "spec.boundObjectRef"),
    ("x", "spec"),
    ({"audiences": "x"}, "spec.audiences"),
])
async def test_malformed_token_requests_are_422(network: Network, spec: object, field: str) -> None:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    reply = await network.call("POST", LIMITED, body=body)
    assert reply.status == 422 and reply.cause_fields() == [field], reply.body
