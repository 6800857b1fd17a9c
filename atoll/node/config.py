"""The node configuration file: ``kuscia.yaml`` field names where they exist, plus Atoll's own.

``mode``, ``domainID``, ``domainKeyData``, ``logLevel``, ``protocol``, ``datastoreEndpoint``,
``masterEndpoint``, ``liteDeployToken``, ``runtime``, ``capacity``, ``reservedResources``,
``enableWorkloadApprove`` keep Kuscia's meaning. Atoll adds ``dataDir`` (state, certificates,
logs), ``apiserver`` (``host``/``port`` of the embedded API server), ``gateway.externalPort``
(the node's public port, Kuscia's 1080), ``datamesh.httpPort``/``grpcPort`` (Kuscia's 8070/8071)
and ``kubeconfig`` (a lite agent joining a master directly, without registration).

An absolute ``dataDir`` is looked up in the RunP mount view first when ``ATOLL_SANDBOX_ROOT`` is
set, so a node started as a RunP pod (the seed 003 Deployments run on an Atoll cluster) keeps its
state in the volume mounted there, as it would in a container.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api.constants import domain_id_problem

MODES = ("master", "lite", "autonomy")
PROTOCOLS = ("NOTLS", "TLS", "MTLS")
RUNTIMES = ("runp", "runc", "runk")
DEFAULT_EXTERNAL_PORT = 1080
DEFAULT_DATAMESH_PORTS = (8070, 8071)
DEFAULT_JOB_GC_HOURS = 720.0
"""Kuscia's ``garbageCollection.kusciaJobGC.durationHours`` default (30 days)."""


def in_sandbox(path: Path) -> Path:
    """``path`` seen through a RunP pod's mount view (``ATOLL_SANDBOX_ROOT``), when it is mounted there."""
    root = os.environ.get("ATOLL_SANDBOX_ROOT")
    if not root or not path.is_absolute():
        return path
    for mounted in (path, *path.parents[:-1]):
        if (Path(root) / mounted.relative_to("/")).exists():
            return Path(root) / path.relative_to("/")
    return path


class ConfigError(ValueError):
    """A configuration file or flag that cannot be used; the message names the field."""


@dataclass(slots=True)
class NodeConfig:
    mode: str
    domain_id: str
    data_dir: Path
    api_host: str = "127.0.0.1"
    api_port: int = 6443
    datastore_endpoint: str = ""
    log_level: str = "INFO"
    protocol: str = "NOTLS"
    domain_key_data: str = ""
    kubeconfig: str = ""
    master_endpoint: str = ""
    lite_deploy_token: str = ""
    runtime: str = "runp"
    controllers: tuple[str, ...] | None = None  # master: controllers (and "scheduler") to run; None = all
    enable_workload_approve: bool = False  # enableWorkloadApprove
    job_gc_duration_hours: float = DEFAULT_JOB_GC_HOURS  # garbageCollection.kusciaJobGC.durationHours
    extra: dict[str, Any] = field(default_factory=dict)
    cert_sans: tuple[str, ...] = ()
    """``apiserver.certSANs``: extra DNS names / IPs of the serving certificate (a master behind a
    load balancer or reached by several names); the certificate is reissued when one is missing."""
    apiserver_external: bool = False
    """``apiserver: external``: a master's controllers, scheduler and gateway run against the API
    server of ``kubeconfig`` instead of an embedded one (Kuscia's "K8s controller mode")."""

    def to_yaml(self) -> str:
        doc: dict[str, Any] = {
            "mode": self.mode,
            "domainID": self.domain_id,
            "dataDir": str(self.data_dir),
            "logLevel": self.log_level,
            "protocol": self.protocol,
            "domainKeyData": self.domain_key_data,
        }
        if self.mode in ("master", "autonomy"):
            doc["datastoreEndpoint"] = self.datastore_endpoint
            doc["apiserver"] = "external" if self.apiserver_external else {"host": self.api_host, "port": self.api_port}
            if self.cert_sans and not self.apiserver_external:
                doc["apiserver"]["certSANs"] = list(self.cert_sans)
        if self.mode in ("lite", "autonomy"):
            doc["runtime"] = self.runtime
        if self.mode == "lite" and not self.kubeconfig:
            doc["masterEndpoint"] = self.master_endpoint
            doc["liteDeployToken"] = self.lite_deploy_token
        if self.controllers is not None:
            doc["controllers"] = list(self.controllers)
        if self.kubeconfig:
            doc["kubeconfig"] = self.kubeconfig
        if self.master_endpoint and "masterEndpoint" not in doc:
            doc["masterEndpoint"] = self.master_endpoint
        if self.lite_deploy_token and "liteDeployToken" not in doc:
            doc["liteDeployToken"] = self.lite_deploy_token
        if self.enable_workload_approve:
            doc["enableWorkloadApprove"] = True
        doc.update(self.extra)
        if self.job_gc_duration_hours != DEFAULT_JOB_GC_HOURS:
            gc = dict(doc.get("garbageCollection") or {})
            gc["kusciaJobGC"] = {**(gc.get("kusciaJobGC") or {}), "durationHours": self.job_gc_duration_hours}
            doc["garbageCollection"] = gc
        return yaml.safe_dump(doc, sort_keys=False)


