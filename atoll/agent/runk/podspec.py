"""What RunK adds to the target pod built by :mod:`atoll.mirror.podspec`.

- the node label ``atoll.io/runk-node=<node>`` (this agent watches only its own pods, so several
  lites can share one institution namespace) and the configured ``runk.labels``/``annotations``;
- the lite's pod environment (``DATAMESH_ADDR``/``DATAMESH_GRPC_ADDR``, contract C2) where the
  container does not set it, as RunP injects it;
- with ``runk.hostAddress``, every ``127.0.0.1`` in an env value becomes that address, so the
  endpoints of ``TASK_CLUSTER_DEFINE`` (own services and the lite gateway's egress ports) and
  DataMesh are dialable from the institution's pod network without cluster DNS changes;
- with ``runk.dnsServers``, ``dnsPolicy: None`` and those name servers (Kuscia's behaviour).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atoll.agent.runk.settings import RunKSettings

JSON = dict[str, Any]
NODE_LABEL = "atoll.io/runk-node"
LOOPBACK = "127.0.0.1"


def customize(target: JSON, settings: RunKSettings, node: str, pod_env: Mapping[str, str]) -> JSON:
    md = target["metadata"]
    md["labels"] = {**settings.labels, **md.get("labels", {}), NODE_LABEL: node}
    md["annotations"] = {**settings.annotations, **md.get("annotations", {})}
    spec = target["spec"]
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            env: list[JSON] = container.setdefault("env", [])
            names = {e.get("name") for e in env}
            env.extend({"name": k, "value": v} for k, v in pod_env.items() if k not in names)
            if settings.host_address:
                for item in env:
                    if isinstance(item.get("value"), str):
                        item["value"] = item["value"].replace(LOOPBACK, settings.host_address)
    if settings.dns_servers:
        spec["dnsPolicy"] = "None"
        spec["dnsConfig"] = {**(spec.get("dnsConfig") or {}), "nameservers": list(settings.dns_servers)}
    return target
