"""Envoy clusters, listeners and the bootstrap of one gateway (pure functions of the model).

Listeners: ``external`` (partners and lites; plaintext, TLS or mTLS per ``protocol``),
``internal`` (the domain's processes, 127.0.0.1), ``internal-il`` (an Envoy internal listener:
the second stage of inbound traffic, after the Host was restored from ``Kuscia-Host``) and one
``egress-*`` TCP listener per egress port (contract C2, on ``egress_host``: 127.0.0.1 unless a
RunK lite's task pods must reach it from the institution's network), which tunnels the bytes with CONNECT
into ``internal-il`` so they follow the route (and its token) to the peer. Every TCP listener has
``enable_reuse_port: false``: a second Envoy on the same port fails instead of sharing it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from atoll.gateway.envoy_routes import ERROR_HEADER, HANDSHAKE_CLUSTER, INTERNAL_HOP, external_route, internal_route
from atoll.gateway.model import EgressPort, GatewayModel, LocalService, PeerRoute
from atoll.gateway.xds import CLUSTER, LISTENER, ROUTE

JSON = dict[str, Any]
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
TUNNEL_HOP = "internal-il-h2"
ADS_CLUSTER = "xds"


def _seconds(value: int) -> str:
    return f"{value}s"


def _address(host: str, port: int) -> JSON:
    return {"socket_address": {"address": host, "port_value": port}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _downstream_protocol(idle: int) -> JSON:
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": HTTP_OPTIONS,
            "common_http_protocol_options": {"idle_timeout": _seconds(idle)},
            "use_downstream_protocol_config": {
                "http_protocol_options": {},
                "http2_protocol_options": {"allow_connect": True},
            },
        }
    }


def _cluster(name: str, endpoints: list[JSON], idle: int, *, dns: bool = False, **extra: Any) -> JSON:
    return {
        "name": name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]},
        "typed_extension_protocol_options": _downstream_protocol(idle),
        **extra,
    }


def _endpoint(host: str, port: int) -> JSON:
    return {"endpoint": {"address": _address(host, port)}}


def _upstream_tls(sni: str = "", cert: str = "", key: str = "", ca: str = "") -> JSON:
    common: JSON = {}
    if cert and key:
        common["tls_certificates"] = [
            {"certificate_chain": {"inline_string": cert}, "private_key": {"inline_string": key}}
        ]
    if ca:
        common["validation_context"] = {"trusted_ca": {"inline_string": ca}}
    context: JSON = {"@type": UPSTREAM_TLS, "common_tls_context": common}
    if sni:
        context["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def service_cluster(svc: LocalService, idle: int) -> JSON:
    extra: JSON = {"transport_socket": _upstream_tls()} if svc.upstream_tls else {}
    endpoints = [_endpoint(h, p) for h, p in svc.endpoints]
    return _cluster(svc.cluster, endpoints, idle, dns=any(not _is_ip(h) for h, _ in svc.endpoints), **extra)


HEALTH_INTERVAL = "15s"


def _health_check(source: str, peer: PeerRoute) -> JSON:
    """Kuscia's route health check: GET <prefix>/handshake on the peer's gateway every 15 s."""
    path = "/" + "/".join(p for p in (peer.path_prefix.strip("/"), "handshake") if p)
    headers = [("Kuscia-Host", f"kuscia-handshake.{peer.destination}.svc"), ("Kuscia-Source", source)]
    return {
        "timeout": "1s",
        "interval": HEALTH_INTERVAL,
        "unhealthy_interval": "3s",
        "unhealthy_threshold": 1,
        "healthy_threshold": 1,
        "http_health_check": {
            "path": path,
            "request_headers_to_add": [{"header": {"key": k, "value": v}} for k, v in headers],
        },
    }


def peer_cluster(peer: PeerRoute, idle: int, source: str = "") -> JSON:
    sni = peer.host if not _is_ip(peer.host) else ""
    tls = _upstream_tls(sni, peer.client_cert_pem, peer.client_key_pem, peer.ca_pem)
    extra: JSON = {"transport_socket": tls} if peer.tls else {}
    if source:
        extra["health_checks"] = [_health_check(source, peer)]
    return _cluster(peer.cluster, [_endpoint(peer.host, peer.port)], idle, dns=not _is_ip(peer.host), **extra)


def clusters(model: GatewayModel) -> list[JSON]:
    idle = model.listeners.idle_timeout_seconds
    internal = [{"endpoint": {"address": {"envoy_internal_address": {"server_listener_name": INTERNAL_HOP}}}}]
    h2_only = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": HTTP_OPTIONS,
            "common_http_protocol_options": {"idle_timeout": _seconds(idle)},
            "explicit_http_config": {"http2_protocol_options": {"allow_connect": True}},
        }
    }
    out = [
        _cluster(INTERNAL_HOP, internal, idle),
        {**_cluster(TUNNEL_HOP, internal, idle), "typed_extension_protocol_options": h2_only},
        _cluster(HANDSHAKE_CLUSTER, [_endpoint("127.0.0.1", model.handshake_port)], idle),
    ]
    out += [service_cluster(s, idle) for s in model.services]
    out += [peer_cluster(p, idle, model.domain) for p in model.peers]
    return out


def _access_log(model: GatewayModel, name: str) -> list[JSON]:
    if not model.listeners.access_log_dir:
        return []
    path = f"{model.listeners.access_log_dir}/{name}.log"
    return [{"name": "envoy.access_loggers.file", "typed_config": {"@type": FILE_LOG, "path": path}}]


def _local_replies(model: GatewayModel) -> JSON:
    """503/502/504 that Envoy itself generates name the upstream (never rewrites upstream replies)."""
    mappers = []
    for code in (502, 503, 504):
        message = (
            f"Domain {model.domain}.{model.instance}: upstream %UPSTREAM_CLUSTER% unavailable (%RESPONSE_CODE_DETAILS%)"
        )
        mappers.append({
            "filter": {"status_code_filter": {"comparison": {"op": "EQ", "value": {
                "default_value": code, "runtime_key": f"atoll.local_reply.{code}"}}}},
            "headers_to_add": [{"header": {"key": ERROR_HEADER, "value": message},
                                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
            "body_format_override": {"text_format_source": {"inline_string": message + "\n"}},
        })  # fmt: skip
    return {"mappers": mappers}


def _hcm(model: GatewayModel, stat: str, route: str, *, client_certs: bool = False) -> JSON:
    idle = _seconds(model.listeners.idle_timeout_seconds)
    # external: a client's own x-forwarded-client-cert is dropped; Envoy sets it from a verified cert
    xfcc: JSON = (
        {"forward_client_cert_details": "SANITIZE_SET", "set_current_client_cert_details": {"subject": True}}
        if client_certs
        else {}
    )
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": HCM,
            "stat_prefix": stat,
            "codec_type": "AUTO",
            "server_name": "kuscia-gateway",
            "rds": {"route_config_name": route, "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
            "upgrade_configs": [{"upgrade_type": "CONNECT"}, {"upgrade_type": "websocket"}],
            "http2_protocol_options": {"allow_connect": True},
            "stream_idle_timeout": idle,
            "request_timeout": "0s",
            "common_http_protocol_options": {"idle_timeout": idle},
            "access_log": _access_log(model, stat),
            "local_reply_config": _local_replies(model),
            **xfcc,
        },
    }


def _external_tls(model: GatewayModel) -> JSON | None:
    opts = model.listeners
    if opts.protocol == "NOTLS":
        return None
    context: JSON = {
        "@type": DOWNSTREAM_TLS,
        "common_tls_context": {
            "tls_certificates": [{
                "certificate_chain": {"inline_string": opts.server_cert_pem},
                "private_key": {"inline_string": opts.server_key_pem},
            }],
        },
    }  # fmt: skip
    if opts.protocol == "MTLS":
        context["require_client_certificate"] = True
        context["common_tls_context"]["validation_context"] = {"trusted_ca": {"inline_string": opts.client_ca_pem}}
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def egress_listener(model: GatewayModel, egress: EgressPort) -> JSON:
    return {
        "name": f"egress-{egress.name}",
        "address": _address(model.listeners.egress_host, egress.port),
        "enable_reuse_port": False,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": TCP_PROXY,
                "stat_prefix": f"egress_{egress.name}",
                "cluster": TUNNEL_HOP,
                "tunneling_config": {"hostname": f"{egress.host}:{egress.remote_port}"},
                "idle_timeout": _seconds(model.listeners.idle_timeout_seconds),
                "access_log": _access_log(model, "egress"),
            },
        }]}],
    }  # fmt: skip


def listeners(model: GatewayModel) -> list[JSON]:
    opts = model.listeners
    external_chain: JSON = {"filters": [_hcm(model, "external", "external-route", client_certs=True)]}
    tls = _external_tls(model)
    if tls is not None:
        external_chain["transport_socket"] = tls
    out: list[JSON] = [
        {"name": "external", "address": _address(opts.external_host, opts.external_port),
         "enable_reuse_port": False, "filter_chains": [external_chain]},
        {"name": "internal", "address": _address(opts.internal_host, opts.internal_port),
         "enable_reuse_port": False, "filter_chains": [{"filters": [_hcm(model, "internal", "internal-route")]}]},
        {"name": INTERNAL_HOP,
         "internal_listener": {}, "filter_chains": [{"filters": [_hcm(model, "internal_il", "internal-route")]}]},
    ]  # fmt: skip
    out += [egress_listener(model, e) for e in sorted(model.egress, key=lambda e: e.port)]
    return out


def snapshot(model: GatewayModel) -> dict[str, list[JSON]]:
    return {
        CLUSTER: clusters(model),
        LISTENER: listeners(model),
        ROUTE: [internal_route(model), external_route(model)],
    }


def bootstrap(node_id: str, cluster: str, ads_port: int) -> JSON:
    """The static part: admin on 127.0.0.1 (port from --admin-address-path), ADS, internal listeners."""
    return {
        "node": {"id": node_id, "cluster": cluster},
        "admin": {"address": _address("127.0.0.1", 0)},
        "bootstrap_extensions": [{
            "name": "envoy.bootstrap.internal_listener",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3."
                             "InternalListener"},
        }],
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": ADS_CLUSTER}}]},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"clusters": [{
            "name": ADS_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": ADS_CLUSTER,
                                "endpoints": [{"lb_endpoints": [_endpoint("127.0.0.1", ads_port)]}]},
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}},
        }]},
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                             "downstream_connections.v3.DownstreamConnectionsConfig",
                             "max_active_downstream_connections": 32768},
        }]},
    }  # fmt: skip
