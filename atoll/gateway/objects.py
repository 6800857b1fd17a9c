"""API objects → :class:`GatewayModel` parts (pure functions; no I/O).

* Services of the gateway's namespace (and their Endpoints) → local services; a Service labelled
  ``atoll.io/egress: "true"`` is instead an egress port (contract C2).
* DomainRoutes with this domain as source → peer routes (the newest token, decrypted);
  with this domain as destination → inbound routes (the newest two tokens, decrypted).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.gateway import crypto
from atoll.gateway.drstatus import auth_type, spec, tokens
from atoll.gateway.model import NOOP_TOKEN, EgressPort, InboundRoute, LocalService, PeerRoute

log = logging.getLogger(__name__)
JSON = dict[str, Any]
EGRESS_LABEL = "atoll.io/egress"
EGRESS_HOST = "atoll.io/egress-host"
EGRESS_PORT = "atoll.io/egress-port"
EGRESS_DOMAIN = "atoll.io/egress-domain"
ACCESS_DOMAIN = "kuscia.secretflow/access-domain"


def _meta(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def is_egress(service: JSON) -> bool:
    return (_meta(service).get("labels") or {}).get(EGRESS_LABEL) == "true"


def egress_ports(services: Iterable[JSON]) -> list[EgressPort]:
    out = []
    for svc in services:
        if not is_egress(svc):
            continue
        annotations = _meta(svc).get("annotations") or {}
        ports = (svc.get("spec") or {}).get("ports") or []
        host, domain = annotations.get(EGRESS_HOST), annotations.get(EGRESS_DOMAIN)
        try:
            remote, port = int(annotations.get(EGRESS_PORT, "")), int(ports[0]["port"])
        except (ValueError, TypeError, KeyError, IndexError):
            log.warning("egress service %s: needs %s and spec.ports[0].port", _meta(svc).get("name"), EGRESS_PORT)
            continue
        if not host or not domain:
            log.warning("egress service %s: needs %s and %s", _meta(svc).get("name"), EGRESS_HOST, EGRESS_DOMAIN)
            continue
        name = f"{_meta(svc).get('namespace')}-{_meta(svc).get('name')}"
        out.append(EgressPort(name, port, str(host), remote, str(domain)))
    return out


def _endpoint_addresses(endpoints: JSON | None, port_name: str, port: int) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = subset.get("ports") or []
        match = next((p for p in ports if (p.get("name") or "") == port_name), None)
        if match is None and len(ports) == 1:
            match = ports[0]
        if match is None:
            continue
        for address in subset.get("addresses") or []:
            found.append((str(address.get("ip")), int(match.get("port") or port)))
    return tuple(sorted(set(found)))


def local_services(services: Iterable[JSON], endpoints_of: dict[str, JSON]) -> list[LocalService]:
    out = []
    for svc in services:
        if is_egress(svc):
            continue
        meta = _meta(svc)
        name, namespace = str(meta.get("name")), str(meta.get("namespace"))
        access = (meta.get("annotations") or {}).get(ACCESS_DOMAIN)
        domains = tuple(d.strip() for d in str(access).split(",") if d.strip()) if access else None
        for port in (svc.get("spec") or {}).get("ports") or []:
            number = int(port.get("port") or 0)
            addresses = _endpoint_addresses(endpoints_of.get(name), str(port.get("name") or ""), number)
            out.append(LocalService(name, namespace, number, addresses, domains))
    return out


def _decrypted(key: rsa.RSAPrivateKey, token: JSON) -> str | None:
    try:
        return crypto.header_token(crypto.decrypt(key, str(token.get("token") or "")))
    except crypto.TokenCryptoError as exc:
        log.warning("token revision %s: %s", token.get("revision"), exc)
        return None


def peer_route(
    dr: JSON, key: rsa.RSAPrivateKey, master_domain: str, master_endpoint: tuple[str, int, bool] | None
) -> PeerRoute | None:
    s = spec(dr)
    destination = str(s.get("destination") or "")
    endpoint = s.get("endpoint") or {}
    ports = endpoint.get("ports") or [{}]
    host, port, tls = str(endpoint.get("host") or ""), int(ports[0].get("port") or 0), bool(ports[0].get("isTLS"))
    if (not host or not port) and destination == master_domain and master_endpoint is not None:
        host, port, tls = master_endpoint
    if not host or not port:
        return None
    token: str | None = None
    if auth_type(dr) == "Token":
        listed = tokens(dr)
        token = _decrypted(key, listed[-1]) if listed else None
    aliases = ("master",) if destination == master_domain else ()
    cert, key_pem, ca = _mtls(s, key)
    prefix, port_name = str(ports[0].get("pathPrefix") or ""), str(ports[0].get("name") or "")
    return PeerRoute(destination, host, port, token, tls, prefix, aliases, cert, key_pem, ca, port_name)


def _b64(value: object) -> str:
    try:
        return base64.b64decode(str(value or "")).decode() if value else ""
    except (ValueError, UnicodeDecodeError):
        log.warning("mTLSConfig: a value is not base64 PEM")
        return ""


def _mtls(s: JSON, key: rsa.RSAPrivateKey) -> tuple[str, str, str]:
    """Client certificate, its key (default: the domain key) and CA of a route's ``mTLSConfig``."""
    config = s.get("mTLSConfig") or {}
    cert = _b64(config.get("sourceClientCert"))
    if not cert:
        return "", "", _b64(config.get("tlsCA"))
    key_pem = _b64(config.get("sourceClientPrivateKey")) or crypto.private_key_pem(key)
    return cert, key_pem, _b64(config.get("tlsCA"))


def inbound_route(dr: JSON, key: rsa.RSAPrivateKey) -> InboundRoute:
    s = spec(dr)
    headers = tuple(sorted((str(k), str(v)) for k, v in (s.get("requestHeadersToAdd") or {}).items()))
    if auth_type(dr) != "Token":
        return InboundRoute(str(s.get("source")), (NOOP_TOKEN,), headers, client_cert_cn=auth_type(dr) == "MTLS")
    values = [_decrypted(key, t) for t in tokens(dr)[-2:]]
    return InboundRoute(str(s.get("source")), tuple(v for v in values if v), headers)
