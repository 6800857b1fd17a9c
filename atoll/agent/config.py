"""Agent settings: Kuscia's ``capacity`` / ``reservedResources`` / ``logrotate`` plus Atoll's ``agent`` block.

Every timer has the kubelet's (or Kuscia's) default and a reason; tests shorten them.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atoll.agent.runk.settings import RunKSettings, RunKSettingsError, runk_settings


@dataclass(frozen=True, slots=True)
class Timers:
    lease_duration: float = 180
    """``Lease.spec.leaseDurationSeconds`` (Kuscia: 180 s, where kubelet uses 40 s)."""
    lease_renew: float = 10.0
    """Lease renew interval (kubelet and Kuscia: 10 s)."""
    status_check: float = 10.0
    """How often node conditions are recomputed; a change is pushed at once."""
    status_max_age: float = 300.0
    """Node status is pushed at least this often even when unchanged (kubelet: 5 min)."""
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    """Crash-loop back-off: 10 s doubling to 5 min (kubelet)."""
    backoff_reset: float = 600.0
    """A container that ran this long without crashing starts again from ``backoff_initial``."""
    status_debounce: float = 0.02
    """Pod status writes wait this long after a change so that bursts (created → running) are one write."""
    probe_min_period: float = 1.0
    """Lower bound on probe periods (kubelet: 1 s)."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    domain: str
    data_dir: Path
    node_name: str = ""
    capacity: dict[str, str] = field(default_factory=dict)
    """Overrides of auto-detected ``cpu``/``memory``/``pods``/``ephemeral-storage``."""
    reserved: dict[str, str] = field(default_factory=dict)
    """``reservedResources``: subtracted from capacity to give allocatable."""
    log_max_bytes: int = 512 * 2**20
    log_max_files: int = 5
    log_port: int = 0
    """Port of the ``/containerLogs`` HTTPS endpoint (0: any free port, published on the Node)."""
    address: str = "127.0.0.1"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    """CA that signs the API server's client certificate (CN ``atoll-apiserver``)."""
    timers: Timers = Timers()
    stop_pods_on_exit: bool = False
    """Kubelet semantics (False): pods keep running while the agent is down and are re-adopted."""
    labels: dict[str, str] = field(default_factory=dict)
    pod_namespace: str | None = None
    """Watch only this namespace's pods (a registered lite: its domain, all its identity may read)."""
    shared_namespaces: tuple[str, ...] = ("default",)
    """Namespaces besides the domain's own whose pods this node runs (``agent.sharedNamespaces``);
    pods of any other namespace (another domain's) are refused, like the kubelet's NodeRestriction."""
    pod_env: dict[str, str] = field(default_factory=dict)
    """Added to every container's environment (a pod's own ``env`` wins): the lite's
    ``DATAMESH_ADDR`` / ``DATAMESH_GRPC_ADDR`` (contract C2)."""
    serving_csr_timeout: float = 30.0
    """Without ``tls_cert``: seconds to wait for a serving certificate requested through
    ``certificates.k8s.io`` (0: do not ask)."""
    runtime: str = "runp"
    """``runp`` (local processes) or ``runk`` (pods in the institution's cluster, see ``runk``)."""
    runk: RunKSettings | None = None

    def runs_namespace(self, namespace: str) -> bool:
        return namespace == self.domain or namespace in self.shared_namespaces

    @property
    def name(self) -> str:
        return self.node_name or default_node_name(self.domain)

    @property
    def root(self) -> Path:
        return self.data_dir / "agent"


def default_node_name(domain: str) -> str:
    """``<domain>-<hostname>``: unique per domain on a shared machine (Kuscia uses the container hostname)."""
    host = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().lower()).strip("-") or "host"
    return f"{domain}-{host}"[:63].rstrip("-")


RUNTIMES = ("runp", "runk")


def from_node_config(domain: str, data_dir: Path, extra: dict[str, Any], runtime: str = "runp") -> AgentConfig:
    """Build the agent settings from a node config's fields outside the common ones."""
    if runtime not in RUNTIMES:
        raise RunKSettingsError(f"runtime: {runtime!r} is not available (use {' or '.join(RUNTIMES)})")
    agent = extra.get("agent") or {}
    rotate = extra.get("logrotate") or {}
    timers = agent.get("timers") or {}
    tls = agent.get("tls") or {}
    return AgentConfig(
        domain=domain,
        data_dir=data_dir,
        node_name=str(agent.get("nodeName") or ""),
        capacity={k: str(v) for k, v in (extra.get("capacity") or {}).items()},
        reserved={k: str(v) for k, v in (extra.get("reservedResources") or {}).items()},
        log_max_bytes=int(rotate.get("maxFileSizeMB", 512)) * 2**20,
        log_max_files=int(rotate.get("maxFiles", 5)),
        log_port=int(agent.get("logPort", 0)),
        tls_cert=_path(tls.get("certFile"), data_dir / "pki" / "kubelet.crt"),
        tls_key=_path(tls.get("keyFile"), data_dir / "pki" / "kubelet.key"),
        client_ca=_path(tls.get("clientCAFile"), data_dir / "pki" / "ca.crt"),
        timers=Timers(**{_snake(k): float(v) for k, v in timers.items()}),
        stop_pods_on_exit=bool(agent.get("stopPodsOnExit", False)),
        shared_namespaces=tuple(str(n) for n in agent.get("sharedNamespaces", ("default",))),
        serving_csr_timeout=float(agent.get("servingCSRTimeout", 30.0)),
        runtime=runtime,
        runk=runk_settings(extra) if runtime == "runk" else None,
    )


def _path(value: Any, default: Path) -> Path | None:
    path = Path(value) if value else default
    return path if path.exists() else None


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
