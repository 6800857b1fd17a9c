"""The Node object an agent registers: labels, taint, capacity, conditions, node info, addresses.

Capacity is auto-detected (CPUs usable by this process, physical memory, a pod count of 110 like
the kubelet) unless ``capacity`` overrides it; allocatable is capacity minus ``reservedResources``.
Pressure conditions are computed the kubelet's way from what an unprivileged process can see:
available memory under 100 Mi, less than 10 % free space on the data directory, or fewer than
5 % of ``pid_max`` left.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
from fractions import Fraction
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.api.constants import LABEL_NODE_NAMESPACE, LABEL_RUNTIME
from atoll.api.quantity import format_quantity, parse_quantity
from atoll.api.timestamps import now_time

JSON = dict[str, Any]
KUBELET_VERSION = "v1.32.0-atoll"
RUNTIME_VERSION = "runp://0.1"
AGENT_TAINT = {"key": "kuscia.secretflow/agent", "value": "v1", "effect": "NoSchedule"}
LABEL_STOP_TIMESTAMP = "node.kuscia.secretflow/stop-timestamp"
DEFAULT_PODS = 110
MEMORY_PRESSURE_BYTES = 100 * 2**20
DISK_PRESSURE_FREE = 0.10
PID_PRESSURE_FREE = 0.05


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def detect_capacity(config: AgentConfig) -> dict[str, str]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = _meminfo().get("MemTotal", 0)
    disk = shutil.disk_usage(config.data_dir).total
    detected = {
        "cpu": str(cpus),
        "memory": format_quantity(Fraction(memory // 2**10 * 2**10), "Ki"),
        "pods": str(DEFAULT_PODS),
        "ephemeral-storage": format_quantity(Fraction(disk // 2**10 * 2**10), "Ki"),
    }
    for key, value in config.capacity.items():
        if key == "ephemeralStorage":
            key = "ephemeral-storage"
        if key in ("cpu", "memory", "pods", "ephemeral-storage", "storage"):
            detected[key] = str(value)
    return detected


def allocatable(capacity: dict[str, str], reserved: dict[str, str]) -> dict[str, str]:
    out = dict(capacity)
    for key, value in reserved.items():
        if key in out:
            left = max(parse_quantity(out[key]) - parse_quantity(value), Fraction(0))
            out[key] = format_quantity(left, out[key])
    return out


def pressures(config: AgentConfig) -> dict[str, tuple[bool, str]]:
    """Condition type → (under pressure, message)."""
    info = _meminfo()
    available = info.get("MemAvailable", MEMORY_PRESSURE_BYTES + 1)
    usage = shutil.disk_usage(config.data_dir)
    try:
        pid_max = int(open("/proc/sys/kernel/pid_max").read())
        pids = sum(1 for name in os.listdir("/proc") if name.isdigit())
    except (OSError, ValueError):
        pid_max, pids = 1, 0
    memory = available < MEMORY_PRESSURE_BYTES
    disk = usage.free < usage.total * DISK_PRESSURE_FREE
    pid = pid_max - pids < pid_max * PID_PRESSURE_FREE
    # live numbers only under pressure: a message that changes at every check would make every
    # check a status write (kubelet's messages are fixed too)
    return {
        "MemoryPressure": (memory, f"only {available // 2**20} Mi memory available" if memory
                           else "agent has sufficient memory available"),
        "DiskPressure": (disk, f"only {usage.free // 2**20} Mi free on the data dir" if disk
                         else "agent has no disk pressure"),
        "PIDPressure": (pid, f"{pids} of {pid_max} process ids in use" if pid
                        else "agent has sufficient PID available"),
    }


_PRESSURE_REASONS = {
    "MemoryPressure": ("KubeletHasSufficientMemory", "KubeletHasInsufficientMemory"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "KubeletHasDiskPressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "KubeletHasInsufficientPID"),
}


def conditions(config: AgentConfig, previous: list[JSON], *, ready: bool = True) -> list[JSON]:
    """Node conditions; ``lastTransitionTime`` kept from ``previous`` while the status is unchanged."""
    now = now_time()
    old = {c.get("type"): c for c in previous}

    def cond(kind: str, status: bool, reason: str, message: str) -> JSON:
        value = "True" if status else "False"
        before = old.get(kind) or {}
        moved = before.get("status") != value
        return {
            "type": kind,
            "status": value,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now if moved else before.get("lastTransitionTime", now),
            "reason": reason,
            "message": message,
        }

    out = [cond("NetworkUnavailable", False, "RouteCreated", "the node shares the host network")]
    for kind, (pressure, message) in pressures(config).items():
        out.append(cond(kind, pressure, _PRESSURE_REASONS[kind][pressure], message))
    if ready:
        out.append(cond("Ready", True, "KubeletReady", "agent is posting ready status"))
    else:
        out.append(cond("Ready", False, "KubeletNotReady", "agent is stopping"))
    return out


def node_labels(config: AgentConfig) -> dict[str, str]:
    arch = node_labels_arch()
    return {
        "kubernetes.io/role": "agent",
        "kubernetes.io/apiVersion": KUBELET_VERSION,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": config.name,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        "domain": config.domain,
        LABEL_NODE_NAMESPACE: config.domain,
        LABEL_RUNTIME: config.runtime,
        **config.labels,
    }


def node_info() -> JSON:
    uname = platform.uname()
    os_image = "Linux"
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    machine_id = ""
    try:
        machine_id = open("/etc/machine-id").read().strip()
    except OSError:
        pass
    return {
        "machineID": machine_id,
        "systemUUID": machine_id,
        "bootID": _boot_id(),
        "kernelVersion": uname.release,
        "osImage": os_image,
        "containerRuntimeVersion": RUNTIME_VERSION,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux",
        "architecture": node_labels_arch(),
    }


def node_labels_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _boot_id() -> str:
    try:
        return open("/proc/sys/kernel/random/boot_id").read().strip()
    except OSError:
        return ""


def node_status(config: AgentConfig, previous: JSON | None, log_port: int, *, ready: bool = True) -> JSON:
    capacity = detect_capacity(config)
    return {
        "capacity": capacity,
        "allocatable": allocatable(capacity, config.reserved),
        "conditions": conditions(config, list((previous or {}).get("conditions") or []), ready=ready),
        "addresses": [
            {"type": "InternalIP", "address": config.address},
            {"type": "Hostname", "address": socket.gethostname()},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}},
        "nodeInfo": node_info(),
    }


def node_object(config: AgentConfig, log_port: int) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": config.name, "labels": node_labels(config)},
        "spec": {"taints": [dict(AGENT_TAINT)]},
        "status": node_status(config, None, log_port),
    }


def comparable(status: JSON) -> JSON:
    """The status without heartbeat times: what decides whether a push is needed now."""
    conds = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or []]
    return {**status, "conditions": conds}


def with_conditions(conditions: list[JSON], extra: list[JSON], previous: JSON | None) -> list[JSON]:
    """``conditions`` plus ``extra`` (stamped with heartbeat/transition times like the others)."""
    now = now_time()
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or ()}
    out = list(conditions)
    for cond in extra:
        before = old.get(cond["type"]) or {}
        moved = before.get("status") != cond["status"]
        out.append({**cond, "lastHeartbeatTime": now,
                    "lastTransitionTime": now if moved else before.get("lastTransitionTime", now)})
    return out
