"""The Envoy protobuf types the control plane uses (from ``xds-protos``), imported in one place.

Importing the extension modules registers their messages in the descriptor pool, so typed
configs inside an ``Any`` (``"@type": ...HttpConnectionManager``) parse with ``json_format``.
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401 (registers the type)
from envoy.extensions.bootstrap.internal_listener.v3 import internal_listener_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

_MESSAGES: dict[str, Any] = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": cluster_pb2.Cluster,
    "type.googleapis.com/envoy.config.listener.v3.Listener": listener_pb2.Listener,
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": route_pb2.RouteConfiguration,
}


def message_class(type_url: str) -> Any:
    return _MESSAGES[type_url]


def discovery_response(version: str, resources: list[Any], type_url: str, nonce: str) -> Any:
    return discovery_pb2.DiscoveryResponse(version_info=version, resources=resources, type_url=type_url, nonce=nonce)


def add_ads_servicer(servicer: Any, server: Any) -> None:
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(servicer, server)
