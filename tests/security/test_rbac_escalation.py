"""Finding 7: a domain cannot escalate inside its namespace nor change the quota the platform set."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.security.conftest import Network

pytestmark = pytest.mark.slow
RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces/alice"
QUOTA = "/api/v1/namespaces/alice/resourcequotas/resource-limitation"


def binding(name: str, kind: str, role: str) -> dict[str, object]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": "alice"}]}


async def test_binding_cluster_admin_is_refused(network: Network) -> None:
    reply = await network.call("POST", RBAC + "/rolebindings", as_="alice",
                               body=binding("pwn", "ClusterRole", "cluster-admin"))
    assert reply.status == 403, reply.body
    assert "not currently held" in reply.body["message"]
    assert (await network.call("GET", "/api/v1/namespaces/bob/secrets", as_="alice")).status == 403


async def test_binding_what_one_holds_is_allowed(network: Network) -> None:
    reply = await network.call("POST", RBAC + "/rolebindings", as_="alice", body=binding("viewers", "ClusterRole",
                                                                                          "view"))
    assert reply.status == 201, reply.body


async def test_roles_granting_more_than_held_are_refused(network: Network) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "all"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    reply = await network.call("POST", RBAC + "/roles", as_="alice", body=role)
    assert reply.status == 403, reply.body
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "quota-editor"},
            "rules": [{"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["update", "delete"]}]}
    assert (await network.call("POST", RBAC + "/roles", as_="alice", body=role)).status == 403
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]}
    assert (await network.call("POST", RBAC + "/roles", as_="alice", body=role)).status == 201


async def test_domain_cannot_change_or_delete_its_quota(network: Network) -> None:
    async def quota_exists() -> None:
        assert (await network.call("GET", QUOTA, as_="alice")).status == 200

    await eventually(quota_exists, 20)
    patch = {"spec": {"hard": {"pods": "100000"}}}
    reply = await network.call("PATCH", QUOTA, as_="alice", body=patch, content_type="application/merge-patch+json")
    assert reply.status == 403, reply.body
    assert (await network.call("DELETE", QUOTA, as_="alice")).status == 403
    assert (await network.call("GET", QUOTA, as_="alice")).body["spec"]["hard"]["pods"] != "100000"
