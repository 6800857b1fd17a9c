"""Refusals: every bad request gets a Kubernetes ``Status`` with the right code, never a traceback.

Aspects: malformed JSON and YAML (400); schema violations (422 Invalid, one cause per bad field);
oversized bodies (413); unknown paths and resources (404); unsupported media types (415); methods
a resource does not support (405); authentication (no credentials / wrong token 401, client
certificates accepted); and a Hypothesis fuzz test throwing random bodies, content types, paths
and methods at a real ``atoll start`` process, asserting it never answers 500 and every error
body is a valid Status whose code matches the HTTP status.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atoll.pki import ensure_pki, issue_client_cert
from tests.integration.kube_http import DOMAINS, Api, assert_status, configmap, domain

CMS = "/api/v1/namespaces/default/configmaps"
NOT_FOUND = "the server could not find the requested resource"

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers


# ---- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{bad", b"", b"[1,2", b'{"metadata": }', b"\xff\xfe\x00", b"null", b"[]", b"42"])
async def test_malformed_json_is_bad_request(api: Api, raw: bytes) -> None:
    reply = await api.post(CMS, data=raw, ctype="application/json")
    assert_status(reply, 400, "BadRequest")


async def test_malformed_yaml_is_bad_request(api: Api) -> None:
    reply = await api.post(CMS, data=b"metadata: [unclosed\n  name: x", ctype="application/yaml")
    assert_status(reply, 400, "BadRequest")
    reply = await api.post(CMS, data=b"- just\n- a list\n", ctype="application/yaml")
    assert_status(reply, 400, "BadRequest")


async def test_yaml_body_is_accepted(api: Api) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    reply = await api.post(CMS, data=body, ctype="application/yaml")
    assert reply.status == 201, reply
    assert reply.json["data"] == {"k": "v"}


async def test_missing_content_type_is_json(api: Api) -> None:
    reply = await api.post(CMS, data=json.dumps(configmap("no-ctype")).encode())
    assert reply.status == 201, reply


async def test_unsupported_media_type(api: Api) -> None:
    reply = await api.post(CMS, data=b"<xml/>", ctype="application/xml")
    status = assert_status(reply, 415, "UnsupportedMediaType")
    assert status["message"].startswith("the body of the request was in an unknown format")


async def test_schema_violations_name_every_bad_field(api: Api) -> None:
    body = domain("eve")
    body["spec"]["role"] = "wrong"
    body["spec"]["resourceQuota"]["podMaxCount"] = "x"
    status = assert_status(await api.post(DOMAINS, body), 422, "Invalid")
    assert status["message"].startswith('Domain.kuscia.secretflow "eve" is invalid: ')
    details = status["details"]
    assert details["name"] == "eve" and details["group"] == "kuscia.secretflow" and details["kind"] == "Domain"
    causes = {c["field"]: c for c in details["causes"]}
    assert set(causes) == {"spec.role", "spec.resourceQuota.podMaxCount"}
    assert causes["spec.role"]["reason"] == "FieldValueNotSupported"
    assert causes["spec.role"]["message"] == 'Unsupported value: "wrong": supported values: "", "partner"'
    assert causes["spec.resourceQuota.podMaxCount"]["reason"] == "FieldValueTypeInvalid"
    assert 'spec.role: Unsupported value: "wrong"' in status["message"]
    assert "spec.resourceQuota.podMaxCount" in status["message"]
    assert_status(await api.get(f"{DOMAINS}/eve"), 404)  # nothing stored


async def test_schema_violation_on_update_and_patch(api: Api) -> None:
    created = (await api.post(DOMAINS, domain("upd"))).json
    bad = dict(created, spec={**created["spec"], "role": "boss"})
    status = assert_status(await api.put(f"{DOMAINS}/upd", bad), 422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.role"]
    status = assert_status(
        await api.patch(f"{DOMAINS}/upd", {"spec": {"resourceQuota": {"podMaxCount": "many"}}}), 422, "Invalid"
    )
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.resourceQuota.podMaxCount"]
    assert (await api.get(f"{DOMAINS}/upd")).json["spec"] == created["spec"]


async def test_strict_field_validation_rejects_unknown_fields(api: Api) -> None:
    body = domain("strict")
    body["spec"]["colour"] = "blue"
    reply = await api.post(DOMAINS, body, params={"fieldValidation": "Strict"})
    status = assert_status(reply, 400, "BadRequest")
    assert 'unknown field "spec.colour"' in status["message"]
    reply = await api.post(DOMAINS, body, params={"fieldValidation": "Ignore"})
    assert reply.status == 201 and "colour" not in reply.json["spec"]  # pruned
    assert_status(await api.post(CMS, configmap("x"), params={"fieldValidation": "Bogus"}), 400, "BadRequest")


async def test_invalid_labels_are_invalid(api: Api) -> None:
    body = configmap("labels")
    body["metadata"]["labels"] = {"bad key!": "v", "ok": "bad value!"}
    status = assert_status(await api.post(CMS, body), 422, "Invalid")
    assert len(status["details"]["causes"]) == 2
    assert {c["field"] for c in status["details"]["causes"]} == {"metadata.labels"}


async def test_body_over_3_mib_is_too_large(api: Api) -> None:
    big = configmap("big", {"blob": "x" * (3 * 1024 * 1024 + 10)})
    reply = await api.post(CMS, big)
    assert_status(reply, 413, "RequestEntityTooLarge")
    assert_status(await api.get(f"{CMS}/big"), 404)
    # just under the limit is fine
    ok = configmap("almost", {"blob": "x" * (1024 * 1024)})
    assert (await api.post(CMS, ok)).status == 201


# ---- paths and methods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nosuchresources",
        "/apis/kuscia.secretflow/v1alpha1/nosuch",
        "/apis/nosuch.io/v1/things",
        "/api/v1/namespaces/default/nosuch",
        "/api/v1/namespaces/default/configmaps/x/y/z",
        "/api/v1/namespaces/default/configmaps/x/status",
        "/nonsense",
        "/openapi/v9",
        "/apis/kuscia.secretflow/v1alpha1/domains/a/b",
    ],
)
async def test_unknown_resource_is_not_found(api: Api, path: str) -> None:
    assert_status(await api.get(path), 404, "NotFound", NOT_FOUND)


async def test_unsupported_method(api: Api) -> None:
    reply = await api.put(CMS, configmap("x"))
    assert_status(reply, 405, "MethodNotAllowed")
    reply = await api.delete("/api/v1/namespaces")  # namespaces have no deletecollection
    assert_status(reply, 405, "MethodNotAllowed")


# ---- authentication ------------------------------------------------------------------------------------


UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


async def test_no_credentials_is_unauthorized(api_server: Any) -> None:
    async with Api(api_server, token=None) as anonymous:
        for method, path in (
            ("GET", CMS),
            ("POST", CMS),
            ("GET", "/apis"),
            ("GET", "/openapi/v3"),
            ("DELETE", f"{DOMAINS}/x"),
            ("GET", "/nonsense"),
        ):
            reply = await anonymous.call(method, path, configmap("x") if method == "POST" else None)
            assert reply.status == 401, (method, path, reply)
            assert reply.json == UNAUTHORIZED


async def test_wrong_token_is_unauthorized(api_server: Any) -> None:
    async with Api(api_server, token="not-the-token") as wrong:
        reply = await wrong.get(CMS)
        assert reply.status == 401 and reply.json == UNAUTHORIZED
        reply = await wrong.post(CMS, configmap("sneaky"))
        assert reply.status == 401
    async with Api(api_server) as good:
        assert_status(await good.get(f"{CMS}/sneaky"), 404)


async def test_malformed_authorization_header(api_server: Any) -> None:
    async with Api(api_server, token=None) as client:
        for header in ("Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "garbage", f"Bearer {api_server.token}x"):
            reply = await client.get(CMS, headers={"Authorization": header})
            assert reply.status == 401, header


def _client_cert_context(server: Any, user: str, groups: tuple[str, ...], tmp: Path) -> ssl.SSLContext:
    pki = ensure_pki(server.data_dir / "pki")
    cert, key = issue_client_cert(pki, user, groups)
    (tmp / f"{user}.crt").write_bytes(cert)
    (tmp / f"{user}.key").write_bytes(key)
    ctx = server.ssl_context()
    ctx.load_cert_chain(str(tmp / f"{user}.crt"), str(tmp / f"{user}.key"))
    return ctx


async def test_client_certificate_authentication(api_server: Any, tmp_path: Path) -> None:
    pki = ensure_pki(api_server.data_dir / "pki")
    admin = api_server.ssl_context()
    admin.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    async with Api(api_server, token=None, ssl=admin) as client:
        reply = await client.post(CMS, configmap("by-cert"))
        assert reply.status == 201, reply
        assert (await client.get(f"{CMS}/by-cert")).status == 200
    ctx = _client_cert_context(api_server, "kuscia-admin", ("system:masters",), tmp_path)
    async with Api(api_server, token=None, ssl=ctx) as client:
        assert (await client.get(CMS)).status == 200
    # a certificate with a wrong token still authenticates by the certificate (first match wins)
    async with Api(api_server, token="wrong", ssl=admin) as client:
        assert (await client.get(CMS)).status == 200


async def test_certificate_from_another_ca_is_refused(api_server: Any, tmp_path: Path) -> None:
    other = ensure_pki(tmp_path / "other-pki")
    ctx = api_server.ssl_context()
    ctx.load_cert_chain(str(other.admin_cert), str(other.admin_key))
    try:
        async with Api(api_server, token=None, ssl=ctx) as client:
            reply = await client.get(CMS)
    except Exception as exc:  # the TLS handshake itself may refuse the certificate
        assert "certificate" in str(exc).lower() or "ssl" in str(exc).lower() or "connect" in str(exc).lower(), exc
        return
    assert reply.status == 401


# ---- fuzzing -------------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_target(master_process: Any) -> Any:
    pool = urllib3.PoolManager(
        ca_certs=str(master_process.ca_file),
        cert_reqs="CERT_REQUIRED",
        maxsize=4,
        retries=False,
        timeout=urllib3.Timeout(connect=5, read=10),
    )
    yield master_process, pool
    pool.clear()


_json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_meta_keys = st.sampled_from(
    [
        "metadata",
        "spec",
        "status",
        "kind",
        "apiVersion",
        "data",
        "items",
        "name",
        "labels",
        "finalizers",
        "resourceVersion",
        "generateName",
        "namespace",
        "op",
        "path",
    ]
)
_k8sish = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_meta_keys | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)
_bodies = (
    st.binary(max_size=300)
    | _json.map(lambda v: json.dumps(v).encode())
    | _k8sish.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda name, extra: json.dumps({"metadata": {"name": name, **extra}, "spec": {"role": name}}).encode(),
        st.text(max_size=12),
        st.dictionaries(_meta_keys, _json, max_size=3),
    )
)
_ctypes = st.sampled_from(
    [
        None,
        "application/json",
        "application/yaml",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "*/*",
        "",
        "application/json; charset=utf-8",
        "application/cbor",
    ]
)
_segments = st.sampled_from(
    [
        "api",
        "apis",
        "v1",
        "v1alpha1",
        "kuscia.secretflow",
        "namespaces",
        "default",
        "configmaps",
        "domains",
        "pods",
        "status",
        "finalize",
        "log",
        "exec",
        "alice",
        "fuzz",
        "customresourcedefinitions",
        "apiextensions.k8s.io",
        "openapi",
        "v3",
        "kube-system",
        "..",
        "%2F",
        "version",
        "watch",
    ]
) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"), min_size=1, max_size=8
)
_paths = st.lists(_segments, min_size=0, max_size=7).map(lambda s: "/" + "/".join(s)) | st.sampled_from(
    [
        CMS,
        f"{CMS}/fuzz",
        DOMAINS,
        f"{DOMAINS}/fuzz",
        f"{DOMAINS}/fuzz/status",
        "/api/v1/namespaces/fuzz",
        "/api/v1/namespaces/fuzz/finalize",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ]
)
_queries = st.dictionaries(
    st.sampled_from(
        [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "dryRun",
            "fieldValidation",
            "propagationPolicy",
            "timeoutSeconds",
            "includeObject",
            "force",
            "fieldManager",
        ]
    ),
    st.text(max_size=12) | st.sampled_from(["0", "1", "All", "Strict", "true", "x=y"]),
    max_size=3,
)
_methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(method=_methods, path=_paths, body=_bodies, ctype=_ctypes, query=_queries, table=st.booleans())
def test_fuzz_never_500_and_errors_are_status(
    fuzz_target: Any, method: str, path: str, body: bytes, ctype: str | None, query: dict[str, str], table: bool
) -> None:
    server, pool = fuzz_target
    headers = dict(server.headers())
    if ctype is not None:
        headers["Content-Type"] = ctype
    if table:
        headers["Accept"] = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    if query.get("timeoutSeconds") is not None or "watch" in path:
        query["timeoutSeconds"] = "1"
    query.pop("watch", None)
    url = server.url + path + ("?" + urlencode(query) if query else "")
    resp = pool.request(
        method,
        url,
        body=body if method not in ("GET", "HEAD") else None,
        headers=headers,
        preload_content=True,
        redirect=False,
    )
    assert resp.status < 500, (method, path, query, ctype, body[:200], resp.status, resp.data[:500])
    if resp.status >= 400 and method != "HEAD":
        assert resp.headers.get("Content-Type", "").startswith("application/json"), (resp.status, resp.headers)
        status = json.loads(resp.data)
        assert status["kind"] == "Status" and status["apiVersion"] == "v1", status
        assert status["status"] == "Failure" and status["code"] == resp.status, status
        assert isinstance(status["message"], str) and isinstance(status["reason"], str), status


# ---- wrongly typed fields (each of these once crashed a handler or a defaulting hook) ---------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "ctype", "code"),
    [
        (
            "PATCH",
            f"{CMS}/a",
            [{"op": "replace", "path": "/metadata", "value": "str"}],
            "application/json-patch+json",
            400,
        ),
        ("PATCH", f"{CMS}/a", {"metadata": "x"}, "application/merge-patch+json", 400),
        ("PATCH", f"{CMS}/new?fieldManager=t", {"metadata": 5}, "application/apply-patch+yaml", 400),
        ("POST", "/api/v1/namespaces", {"metadata": {"name": "x"}, "spec": "x"}, "application/json", 422),
        ("POST", "/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": "x"}, "application/json", 422),
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": "x"}]}},
            "application/json",
            422,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/secrets",
            {"metadata": {"name": "s"}, "data": "x", "stringData": {"a": "b"}},
            "application/json",
            422,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": "s"}, "spec": "x"},
            "application/json",
            422,
        ),
        ("DELETE", f"{CMS}/a", {"preconditions": "x"}, "application/json", 400),
        ("GET", f"{CMS}?watch=true&timeoutSeconds=abc", None, None, 400),
        ("POST", CMS, {"metadata": {"generateName": 5}}, "application/json", 422),
        ("POST", CMS, {"metadata": {"name": "b", "generateName": {"a": 1}}}, "application/json", 422),
    ],
)
async def test_wrongly_typed_fields_are_refused_not_crashing(
    api: Api, method: str, path: str, body: Any, ctype: str | None, code: int
) -> None:
    assert (await api.post(CMS, configmap("a"))).status == 201
    reply = await api.call(method, path, body, ctype=ctype)
    assert_status(reply, code)
    got = await api.get(f"{CMS}/a")
    assert got.status == 200 and got.json["data"] == {"k": "v"}  # nothing changed
