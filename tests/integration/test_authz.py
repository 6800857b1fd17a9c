"""Authentication and RBAC: 401 without credentials, per-domain isolation, token expiry, can-i."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt
import pytest

from tests.conftest import RunningServer

JSON = dict[str, Any]
pytestmark = pytest.mark.controllers()  # API server semantics only


async def call(
    server: RunningServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: JSON | None = None,
    auth: bool = True,
) -> tuple[int, JSON]:
    headers = {}
    if auth:
        headers["Authorization"] = f"Bearer {token or server.token}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, json=body, headers=headers, ssl=server.ssl_context()) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def domain_identity(server: RunningServer, domain: str) -> str:
    """Namespace + ServiceAccount + RoleBinding to ``admin`` in it; returns a fresh SA token."""
    await call(server, "POST", "/api/v1/namespaces", body={"metadata": {"name": domain}})
    await call(server, "POST", f"/api/v1/namespaces/{domain}/serviceaccounts", body={"metadata": {"name": domain}})
    await call(
        server,
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{domain}/rolebindings",
        body={
            "metadata": {"name": f"{domain}-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": domain, "namespace": domain}],
        },
    )
    status, tr = await call(
        server,
        "POST",
        f"/api/v1/namespaces/{domain}/serviceaccounts/{domain}/token",
        body={"spec": {"expirationSeconds": 3600}},
    )
    assert status == 201, tr
    return str(tr["status"]["token"])


async def test_no_credentials_is_401(api_server: RunningServer) -> None:
    status, body = await call(api_server, "GET", "/api/v1/namespaces", auth=False)
    assert status == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    status, _ = await call(api_server, "GET", "/api/v1/namespaces", token="not-a-token")
    assert status == 401
    status, _ = await call(api_server, "GET", "/version", auth=False)
    assert status == 200


async def test_domain_token_confined_to_its_namespace(api_server: RunningServer) -> None:
    alice = await domain_identity(api_server, "alice")
    await domain_identity(api_server, "bob")
    await call(
        api_server,
        "POST",
        "/api/v1/namespaces/bob/secrets",
        body={"metadata": {"name": "bob-secret"}, "stringData": {"k": "v"}},
    )
    status, body = await call(api_server, "GET", "/api/v1/namespaces/bob/secrets", token=alice)
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'secrets is forbidden: User "system:serviceaccount:alice:alice" cannot list '
        'resource "secrets" in API group "" in the namespace "bob"'
    )
    status, _ = await call(api_server, "GET", "/api/v1/namespaces/bob/secrets/bob-secret", token=alice)
    assert status == 403
    status, created = await call(
        api_server,
        "POST",
        "/api/v1/namespaces/alice/configmaps",
        token=alice,
        body={"metadata": {"name": "mine"}, "data": {"a": "b"}},
    )
    assert status == 201, created
    status, listed = await call(api_server, "GET", "/api/v1/namespaces/alice/configmaps", token=alice)
    assert status == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["mine"]
    status, _ = await call(api_server, "GET", "/api/v1/namespaces", token=alice)
    assert status == 403


async def test_pod_streams_and_debug_only_on_a_domains_own_pods(api_server: RunningServer) -> None:
    """pods/exec, attach, portforward and ephemeralcontainers: granted to a domain's identity in its
    namespace (RBAC passes, the request then fails for want of a WebSocket/node), 403 in another's."""
    alice = await domain_identity(api_server, "alice")
    await domain_identity(api_server, "bob")
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "app:v1"}]}}
    for ns in ("alice", "bob"):
        status, body = await call(api_server, "POST", f"/api/v1/namespaces/{ns}/pods", body=pod)
        assert status == 201, body
    patch = {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "app:v1"}]}}
    for sub in ("exec?command=true", "attach", "portforward?ports=80"):
        status, body = await call(api_server, "POST", f"/api/v1/namespaces/alice/pods/p/{sub}", token=alice)
        assert status == 400 and "Upgrade request required" in body["message"], (sub, body)
        status, body = await call(api_server, "POST", f"/api/v1/namespaces/bob/pods/p/{sub}", token=alice)
        resource = sub.split("?")[0]
        assert status == 403 and f'cannot create resource "pods/{resource}"' in body["message"], (sub, body)
    status, body = await call(api_server, "PATCH", "/api/v1/namespaces/bob/pods/p/ephemeralcontainers",
                              token=alice, body=patch)
    assert status == 403, body
    status, body = await call(api_server, "PUT", "/api/v1/namespaces/alice/pods/p/ephemeralcontainers",
                              token=alice, body={**pod, "metadata": {"name": "p", "namespace": "alice"}, **patch})
    assert status == 200 and body["spec"]["ephemeralContainers"][0]["name"] == "dbg", body


