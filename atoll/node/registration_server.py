"""The master's ``POST /register`` (Kuscia §3.6), as aiohttp routes (contract C3).

:func:`registration_routes` returns the routes the master gateway's handshake server mounts
(``GatewayModule(..., extra_routes=...)``); until a gateway runs, the master node serves them itself
on ``gateway.externalPort`` (:mod:`atoll.node.master_endpoint`).

Checks, in order: the body's fields; the CSR parses, its signature holds and its CN is the
``domain_id``; the ``jwt-token`` verifies (RS256) with the CSR's public key, is unexpired and its
``req_hash`` matches; the Domain exists. Then either the Domain's ``spec.cert`` already certifies
this key (a re-registration: answered without a token), or ``spec.cert`` is empty and the CSR's
deploy token is an ``unused`` entry of ``status.deployTokenStatuses`` (a used or unknown token is
refused first). A key that differs from a set ``spec.cert`` is refused even with a valid token:
the administrator clears ``spec.cert`` on the master to let a lite re-key.

Nothing is left half-done: the lite's RBAC (harmless without a certificate) is written first; the
token flips to ``used`` with a resourceVersion precondition (the commit point: two lites racing
for one token cannot both win); ``spec.cert`` follows, and if that fails the token is restored.
Every refusal is a Kubernetes ``Status`` whose message names the field.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors, kinds
from atoll.api.constants import LABEL_NODE_NAMESPACE, domain_id_problem
from atoll.client import Client, ClientError
from atoll.node import issuer
from atoll.node.lite_identity import identity_objects
from atoll.node.registration_messages import (
    JWT_HEADER,
    REGISTER_PATH,
    b64,
    csr_token,
    public_key_pkcs1,
    request_hash,
    unb64,
)
from atoll.pki import PKI

JSON = dict[str, Any]
log = logging.getLogger(__name__)
ROLES = kinds.kind("rbac.authorization.k8s.io", "roles")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(slots=True)
class Registrar:
    """Everything ``/register`` needs: an admin API client factory, the CA, the master's key."""

    client: Callable[[], Client]
    pki: PKI
    master_key: rsa.RSAPrivateKey
    apiserver_url: str

    async def register(self, body: JSON, token: str) -> JSON:
        domain, csr = _check_request(body, token)
        node_name = str(body.get("node_name") or "") or f"{domain}-node"
        if len(node_name) > 253 or not _SUBDOMAIN.match(node_name):
            raise errors.BadRequest(f"node_name: {node_name!r} is not a DNS-1123 subdomain")
        public_key = csr.public_key()
        async with self.client() as client:
            current = await _domain(client, domain)
            await _check_node_name(client, domain, node_name)
            cert = str((current.get("spec") or {}).get("cert") or "")
            registered = bool(cert) and _certifies(cert, public_key)
            if not registered:
                _use_token((current.get("status") or {}), csr_token(csr), domain)  # refuses a bad token
            if cert and not registered:
                raise errors.Forbidden(
                    f"spec.cert: the key of domain {domain} does not match its registered certificate; "
                    f"to re-register with a new key clear the Domain's spec.cert on the master"
                )
            await _ensure_identity(client, domain, node_name)
            if registered:
                domain_cert = unb64(cert, "spec.cert")
            else:
                domain_cert = issuer.domain_certificate(self.pki, domain, public_key)
                await _commit(client, current, csr_token(csr), domain_cert)
        log.info("registered lite %s (node %s)%s", domain, node_name, " again" if registered else "")
        return {
            "cert": b64(domain_cert),
            "master_pubkey": b64(public_key_pkcs1(self.master_key.public_key())),
            "ca_cert": b64(self.pki.ca_cert.read_bytes()),
            "node_cert": b64(issuer.node_certificate(self.pki, domain, public_key)),
            "apiserver": self.apiserver_url,
        }

    async def handle(self, request: web.Request) -> web.Response:
        try:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                raise errors.BadRequest("body: not a JSON RegisterRequest") from None
            if not isinstance(body, dict):
                raise errors.BadRequest("body: not a JSON RegisterRequest object")
            reply = await self.register(body, request.headers.get(JWT_HEADER, ""))
            return web.Response(body=orjson.dumps(reply), content_type="application/json")
        except errors.APIError as exc:
            log.warning("registration refused: %s", exc.message)
            return _status(exc)
        except ClientError as exc:
            log.error("registration failed: the API server is unreachable: %s", exc)
            return _status(errors.InternalError("the master's API server is unreachable; try again"))


def registration_routes(registrar: Registrar) -> list[web.RouteDef]:
    return [web.post(REGISTER_PATH, registrar.handle)]


def _status(exc: errors.APIError) -> web.Response:
    return web.Response(status=exc.code, body=orjson.dumps(exc.status()), content_type="application/json")


