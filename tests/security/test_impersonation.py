"""Finding 8: impersonation headers are honoured with the ``impersonate`` verb, never ignored."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import kubectl_binary, kubectl_environ
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


def test_kubectl_as_a_tenant_is_confined(network: Network, tmp_path: Path) -> None:
    """The issue's reproduction with the real kubectl: ``--as`` is honoured, not ignored."""
    env = kubectl_environ(tmp_path)
    kubectl = [kubectl_binary(), "--kubeconfig", str(network.server.kubeconfig)]
    proc = subprocess.run([*kubectl, "--as=system:serviceaccount:alice:alice", "get", "secrets", "-n", "bob"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), proc.stdout + proc.stderr
    proc = subprocess.run([*kubectl, "--as=system:serviceaccount:alice:alice", "auth", "whoami", "-o", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"system:serviceaccount:alice:alice"' in proc.stdout