async def test_expired_and_foreign_tokens_are_401(api_server: RunningServer) -> None:
    token = await domain_identity(api_server, "carol")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:carol:carol"
    assert claims["exp"] - claims["iat"] == 3600
    # an expired token signed with the server's own key
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((api_server.data_dir / "pki" / "sa.key").read_bytes(), None)
    expired = jwt.encode(dict(claims, exp=int(time.time()) - 60, iat=int(time.time()) - 4000), key, algorithm="ES256")
    status, _ = await call(api_server, "GET", "/api/v1/namespaces/carol/configmaps", token=expired)
    assert status == 401
    # a token for another audience does not authenticate to the API server
    status, tr = await call(
        api_server,
        "POST",
        "/api/v1/namespaces/carol/serviceaccounts/carol/token",
        body={"spec": {"audiences": ["vault"]}},
    )
    assert status == 201
    status, _ = await call(api_server, "GET", "/api/v1/namespaces/carol/configmaps", token=tr["status"]["token"])
    assert status == 401
    # deleting the ServiceAccount revokes its tokens
    status, _ = await call(api_server, "GET", "/api/v1/namespaces/carol/configmaps", token=token)
    assert status == 200
    await call(api_server, "DELETE", "/api/v1/namespaces/carol/serviceaccounts/carol")
    status, _ = await call(api_server, "GET", "/api/v1/namespaces/carol/configmaps", token=token)
    assert status == 401


@pytest.mark.parametrize(
    ("namespace", "verb", "resource", "allowed"),
    [
        ("dave", "list", "secrets", True),
        ("dave", "create", "pods", True),
        ("erin", "list", "secrets", False),
        ("", "list", "namespaces", False),
    ],
)
async def test_self_subject_access_review(
    api_server: RunningServer, namespace: str, verb: str, resource: str, allowed: bool
) -> None:
    token = await domain_identity(api_server, "dave")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource}},
    }
    status, body = await call(
        api_server, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", token=token, body=review
    )
    assert status == 201, body
    assert body["status"]["allowed"] is allowed


async def test_quota_refuses_the_101st_pod(api_server: RunningServer) -> None:
    await call(api_server, "POST", "/api/v1/namespaces", body={"metadata": {"name": "q"}})
    status, _ = await call(
        api_server,
        "POST",
        "/api/v1/namespaces/q/resourcequotas",
        body={"metadata": {"name": "resource-limitation"}, "spec": {"hard": {"pods": "100"}}},
    )
    assert status == 201
    pod = {"spec": {"containers": [{"name": "main", "image": "busybox:1", "command": ["true"]}]}}
    async with aiohttp.ClientSession(headers=api_server.headers()) as session:

        async def create(i: int) -> int:
            async with session.post(
                f"{api_server.url}/api/v1/namespaces/q/pods",
                ssl=api_server.ssl_context(),
                json={"metadata": {"name": f"p{i}"}, **pod},
            ) as resp:
                return resp.status

        import asyncio

        statuses = await asyncio.gather(*(create(i) for i in range(1, 101)))
    assert statuses == [201] * 100
    status, body = await call(
        api_server, "POST", "/api/v1/namespaces/q/pods", body={"metadata": {"name": "p101"}, **pod}
    )
    assert status == 403
    assert body["message"] == (
        'pods "p101" is forbidden: exceeded quota: resource-limitation, '
        "requested: pods=1, used: pods=100, limited: pods=100"
    )