def validate_domain_id(domain_id: str) -> None:
    """The same rule as Domain admission (``atoll.api.constants.domain_id_problem``)."""
    problem = domain_id_problem(domain_id)
    if problem:
        raise ConfigError(f"domainID: {problem}")


def generate_domain_key() -> str:
    """``domainKeyData``: base64 of a PEM RSA 2048 private key (as Kuscia's generate_rsa_key.sh)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _key_data(key)


def _key_data(key: rsa.RSAPrivateKey) -> str:
    """base64 of the PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"), the only form Kuscia accepts."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return base64.b64encode(pem).decode()


def parse_domain_key(raw: bytes, what: str = "domainKeyData") -> rsa.RSAPrivateKey:
    """An RSA private key (≥ 2048 bits) from PEM (PKCS#1 or PKCS#8) or the base64 of such a PEM."""
    text = raw.strip()
    if not text.startswith(b"-----BEGIN"):
        try:
            text = base64.b64decode(text, validate=False).strip()
        except ValueError:
            raise ConfigError(f"{what}: neither a PEM key nor the base64 of one") from None
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{what}: must be an RSA private key (got {type(key).__name__})")
    if key.key_size < 2048:
        raise ConfigError(f"{what}: RSA key of {key.key_size} bits; at least 2048 are required")
    return key


def domain_key_from_file(path: Path) -> str:
    """``--domain-key-file``: the key file's key as ``domainKeyData`` (PKCS#1, base64)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--domain-key-file: cannot read {path}: {exc.strerror}") from None
    return _key_data(parse_domain_key(raw, f"--domain-key-file {path}"))


def domain_key(config: NodeConfig) -> rsa.RSAPrivateKey:
    if not config.domain_key_data:
        raise ConfigError("domainKeyData: required (run `atoll init` to generate one)")
    return parse_domain_key(config.domain_key_data.encode())


def check_master_endpoint(url: str) -> str:
    """``masterEndpoint``: ``http(s)://host[:port][/path]``; returned without a trailing ``/``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"masterEndpoint: must be http(s)://host[:port][/path] (got {url!r})")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"masterEndpoint: invalid port in {url!r}") from None
    return url.rstrip("/")


def external_port(config: NodeConfig) -> int:
    """``gateway.externalPort``: the node's public port (Kuscia's 1080)."""
    return int((config.extra.get("gateway") or {}).get("externalPort", DEFAULT_EXTERNAL_PORT))


def datamesh_ports(config: NodeConfig) -> tuple[int, int]:
    """``datamesh.httpPort`` / ``datamesh.grpcPort`` of a lite (Kuscia's 8070 / 8071)."""
    dm = config.extra.get("datamesh") or {}
    return int(dm.get("httpPort", DEFAULT_DATAMESH_PORTS[0])), int(dm.get("grpcPort", DEFAULT_DATAMESH_PORTS[1]))


