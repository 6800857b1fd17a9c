"""Registration's wire format (Kuscia §3.6) and the master's request checks, without a network."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors
from atoll.node.admin_ops import cluster_domain_route, parse_endpoint
from atoll.node.registration_messages import (
    DEPLOY_TOKEN_OID,
    b64,
    build_csr,
    csr_token,
    register_request,
    request_hash,
)
from atoll.node.registration_server import _check_request, _use_token

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_csr_carries_the_deploy_token_in_oid_1_2_3_4() -> None:
    csr = x509.load_pem_x509_csr(build_csr(KEY, "alice", "TOKEN"))
    ext = csr.extensions.get_extension_for_oid(DEPLOY_TOKEN_OID)
    assert not ext.critical and csr_token(csr) == "TOKEN"
    assert csr_token(x509.load_pem_x509_csr(build_csr(KEY, "alice", ""))) == ""


def test_a_well_formed_request_passes_and_its_jwt_binds_the_body() -> None:
    body, token = register_request(KEY, "alice", "TOKEN", "alice-node")
    domain, csr = _check_request(body, token)
    assert domain == "alice" and csr_token(csr) == "TOKEN"
    claims = jwt.decode(token, KEY.public_key(), algorithms=["RS256"])
    assert claims["req_hash"] == request_hash("alice", body["csr"], body["request_time"])
    assert claims["iss"] == claims["sub"] == "alice" and claims["exp"] - time.time() <= 300


def _tamper(body: dict[str, Any], token: str, what: str) -> tuple[dict[str, Any], str]:
    if what == "cn":
        return {**body, "domain_id": "bob"}, token
    if what == "time":
        return {**body, "request_time": body["request_time"] + 1}, token
    if what == "no-jwt":
        return body, ""
    if what == "other-key":
        return body, jwt.encode({"req_hash": "x", "exp": int(time.time()) + 60}, OTHER, algorithm="RS256")
    if what == "expired":
        claims = {"req_hash": request_hash("alice", body["csr"], body["request_time"]), "exp": int(time.time()) - 60}
        return body, jwt.encode(claims, KEY, algorithm="RS256")
    if what == "csr":
        return {**body, "csr": b64(b"not a csr")}, token
    raise AssertionError(what)


@pytest.mark.parametrize(
    ("what", "error", "field"),
    [
        ("cn", errors.BadRequest, "csr: subject CN"),
        ("time", errors.Unauthorized, "req_hash does not match"),
        ("no-jwt", errors.Unauthorized, "jwt-token: header required"),
        ("other-key", errors.Unauthorized, "does not verify with the CSR's key"),
        ("expired", errors.Unauthorized, "jwt-token: expired"),
        ("csr", errors.BadRequest, "csr: not a PEM certificate signing request"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(what: str, error: type[errors.APIError], field: str) -> None:
    body, token = register_request(KEY, "alice", "TOKEN", "alice-node")
    body, token = _tamper(body, token, what)
    with pytest.raises(error, match=field):
        _check_request(body, token)


def test_deploy_tokens_are_single_use() -> None:
    status = {"deployTokenStatuses": [{"token": "A", "state": "used"}, {"token": "B", "state": "unused"}]}
    tokens = _use_token(status, "B", "alice")
    assert [t["state"] for t in tokens] == ["used", "used"]
    with pytest.raises(errors.Forbidden, match="deploy token found but used"):
        _use_token(status, "A", "alice")
    with pytest.raises(errors.Forbidden, match="deploy token not found"):
        _use_token(status, "C", "alice")
    with pytest.raises(errors.Forbidden, match="no deploy token"):
        _use_token(status, "", "alice")


def test_route_urls_follow_create_cluster_domain_route_sh() -> None:
    assert parse_endpoint("http://bob.example:1080") == {
        "host": "bob.example", "ports": [{"name": "http", "protocol": "HTTP", "pathPrefix": "", "isTLS": False,
                                          "port": 1080}]}
    assert parse_endpoint("https://10.0.0.2/prefix/")["ports"][0] | {} == {
        "name": "http", "protocol": "HTTP", "pathPrefix": "/prefix", "isTLS": True, "port": 443}
    assert parse_endpoint("http://h")["ports"][0]["port"] == 80
    for bad in ("ftp://h", "h:1080", "http://h:99999"):
        with pytest.raises(ValueError, match="URL"):
            parse_endpoint(bad)
    route = cluster_domain_route("alice", "bob", parse_endpoint("http://h:1"), "SA", transit="carol")
    assert route["metadata"]["name"] == "alice-bob"
    spec = route["spec"]
    assert spec["authenticationType"] == "Token"
    assert spec["tokenConfig"] == {"tokenGenMethod": "RSA-GEN", "rollingUpdatePeriod": 86400}
    assert spec["requestHeadersToAdd"] == {"Authorization": "Bearer SA"}
    assert spec["transit"] == {"transitMethod": "THIRD-DOMAIN", "domain": {"domainID": "carol"}}
