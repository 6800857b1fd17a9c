"""What one gateway serves, as plain values: the input of the Envoy config builders.

The gateway's controllers turn API objects (Services, Endpoints, DomainRoutes, egress Services)
into a :class:`GatewayModel`; :mod:`atoll.gateway.envoy_config` turns the model into Envoy
resources. Keeping this step pure makes the routing rules testable without Envoy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOOP_TOKEN = "noop"
"""Kuscia's "any token" entry: authentication ``None`` and ``MTLS`` routes."""


@dataclass(frozen=True, slots=True)
class LocalService:
    """One port of a Service of this domain (``<name>.<namespace>.svc[:port]``)."""

    name: str
    namespace: str
    port: int
    endpoints: tuple[tuple[str, int], ...]
    access_domains: tuple[str, ...] | None = None  # None: every domain with a route may call it
    upstream_tls: bool = False
    aliases: tuple[str, ...] = ()  # extra hosts, e.g. apiserver.master.svc

    @property
    def cluster(self) -> str:
        return f"service-{self.namespace}-{self.name}-{self.port}"


@dataclass(frozen=True, slots=True)
class PeerRoute:
    """A route where this domain is the source: ``*.<destination>.svc`` goes to ``host:port``."""

    destination: str
    host: str
    port: int
    token: str | None  # base64 of the 32-byte token; None: no Kuscia-Token header (yet)
    tls: bool = False
    path_prefix: str = ""
    aliases: tuple[str, ...] = ()  # other names of the destination (``master`` for the master)
    client_cert_pem: str = ""  # MTLS: the certificate the destination issued to us
    client_key_pem: str = ""
    ca_pem: str = ""  # verify the destination's server certificate with this CA (empty: no check)
    port_name: str = ""  # the endpoint port's name (Kuscia's cluster name <src>-to-<dst>-<portName>)

    @property
    def cluster(self) -> str:
        return f"to-{self.destination}"


@dataclass(frozen=True, slots=True)
class InboundRoute:
    """A route where this domain is the destination: who may come in, with which tokens."""

    source: str
    tokens: tuple[str, ...]  # newest two; NOOP_TOKEN accepts any
    headers_to_add: tuple[tuple[str, str], ...] = ()
    client_cert_cn: bool = False  # MTLS: the client certificate's subject must be CN=<source>


@dataclass(frozen=True, slots=True)
class EgressPort:
    """Contract C2: ``<egress_host>:port`` (default 127.0.0.1) tunnels (CONNECT) to ``host:remote_port``
    of ``destination``."""

    name: str
    port: int
    host: str
    remote_port: int
    destination: str


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    external_host: str = "0.0.0.0"
    external_port: int = 1080
    internal_host: str = "127.0.0.1"
    internal_port: int = 80
    egress_host: str = "127.0.0.1"  # the egress listeners' address (RunK: one institution pods reach)
    protocol: str = "NOTLS"  # NOTLS | TLS | MTLS (external listener)
    server_cert_pem: str = ""
    server_key_pem: str = ""
    client_ca_pem: str = ""
    idle_timeout_seconds: int = 1800
    access_log_dir: str = ""


@dataclass(frozen=True, slots=True)
class GatewayModel:
    domain: str
    instance: str
    handshake_port: int
    listeners: ListenerOptions = ListenerOptions()
    services: tuple[LocalService, ...] = ()
    peers: tuple[PeerRoute, ...] = ()
    inbound: tuple[InboundRoute, ...] = ()
    egress: tuple[EgressPort, ...] = ()
    domain_aliases: tuple[str, ...] = field(default=())  # e.g. ("master",) on the master's gateway
