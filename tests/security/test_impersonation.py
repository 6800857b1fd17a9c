"""Finding 8: impersonation headers are honoured with the ``impersonate`` verb, never ignored."""

from __future__ import annotations

import pytest

from tests.security.conftest import Network

pytestmark = pytest.mark.slow
AS_ALICE = {"Impersonate-User": "system:serviceaccount:alice:alice"}
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


async def test_admin_impersonating_a_tenant_gets_the_tenants_rights(network: Network) -> None:
    reply = await network.call("GET", "/api/v1/namespaces/bob/secrets", headers=AS_ALICE)
    assert reply.status == 403, reply.body
    assert "system:serviceaccount:alice:alice" in reply.body["message"]
    reply = await network.call("POST", WHOAMI, body=REVIEW, headers=AS_ALICE)
    assert reply.status == 201, reply.body
    info = reply.body["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:alice:alice"
    assert "system:serviceaccounts:alice" in info["groups"] and "system:masters" not in info["groups"]
    assert (await network.call("GET", "/api/v1/namespaces/alice/configmaps", headers=AS_ALICE)).status == 200


async def test_tenant_without_impersonate_verb_is_refused(network: Network) -> None:
    attempts = (
        {"Impersonate-User": "atoll-admin"},
        {"Impersonate-User": "x", "Impersonate-Group": "system:masters"},
        {"Impersonate-User": "system:serviceaccount:bob:bob"},
    )
    for headers in attempts:
        reply = await network.call("GET", "/api/v1/namespaces/bob/secrets", as_="alice", headers=headers)
        assert reply.status == 403, (headers, reply.body)
        assert "impersonate" in reply.body["message"]


async def test_group_without_user_is_a_bad_request(network: Network) -> None:
    reply = await network.call("GET", "/api/v1/namespaces", headers={"Impersonate-Group": "system:masters"})
    assert reply.status == 400, reply.body
    assert "Impersonate-User" in reply.body["message"]