async def test_metrics_endpoint_needs_a_grant(api_server: RunningServer) -> None:
    await call(api_server, "GET", "/api/v1/namespaces")
    async with aiohttp.ClientSession(headers=api_server.headers()) as session, session.get(
            api_server.url + "/metrics", ssl=api_server.ssl_context()) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert 'apiserver_request_total{code="200",resource="namespaces",verb="LIST"}' in text
    assert "workqueue_depth" in text
    token = await domain_identity(api_server, "frank")
    status, body = await call(api_server, "GET", "/metrics", token=token)
    assert status == 403
    assert body["message"] == 'forbidden: User "system:serviceaccount:frank:frank" cannot get path "/metrics"'


async def test_quota_holds_under_concurrent_creates(api_server: RunningServer) -> None:
    await call(api_server, "POST", "/api/v1/namespaces", body={"metadata": {"name": "qc"}})
    await call(api_server, "POST", "/api/v1/namespaces/qc/resourcequotas",
               body={"metadata": {"name": "resource-limitation"}, "spec": {"hard": {"pods": "20"}}})
    pod = {"spec": {"containers": [{"name": "main", "image": "busybox:1", "command": ["true"]}]}}
    async with aiohttp.ClientSession(headers=api_server.headers()) as session:
        async def create(i: int) -> int:
            async with session.post(f"{api_server.url}/api/v1/namespaces/qc/pods", ssl=api_server.ssl_context(),
                                    json={"metadata": {"name": f"p{i}"}, **pod}) as resp:
                return resp.status

        import asyncio

        statuses = await asyncio.gather(*(create(i) for i in range(35)))
        # a refused or dry-run create releases its reservation
        async with session.post(f"{api_server.url}/api/v1/namespaces/qc/pods?dryRun=All", ssl=api_server.ssl_context(),
                                json={"metadata": {"name": "dry"}, **pod}) as resp:
            assert resp.status == 403
    assert sorted(statuses).count(201) == 20
    assert sorted(statuses).count(403) == 15
    status, listed = await call(api_server, "GET", "/api/v1/namespaces/qc/pods")
    assert status == 200 and len(listed["items"]) == 20


async def test_dry_runs_do_not_consume_quota(api_server: RunningServer) -> None:
    await call(api_server, "POST", "/api/v1/namespaces", body={"metadata": {"name": "qd"}})
    await call(api_server, "POST", "/api/v1/namespaces/qd/resourcequotas",
               body={"metadata": {"name": "one"}, "spec": {"hard": {"pods": "1"}}})
    pod = {"metadata": {"name": "only"}, "spec": {"containers": [{"name": "main", "image": "busybox:1"}]}}
    for _ in range(2):
        async with aiohttp.ClientSession(headers=api_server.headers()) as session, session.post(
                f"{api_server.url}/api/v1/namespaces/qd/pods?dryRun=All", ssl=api_server.ssl_context(),
                json=pod) as resp:
            assert resp.status == 201
    status, _ = await call(api_server, "POST", "/api/v1/namespaces/qd/pods", body=pod)
    assert status == 201


async def test_a_named_get_with_watch_needs_get(api_server: RunningServer) -> None:
    """A GET of one object answers the object whatever ``watch`` says, so it is authorized as
    ``get`` (kube's RequestInfo): ``watch`` on a collection does not grant reading objects by name."""
    ns, sa = "gina", "watcher"
    await call(api_server, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    await call(api_server, "POST", f"/api/v1/namespaces/{ns}/configmaps", body={"metadata": {"name": "c"}})
    await call(api_server, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body={"metadata": {"name": sa}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["watch"]}
    await call(api_server, "POST", rbac + "/roles", body={"metadata": {"name": "w"}, "rules": [rule]})
    await call(api_server, "POST", rbac + "/rolebindings", body={
        "metadata": {"name": "w"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "w"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
    status, tr = await call(api_server, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                            body={"spec": {"expirationSeconds": 3600}})
    assert status == 201, tr
    token = str(tr["status"]["token"])
    status, body = await call(api_server, "GET", f"/api/v1/namespaces/{ns}/configmaps/c?watch=true", token=token)
    assert status == 403, body
    assert "cannot get resource" in body["message"], body