def _controllers(value: object) -> tuple[str, ...] | None:
    """``controllers:`` absent or ``["*"]`` = all; otherwise the names to run (like kube's --controllers)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"controllers: must be a list of controller names (got {value!r})")
    return None if "*" in value else tuple(value)


def _job_gc_hours(doc: dict[str, Any]) -> float:
    """``garbageCollection.kusciaJobGC.durationHours`` (a positive number of hours)."""
    gc = doc.get("garbageCollection") or {}
    job_gc = gc.get("kusciaJobGC") if isinstance(gc, dict) else None
    value = job_gc.get("durationHours", DEFAULT_JOB_GC_HOURS) if isinstance(job_gc, dict) else DEFAULT_JOB_GC_HOURS
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"garbageCollection.kusciaJobGC.durationHours: must be a positive number (got {value!r})")
    return float(value)


def load_config(path: Path) -> NodeConfig:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (create one with `atoll init`)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {path} must be a YAML mapping")
    mode = str(doc.get("mode", "")).lower()
    if mode not in MODES:
        raise ConfigError(f"mode: must be one of {', '.join(MODES)} (got {doc.get('mode')!r})")
    domain_id = str(doc.get("domainID") or "")
    validate_domain_id(domain_id)
    data_dir = doc.get("dataDir")
    if not data_dir:
        raise ConfigError("dataDir: required")
    api = doc.get("apiserver") or {}
    external = api == "external"
    if external:
        api = {}
        if not doc.get("kubeconfig"):
            raise ConfigError("kubeconfig: required with apiserver: external (the API server to run against)")
    elif not isinstance(api, dict):
        raise ConfigError(f"apiserver: must be a mapping (host, port) or \"external\" (got {api!r})")
    known = {
        "mode",
        "domainID",
        "dataDir",
        "apiserver",
        "datastoreEndpoint",
        "logLevel",
        "protocol",
        "domainKeyData",
        "kubeconfig",
        "masterEndpoint",
        "liteDeployToken",
        "runtime",
        "controllers",
        "enableWorkloadApprove",
    }
    try:
        port = int(api.get("port", 6443))
    except (TypeError, ValueError):
        raise ConfigError(f"apiserver.port: must be an integer (got {api.get('port')!r})") from None
    sans = api.get("certSANs") or []
    if not isinstance(sans, list) or not all(isinstance(h, str) and h for h in sans):
        raise ConfigError(f"apiserver.certSANs: must be a list of DNS names or IP addresses (got {sans!r})")
    protocol = str(doc.get("protocol") or "NOTLS").upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol: must be one of {', '.join(PROTOCOLS)} (got {doc.get('protocol')!r})")
    runtime = str(doc.get("runtime") or "runp").lower()
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime: must be one of {', '.join(RUNTIMES)} (got {doc.get('runtime')!r})")
    master_endpoint = str(doc.get("masterEndpoint") or "")
    if master_endpoint:
        master_endpoint = check_master_endpoint(master_endpoint)
    return NodeConfig(
        mode=mode,
        domain_id=domain_id,
        data_dir=in_sandbox(path.parent / str(data_dir)).resolve(),
        api_host=str(api.get("host", "127.0.0.1")),
        api_port=port,
        datastore_endpoint=str(doc.get("datastoreEndpoint") or ""),
        log_level=str(doc.get("logLevel") or "INFO"),
        protocol=protocol,
        domain_key_data=str(doc.get("domainKeyData") or ""),
        kubeconfig=str(doc.get("kubeconfig") or ""),
        master_endpoint=master_endpoint,
        lite_deploy_token=str(doc.get("liteDeployToken") or ""),
        runtime=runtime,
        controllers=_controllers(doc.get("controllers")),
        enable_workload_approve=doc.get("enableWorkloadApprove") is True,
        job_gc_duration_hours=_job_gc_hours(doc),
        apiserver_external=external,
        cert_sans=tuple(sans),
        extra={k: v for k, v in doc.items() if k not in known},
    )
