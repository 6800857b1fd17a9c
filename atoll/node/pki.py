"""A node's key material, created once by ``atoll init`` and only read afterwards.

* every node: ``<dataDir>/pki/domain.key`` — the domain's RSA key (``domainKeyData``, PKCS#1);
* master / autonomy: the cluster CA, the API server's serving certificate, the admin
  credentials and the service-account signing key (:func:`atoll.pki.ensure_pki`);
* lite, written by registration (:mod:`atoll.node.registration`): ``domain.crt`` (Kuscia's domain
  certificate, also the agent's log-serving certificate), ``node.crt`` (the lite's API client
  certificate, ``CN=system:node:<domain>``), ``ca.crt`` (the master CA) and ``master.pub``.

Every private file is written atomically with mode 0600 in a 0700 directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.files import private_dir, write_atomic
from atoll.node.config import ConfigError, NodeConfig, domain_key
from atoll.pki import PKI, ensure_pki

LOOPBACK = ("127.0.0.1", "localhost", "0.0.0.0", "::1", "::")


@dataclass(frozen=True, slots=True)
class NodePKI:
    directory: Path

    @property
    def domain_key(self) -> Path:
        return self.directory / "domain.key"

    @property
    def domain_cert(self) -> Path:
        return self.directory / "domain.crt"

    @property
    def node_cert(self) -> Path:
        return self.directory / "node.crt"

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def master_pub(self) -> Path:
        return self.directory / "master.pub"

    @property
    def registration(self) -> Path:
        """Written last by a successful registration: its presence means "registered"."""
        return self.directory / "registration.json"


def node_pki(config: NodeConfig) -> NodePKI:
    return NodePKI(config.data_dir / "pki")


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def init_pki(config: NodeConfig) -> list[Path]:
    """Create the node's key material (``atoll init``); returns the files written."""
    directory = private_dir(config.data_dir / "pki")
    pki = NodePKI(directory)
    written: list[Path] = []
    if not pki.domain_key.exists():
        write_atomic(pki.domain_key, key_pem(domain_key(config)))
        written.append(pki.domain_key)
    if config.mode in ("master", "autonomy"):
        master = PKI(directory)
        if not master.ca_cert.exists():
            written.append(master.ca_cert)
        ensure_pki(directory, extra_hosts=server_hosts(config))
    return written


def server_hosts(config: NodeConfig) -> tuple[str, ...]:
    """Names the serving certificate carries beyond 127.0.0.1/localhost: the listen address
    (unless loopback or a wildcard) and ``apiserver.certSANs``."""
    own = () if config.api_host in LOOPBACK else (config.api_host,)
    return tuple(dict.fromkeys((*own, *config.cert_sans)))


def check_pki(config: NodeConfig) -> None:
    """``atoll start`` refuses a node whose key material ``atoll init`` did not create — except a
    node deployed from ``atoll init --output-format configmap`` (``pki.createOnStart``), whose data
    directory only exists in its pod: its first start creates the PKI, once."""
    pki = node_pki(config)
    if (config.extra.get("pki") or {}).get("createOnStart") is True and not pki.domain_key.exists():
        init_pki(config)
    missing = [pki.domain_key]
    if config.mode in ("master", "autonomy"):
        missing.append(PKI(pki.directory).ca_cert)
    for path in missing:
        if not path.exists():
            raise ConfigError(f"{path} does not exist: create the node with `atoll init` first")
    stored = serialization.load_pem_private_key(pki.domain_key.read_bytes(), password=None)
    if stored.public_key().public_numbers() != domain_key(config).public_key().public_numbers():  # type: ignore[union-attr]
        raise ConfigError(f"domainKeyData does not match {pki.domain_key} (the node's key must not change)")
