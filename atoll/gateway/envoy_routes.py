"""The two route configurations (served over RDS, so a token roll never drains a connection).

``internal-route`` (the domain's own processes, and the second stage of inbound traffic):
one virtual host per local Service (``<svc>.<ns>.svc``), the handshake host, and a catch-all
that sends ``*.<peer>.svc`` through the route to that peer with Kuscia's headers, CONNECT
included (forwarded, not terminated: the tunnel ends at the destination's service).

``external-route`` (what partners reach): the handshake host without token, then one route per
valid (source, token) that restores the Host from ``Kuscia-Host``, strips the token, overwrites
``Kuscia-Source`` with the identity that matched and adds the route's ``requestHeadersToAdd``;
everything else is ``401 unauthorized.``.
"""

from __future__ import annotations

import re
from typing import Any

from atoll.gateway.model import NOOP_TOKEN, GatewayModel, InboundRoute, LocalService, PeerRoute

JSON = dict[str, Any]
HANDSHAKE_CLUSTER = "handshake"
INTERNAL_HOP = "internal-il"
ERROR_HEADER = "Kuscia-Error-Message"
OVERWRITE = "OVERWRITE_IF_EXISTS_OR_ADD"
XFCC = "x-forwarded-client-cert"


def _instance(model: GatewayModel) -> str:
    return f"Domain {model.domain}.{model.instance}"


def _header(key: str, value: str, action: str = OVERWRITE) -> JSON:
    return {"header": {"key": key, "value": value}, "append_action": action}


def _host_regex(domains: tuple[str, ...], name: str = "[^.:/]+") -> str:
    alternatives = "|".join(re.escape(d) for d in domains)
    return f"^{name}\\.({alternatives})\\.svc(:[0-9]+)?$"


def _regex(name: str, pattern: str) -> JSON:
    return {"name": name, "string_match": {"safe_regex": {"regex": pattern}}}


def _exact(name: str, value: str) -> JSON:
    return {"name": name, "string_match": {"exact": value}}


def _direct(status: int, body: str, message: str) -> JSON:
    return {
        "direct_response": {"status": status, "body": {"inline_string": body}},
        "response_headers_to_add": [_header(ERROR_HEADER, message)],
    }


def _forward(cluster: str, *, connect: bool = False, terminate: bool = False, **extra: Any) -> JSON:
    route: JSON = {"cluster": cluster, "timeout": "0s", **extra}
    if connect:
        upgrade: JSON = {"upgrade_type": "CONNECT"}
        if terminate:
            upgrade["connect_config"] = {}
        route["upgrade_configs"] = [upgrade]
    return route


# -- internal-route ---------------------------------------------------------------------------


def _service_routes(model: GatewayModel, svc: LocalService) -> list[JSON]:
    routes: list[JSON] = []
    if svc.access_domains is not None:
        allowed = "|".join(re.escape(d) for d in (model.domain, *svc.access_domains))
        denied = _direct(
            403,
            "forbidden.",
            f"{_instance(model)}: domain %REQ(kuscia-source)% may not access service {svc.name} (access-domain)",
        )
        matches: tuple[JSON, ...] = ({"connect_matcher": {}}, {"prefix": "/"})
        for match in matches:
            routes.append({"match": {**match, "headers": [
                {"name": "kuscia-source", "present_match": True},
                {**_regex("kuscia-source", f"^({allowed})$"), "invert_match": True},
            ]}, **denied})  # fmt: skip
    routes.append({"match": {"connect_matcher": {}}, "route": _forward(svc.cluster, connect=True, terminate=True)})
    routes.append({"match": {"prefix": "/"}, "route": _forward(svc.cluster)})
    return routes


def _service_hosts(model: GatewayModel) -> list[JSON]:
    hosts: list[JSON] = []
    seen: set[str] = set()
    for svc in sorted(model.services, key=lambda s: (s.name, s.port)):
        base = f"{svc.name}.{svc.namespace}.svc"
        first = base not in seen
        seen.add(base)
        domains = [f"{base}:{svc.port}"]
        if first:
            domains += [base, f"{base}:*", svc.name]
            for alias in model.domain_aliases:
                domains += [f"{svc.name}.{alias}.svc", f"{svc.name}.{alias}.svc:*"]
        for alias in svc.aliases:
            if alias not in domains:
                domains.append(alias)
        hosts.append({"name": f"service-{svc.name}-{svc.port}", "domains": domains,
                      "routes": _service_routes(model, svc)})  # fmt: skip
    return hosts