def _check_request(body: JSON, token: str) -> tuple[str, x509.CertificateSigningRequest]:
    domain = body.get("domain_id")
    if not isinstance(domain, str) or not domain:
        raise errors.BadRequest("domain_id: required")
    problem = domain_id_problem(domain)
    if problem:
        raise errors.BadRequest(f"domain_id: {problem}")
    try:
        csr = x509.load_pem_x509_csr(unb64(body.get("csr"), "csr"))
    except ValueError as exc:
        raise errors.BadRequest(f"csr: not a PEM certificate signing request ({exc})") from None
    if not csr.is_signature_valid:
        raise errors.BadRequest("csr: the signature does not verify")
    cns = [a.value for a in csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)]
    if cns != [domain]:
        raise errors.BadRequest(f"csr: subject CN {cns} is not the domain_id {domain!r}")
    public_key = csr.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise errors.BadRequest("csr: the domain key must be RSA")
    request_time = body.get("request_time")
    if not isinstance(request_time, int):
        raise errors.BadRequest("request_time: required (nanoseconds since the epoch)")
    if not token:
        raise errors.Unauthorized(f"{JWT_HEADER}: header required (an RS256 JWT signed with the domain key)")
    try:
        claims = jwt.decode(token, public_key, algorithms=["RS256"], options={"require": ["exp", "req_hash"]})
    except jwt.ExpiredSignatureError:
        raise errors.Unauthorized(f"{JWT_HEADER}: expired") from None
    except jwt.InvalidTokenError as exc:
        raise errors.Unauthorized(f"{JWT_HEADER}: does not verify with the CSR's key ({exc})") from None
    if claims.get("req_hash") != request_hash(domain, str(body["csr"]), request_time):
        raise errors.Unauthorized(f"{JWT_HEADER}: req_hash does not match the request")
    return domain, csr


async def _domain(client: Client, domain: str) -> JSON:
    try:
        return await client.get(kinds.DOMAINS, domain)
    except errors.NotFound:
        raise errors.NotFound(
            f"domain_id: domain {domain} not found on the master (create it there: atoll domain add-lite {domain})"
        ) from None


async def _check_node_name(client: Client, domain: str, node_name: str) -> None:
    try:
        node = await client.get(kinds.NODES, node_name)
    except errors.NotFound:
        return
    owner = ((node.get("metadata") or {}).get("labels") or {}).get(LABEL_NODE_NAMESPACE)
    if owner != domain:
        raise errors.Forbidden(f"node_name: node {node_name} belongs to domain {owner!r}, not {domain}")


def _certifies(cert_b64: str, public_key: Any) -> bool:
    try:
        return issuer.same_key(unb64(cert_b64, "spec.cert"), public_key)
    except ValueError:
        return False


async def _ensure_identity(client: Client, domain: str, node_name: str) -> None:
    rds = {"ClusterRole": kinds.CLUSTERROLES, "ClusterRoleBinding": kinds.CLUSTERROLEBINDINGS,
           "Role": ROLES, "RoleBinding": kinds.ROLEBINDINGS}
    for obj in identity_objects(domain, node_name):
        rd, ns = rds[obj["kind"]], obj["metadata"].get("namespace")
        try:
            await client.create(rd, obj, ns)
        except errors.AlreadyExists:
            current = await client.get(rd, obj["metadata"]["name"], ns)
            await client.update(rd, {**current, **{k: v for k, v in obj.items() if k != "metadata"}})


def _use_token(status: JSON, token: str, domain: str) -> list[JSON]:
    tokens = [dict(t) for t in status.get("deployTokenStatuses") or []]
    if not token:
        raise errors.Forbidden(f"csr: no deploy token (extension 1.2.3.4); print one on the master: "
                               f"atoll token show {domain}")
    for entry in tokens:
        if entry.get("token") == token:
            if entry.get("state") != "unused":
                raise errors.Forbidden(f"liteDeployToken: deploy token found but used for domain {domain}; "
                                       f"get a new one on the master: atoll token show {domain}")
            entry["state"] = "used"
            entry["lastTransitionTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return tokens
    raise errors.Forbidden(f"liteDeployToken: deploy token not found for domain {domain}; "
                           f"get one on the master: atoll token show {domain}")


async def _commit(client: Client, domain_obj: JSON, token: str, cert: bytes) -> None:
    name = domain_obj["metadata"]["name"]
    status = domain_obj.get("status") or {}
    tokens = _use_token(status, token, name)
    try:
        await client.update(kinds.DOMAINS, {**domain_obj, "status": {**status, "deployTokenStatuses": tokens}},
                            subresource="status")
    except errors.Conflict:
        raise errors.Conflict(f"domain {name} changed during registration; try again") from None
    try:
        await client.patch(kinds.DOMAINS, name, {"spec": {"cert": b64(cert)}})
    except Exception:
        restore = await client.get(kinds.DOMAINS, name)
        restored = [{**t, "state": "unused"} if t.get("token") == token else t
                    for t in (restore.get("status") or {}).get("deployTokenStatuses") or []]
        await client.update(kinds.DOMAINS, {**restore, "status": {**restore.get("status", {}),
                                                                  "deployTokenStatuses": restored}},
                            subresource="status")
        raise
