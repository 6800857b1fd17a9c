"""The ``runk`` block of a lite's config (Kuscia's field names) and Atoll's additions.

Kuscia: ``namespace`` (required: where the pods run in the institution's cluster),
``kubeconfigFile`` (empty: the in-cluster ServiceAccount), ``dnsServers`` (set as the pods'
``dnsConfig.nameservers`` with ``dnsPolicy: None``), ``enableLogging`` (Kuscia copies logs to
``logDirectory``; Atoll always reads them live through ``pods/log``, so the flag only decides
whether ``kubectl logs`` on the master is served), ``logDirectory``/``logMaxFiles``/``logMaxSize``
(accepted, unused: no copy is kept). Atoll adds:

- ``hostAddress``: the address institution pods use to reach this lite (its gateway egress ports
  and DataMesh); every ``127.0.0.1`` in the pod's environment (``TASK_CLUSTER_DEFINE``,
  ``DATAMESH_ADDR``, …) is rewritten to it. Empty (default): unchanged, for an institution
  cluster on the same host (the tests).
- ``labels`` / ``annotations``: added to every pod created in the institution's cluster.
- ``unschedulableTimeoutSeconds``: a pod the institution's scheduler leaves unplaced this long
  is deleted and the domain's pod fails with ``FailedSchedulingPod`` (default 300).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class RunKSettingsError(ValueError):
    """A ``runk`` field that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class RunKSettings:
    namespace: str
    kubeconfig_file: str = ""
    dns_servers: tuple[str, ...] = ()
    enable_logging: bool = True
    host_address: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    unschedulable_timeout: float = 300.0


def _strings(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RunKSettingsError(f"runk.{name}: must be a mapping of strings")
    return {str(k): str(v) for k, v in value.items()}


def runk_settings(extra: dict[str, Any]) -> RunKSettings:
    """Parse ``runk:`` from the fields of a node config outside the common ones."""
    block = extra.get("runk")
    if not isinstance(block, dict):
        raise RunKSettingsError("runk: required for runtime runk (at least runk.namespace)")
    namespace = str(block.get("namespace") or "")
    if not namespace:
        raise RunKSettingsError("runk.namespace: required (the namespace of the institution's cluster)")
    if not LABEL.match(namespace):
        raise RunKSettingsError(f"runk.namespace: {namespace!r} is not an RFC 1123 label")
    dns = block.get("dnsServers") or []
    if not isinstance(dns, list):
        raise RunKSettingsError("runk.dnsServers: must be a list of addresses")
    timeout = block.get("unschedulableTimeoutSeconds", 300)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise RunKSettingsError(f"runk.unschedulableTimeoutSeconds: must be a positive number (got {timeout!r})")
    return RunKSettings(
        namespace=namespace,
        kubeconfig_file=str(block.get("kubeconfigFile") or ""),
        dns_servers=tuple(str(s) for s in dns),
        enable_logging=block.get("enableLogging", True) is not False,
        host_address=str(block.get("hostAddress") or ""),
        labels=_strings(block.get("labels"), "labels"),
        annotations=_strings(block.get("annotations"), "annotations"),
        unschedulable_timeout=float(timeout),
    )