def _peer_routes(model: GatewayModel, peer: PeerRoute) -> list[JSON]:
    headers = [
        _header("Kuscia-Source", model.domain),
        _header("Kuscia-Host", "%REQ(:authority)%"),
        _header("Kuscia-Origin-Source", model.domain, "ADD_IF_ABSENT"),
        _header("x-interconn-protocol", "kuscia"),
    ]
    if peer.token is not None:
        headers.append(_header("Kuscia-Token", peer.token))
    authority = [_regex(":authority", _host_regex((peer.destination, *peer.aliases)))]
    extra: JSON = {}
    if peer.path_prefix:
        extra["prefix_rewrite"] = peer.path_prefix.rstrip("/") + "/"
    return [
        {"match": {"connect_matcher": {}, "headers": authority}, "route": _forward(peer.cluster, connect=True),
         "request_headers_to_add": headers},
        {"match": {"prefix": "/", "headers": authority}, "route": _forward(peer.cluster, **extra),
         "request_headers_to_add": headers},
    ]  # fmt: skip


def internal_route(model: GatewayModel) -> JSON:
    own = (model.domain, *model.domain_aliases)
    handshake = {
        "name": "handshake",
        "domains": [f"kuscia-handshake.{d}.svc{p}" for d in own for p in ("", ":*")],
        "routes": [{"match": {"prefix": "/"}, "route": _forward(HANDSHAKE_CLUSTER)}],
    }
    routes: list[JSON] = []
    for peer in sorted(model.peers, key=lambda p: p.destination):
        routes += _peer_routes(model, peer)
    not_found = _direct(404, "service not found.", f'{_instance(model)}: Service "%REQ(:authority)%" not found.')
    no_route = _direct(
        404,
        "no route.",
        f'{_instance(model)}: no route from {model.domain} to "%REQ(:authority)%" '
        "(no ClusterDomainRoute to that domain, or it is not ready)",
    )
    own_hosts = [_regex(":authority", _host_regex(own))]
    matches: tuple[JSON, ...] = ({"connect_matcher": {}}, {"prefix": "/"})
    routes += [{"match": {**match, "headers": own_hosts}, **not_found} for match in matches]
    routes += [{"match": match, **no_route} for match in matches]
    catch_all = {"name": "egress", "domains": ["*"], "routes": routes}
    return {"name": "internal-route", "virtual_hosts": [handshake, *_service_hosts(model), catch_all]}


# -- external-route ---------------------------------------------------------------------------


def _inbound_routes(model: GatewayModel, inbound: InboundRoute) -> list[JSON]:
    routes: list[JSON] = []
    add = [_header("Kuscia-Source", inbound.source)] + [_header(k, v) for k, v in inbound.headers_to_add]
    tokens: tuple[str | None, ...] = (None,) if NOOP_TOKEN in inbound.tokens else inbound.tokens
    for token in tokens:
        headers = [_exact("kuscia-source", inbound.source)]
        if token is not None:
            headers.append(_exact("kuscia-token", token))
        if inbound.client_cert_cn:  # set by Envoy from the verified client certificate (never by the client)
            subject = f'(.*[;,])?Subject="CN={re.escape(inbound.source)}"([;,].*)?'  # RE2 full match
            headers.append({"name": XFCC, "string_match": {"safe_regex": {"regex": subject}}})
        common: JSON = {"request_headers_to_remove": ["kuscia-token", XFCC], "request_headers_to_add": add}
        routes.append({"match": {"connect_matcher": {}, "headers": headers},
                       "route": _forward(INTERNAL_HOP, connect=True), **common})  # fmt: skip
        routes.append({"match": {"prefix": "/", "headers": headers},
                       "route": _forward(INTERNAL_HOP, host_rewrite_header="kuscia-host"), **common})  # fmt: skip
    return routes


def external_route(model: GatewayModel) -> JSON:
    own = (model.domain, *model.domain_aliases)
    routes: list[JSON] = [
        {"match": {"prefix": "/", "headers": [_regex("kuscia-host", _host_regex(own, "kuscia-handshake"))]},
         "route": _forward(HANDSHAKE_CLUSTER)},
    ]  # fmt: skip
    for inbound in sorted(model.inbound, key=lambda i: i.source):
        routes += _inbound_routes(model, inbound)
    refused = _direct(401, "unauthorized.", f"{_instance(model)}<--%REQ(kuscia-host)% return http code 401.")
    routes += [{"match": {"connect_matcher": {}}, **refused}, {"match": {"prefix": "/"}, **refused}]
    return {"name": "external-route", "virtual_hosts": [{"name": "external", "domains": ["*"], "routes": routes}]}
