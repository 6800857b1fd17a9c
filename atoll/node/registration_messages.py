"""The lite-registration wire format (Kuscia §3.6), shared by the lite and the master.

* The lite builds a CSR for ``CN=<domain>`` with its domain key; the one-time **deploy token**
  rides in a non-critical extension with OID ``1.2.3.4`` (raw token bytes, as Kuscia's Go code).
* ``POST <masterEndpoint>/register`` with ``RegisterRequest{domain_id, csr, request_time}`` (``csr``
  is the base64 of the PEM, ``request_time`` nanoseconds) and header ``jwt-token``: an RS256 JWT
  signed with the domain key, claims ``req_hash = sha256("<domain_id>_<csr>_<request_time>")`` (hex),
  ``iss`` = ``sub`` = the domain, ``exp`` = now + 5 min. Header ``Kuscia-Host:
  kuscia-handshake.master.svc`` lets the master's gateway route it to the handshake server.
* ``RegisterResponse{cert, master_pubkey}`` (base64 PEMs; the public key as PKCS#1 "RSA PUBLIC
  KEY"). Atoll adds ``ca_cert`` (the master CA, which the lite's agent needs to verify the API
  server's log requests), ``node_cert`` (the lite's API client certificate,
  ``CN=system:node:<domain>``, ``O=system:nodes``; same key) and ``apiserver`` (the master API URL
  the lite uses until its gateway carries that traffic). Atoll's request adds ``node_name``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

JSON = dict[str, Any]
DEPLOY_TOKEN_OID = ObjectIdentifier("1.2.3.4")
REGISTER_PATH = "/register"
JWT_HEADER = "jwt-token"
HANDSHAKE_HOST = "kuscia-handshake.master.svc"
JWT_LIFETIME_SECONDS = 300
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: required (base64)")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError(f"{field}: not valid base64") from None


def node_user(domain: str) -> str:
    """The API user of a registered lite (its ``node.crt`` common name)."""
    return f"{NODE_USER_PREFIX}{domain}"


def public_key_pkcs1(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)


def build_csr(key: rsa.RSAPrivateKey, domain: str, token: str) -> bytes:
    """PEM CSR ``CN=<domain>`` carrying ``token`` in extension 1.2.3.4."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    )
    if token:
        builder = builder.add_extension(x509.UnrecognizedExtension(DEPLOY_TOKEN_OID, token.encode()), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr_token(csr: x509.CertificateSigningRequest) -> str:
    """The deploy token of a CSR ("" when it carries none)."""
    try:
        ext = csr.extensions.get_extension_for_oid(DEPLOY_TOKEN_OID)
    except x509.ExtensionNotFound:
        return ""
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    return raw.decode("utf-8", "replace")


def request_hash(domain_id: str, csr_b64: str, request_time: int) -> str:
    return hashlib.sha256(f"{domain_id}_{csr_b64}_{request_time}".encode()).hexdigest()


def register_request(key: rsa.RSAPrivateKey, domain: str, token: str, node_name: str) -> tuple[JSON, str]:
    """(``RegisterRequest`` body, ``jwt-token`` header value)."""
    csr_b64 = b64(build_csr(key, domain, token))
    request_time = time.time_ns()
    now = int(time.time())
    claims = {
        "req_hash": request_hash(domain, csr_b64, request_time),
        "iss": domain,
        "sub": domain,
        "iat": now,
        "exp": now + JWT_LIFETIME_SECONDS,
    }
    signed = jwt.encode(claims, key, algorithm="RS256")
    body = {"domain_id": domain, "csr": csr_b64, "request_time": request_time, "node_name": node_name}
    return body, signed
