"""Pure parts of the gateway: token crypto, Envoy config rules, object parsing, Ready reasons,
handshake failure classification."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api.timestamps import format_time
from atoll.controllers.domainroute.ready import ready_condition
from atoll.gateway import crypto, instance, objects
from atoll.gateway.envoy_resources import snapshot
from atoll.gateway.initiator import classify
from atoll.gateway.model import EgressPort, GatewayModel, InboundRoute, ListenerOptions, LocalService, PeerRoute
from atoll.gateway.xds import CLUSTER, LISTENER, ROUTE, pack
from atoll.node.config import ConfigError, NodeConfig
from atoll.node.gateway import gateway_options

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MODEL = GatewayModel(
    "bob", "gw-0", 1054,
    services=(LocalService("web", "bob", 80, (("127.0.0.1", 8080),)),),
    peers=(PeerRoute("carol", "10.0.0.3", 1080, "TOKEN-TO-CAROL"),),
    inbound=(InboundRoute("alice", ("TOKEN-A1", "TOKEN-A2")),),
    egress=(EgressPort("raw", 20001, "raw.carol.svc", 9000, "carol"),),
)  # fmt: skip


def test_token_halves_round_trip_with_the_kuscia_prefix() -> None:
    public = crypto.public_key_b64(KEY.public_key())
    assert crypto.decrypt(KEY, crypto.encrypt(public, b"s" * 16)) == b"s" * 16
    bare = base64.b64encode(KEY.public_key().encrypt(b"x" * 16, crypto.padding.PKCS1v15())).decode()
    with pytest.raises(crypto.TokenCryptoError, match="kuscia prefix"):
        crypto.decrypt(KEY, bare)
    cert = base64.b64encode(crypto.self_signed_cert(KEY, "bob")).decode()
    assert crypto.public_key_of_cert(cert) == public
    assert crypto.pubhash(public) == crypto.pubhash(crypto.public_key_of_cert(cert))


def test_tokens_live_only_in_route_configs() -> None:
    resources = snapshot(MODEL)
    for type_url in (CLUSTER, LISTENER):
        text = json.dumps(resources[type_url])
        assert "TOKEN" not in text, type_url
    routes = json.dumps(resources[ROUTE])
    assert all(t in routes for t in ("TOKEN-TO-CAROL", "TOKEN-A1", "TOKEN-A2"))
    for type_url, items in resources.items():
        for item in items:
            pack(type_url, item)  # every resource is a valid Envoy proto


def test_listeners_never_share_ports_and_idle_timeouts_are_long() -> None:
    listeners = snapshot(MODEL)[LISTENER]
    tcp = [item for item in listeners if "address" in item]
    assert tcp and all(item["enable_reuse_port"] is False for item in tcp)
    text = json.dumps(listeners)
    assert '"stream_idle_timeout": "1800s"' in text and '"request_timeout": "0s"' in text


def test_unparseable_resource_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Cluster 'x'"):
        pack(CLUSTER, {"name": "x", "connect_timeout": "soon"})


def test_egress_services_and_access_domains_from_objects() -> None:
    egress = {"metadata": {"name": "e", "namespace": "alice", "labels": {"atoll.io/egress": "true"},
                           "annotations": {"atoll.io/egress-host": "svc.bob.svc", "atoll.io/egress-port": "80",
                                           "atoll.io/egress-domain": "bob"}},
              "spec": {"ports": [{"port": 20005}]}}  # fmt: skip
    web = {"metadata": {"name": "web", "namespace": "alice", "annotations": {objects.ACCESS_DOMAIN: "bob, carol"}},
           "spec": {"ports": [{"name": "http", "port": 80}]}}  # fmt: skip
    eps = {"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "http", "port": 31000}]}]}
    assert objects.egress_ports([egress, web]) == [EgressPort("alice-e", 20005, "svc.bob.svc", 80, "bob")]
    assert objects.local_services([egress, web], {"web": eps}) == [
        LocalService("web", "alice", 80, (("127.0.0.1", 31000),), ("bob", "carol"))
    ]


def _route(tokens: list[dict[str, object]], **status: object) -> dict[str, object]:
    return {"metadata": {"name": "a-b"}, "spec": {"authenticationType": "Token"},
            "status": {"tokenStatus": {"tokens": tokens}, **status}}  # fmt: skip


@pytest.mark.parametrize(
    ("source", "destination", "live", "reason"),
    [
        (_route([]), None, 0, "NoLiveGateway"),
        (_route([]), None, 1, "DestinationIsNotAuthrized"),
        (_route([], isDestinationAuthorized=True), None, 1, "TokenNotGenerate"),
        (_route([{"revision": 1}]), _route([]), 1, "TokenNotGenerate"),
        (_route([{"revision": 1}]), _route([{"revision": 1, "isReady": True, "heartBeatTime": format_time(0)}]), 1,
         "HeartBeatTimeout"),
        (_route([{"revision": 1}], isDestinationUnreachable=True),
         _route([{"revision": 1, "isReady": True, "heartBeatTime": format_time(995)}]), 1, "DestinationUnreachable"),
        (_route([{"revision": 1}]), _route([{"revision": 2, "isReady": True, "heartBeatTime": format_time(995)}]), 1,
         "TokenRevisionNotMatch"),
        (_route([{"revision": 2}]), _route([{"revision": 2, "isReady": True, "heartBeatTime": format_time(995)}]), 1,
         "Success"),
    ],
)  # fmt: skip
def test_ready_reasons(
    source: dict[str, object], destination: dict[str, object] | None, live: int, reason: str
) -> None:
    cdr = {"spec": {"source": "a", "destination": "b", "authenticationType": "Token"}}
    got = ready_condition(cdr, source, destination, now=1000.0, live_source_gateways=live)
    assert got[1] == reason, got


def test_handshake_problem_on_the_route_wins_while_there_is_no_token() -> None:
    source = _route([])
    source["metadata"] = {"name": "a-b", "annotations": {"atoll.io/route-problem": "EndpointRefused: nothing at x"}}
    cdr = {"spec": {"source": "a", "destination": "b", "authenticationType": "Token"}}
    assert ready_condition(cdr, source, None, now=0, live_source_gateways=1) == (
        "False", "EndpointRefused", "nothing at x")  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "tls", "reason"),
    [
        (401, "unauthorized.", False, "HandshakeUnauthorized"),
        (503, "upstream connect error ... delayed_connect_error:_Connection_refused", False, "EndpointRefused"),
        (503, "upstream_reset_before_response_started{remote_connection_failure|TLS_error:WRONG_VERSION_NUMBER}",
         True, "TLSMismatch"),
        (503, "upstream_reset_before_response_started{connection_termination}", False, "TLSMismatch"),
        (502, "bad gateway", True, "DestinationUnreachable"),
    ],
)  # fmt: skip
def test_handshake_failures_are_classified(status: int, body: str, tls: bool, reason: str) -> None:
    assert classify(status, body, "", "127.0.0.1:1080", tls).reason == reason


def test_external_certificate_is_kept_across_starts(tmp_path: Path) -> None:
    config = NodeConfig(mode="lite", domain_id="alice", data_dir=tmp_path, protocol="TLS",
                        domain_key_data=base64.b64encode(crypto.private_key_pem(KEY).encode()).decode(),
                        extra={"gateway": {}})  # fmt: skip
    first = gateway_options(config)
    second = gateway_options(config)
    assert first is not None and second is not None
    assert first.listeners.server_cert_pem == second.listeners.server_cert_pem != ""
    assert first.listeners.protocol == "TLS" and first.listeners.idle_timeout_seconds >= 1200


def test_route_to_the_master_without_endpoint_uses_the_master_endpoint() -> None:
    dr = {"metadata": {"name": "alice-kuscia-system"},
          "spec": {"source": "alice", "destination": "kuscia-system", "authenticationType": "Token"}}  # fmt: skip
    peer = objects.peer_route(dr, KEY, "kuscia-system", ("master.example", 1080, True))
    assert peer == PeerRoute("kuscia-system", "master.example", 1080, None, True, "", ("master",))
    assert objects.peer_route(dr, KEY, "kuscia-system", None) is None  # nowhere to send it


def test_network_status_from_envoy_stats() -> None:
    stats = (
        "cluster.to-bob.membership_healthy: 0\ncluster.to-bob.membership_total: 1\ncluster.xds.membership_total: 1\n"
    )
    peers = [PeerRoute("bob", "127.0.0.1", 1080, None, port_name="http"), PeerRoute("carol", "10.0.0.3", 1080, None)]
    assert instance.network_status(stats, "alice", peers) == [
        {"name": "alice-to-bob-http", "type": "DomainRoute", "totalEndpointsCount": 1, "healthyEndpointsCount": 0},
        {"name": "alice-to-carol-default", "type": "DomainRoute", "totalEndpointsCount": 0, "healthyEndpointsCount": 0},
    ]


def _egress_addresses(model: GatewayModel) -> set[str]:
    listeners = snapshot(model)[LISTENER]
    return {item["address"]["socket_address"]["address"] for item in listeners if item["name"].startswith("egress-")}


def test_egress_listeners_bind_loopback_unless_configured() -> None:
    assert _egress_addresses(MODEL) == {"127.0.0.1"}
    wide = dataclasses.replace(MODEL, listeners=ListenerOptions(egress_host="0.0.0.0"))
    assert _egress_addresses(wide) == {"0.0.0.0"}
    internal = [item for item in snapshot(wide)[LISTENER] if item["name"] == "internal"]
    assert internal[0]["address"]["socket_address"]["address"] == "127.0.0.1"  # only egress widens


def _lite(tmp_path: Path, gateway: dict[str, object], runtime: str = "runp", **runk: str) -> NodeConfig:
    extra: dict[str, object] = {"gateway": gateway}
    if runtime == "runk":
        extra["runk"] = {"namespace": "lite-alice", **runk}
    return NodeConfig(mode="lite", domain_id="alice", data_dir=tmp_path, runtime=runtime,
                      domain_key_data=base64.b64encode(crypto.private_key_pem(KEY).encode()).decode(),
                      extra=extra)  # fmt: skip


def test_gateway_egress_address_from_the_node_config(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    default = gateway_options(_lite(tmp_path, {}))
    assert default is not None and default.listeners.egress_host == "127.0.0.1"
    pod = gateway_options(_lite(tmp_path, {"egressAddress": "10.1.2.3"}, "runk", hostAddress="10.1.2.3"))
    assert pod is not None and pod.listeners.egress_host == "10.1.2.3"
    with pytest.raises(ConfigError, match=r"gateway\.egressAddress: must be an IP address"):
        gateway_options(_lite(tmp_path, {"egressAddress": "lite.example"}))
    assert "runk.hostAddress" not in caplog.text
    gateway_options(_lite(tmp_path, {}, "runk", hostAddress="lite.lite-alice.svc"))
    assert "institution pods cannot reach the egress ports" in caplog.text
