"""Strategies of the other built-in kinds: Secrets (``stringData``), Services (cluster IP, node
ports, defaults), ResourceQuotas and CRDs (empty initial status), and the kinds that differ only
in their printer or name rule (RBAC names are path segments)."""

from __future__ import annotations

import base64
import ipaddress
import random
from dataclasses import dataclass
from typing import Any

from atoll.api.registry import ResourceDef
from atoll.apiserver.registry.strategies.base import KindStrategy
from atoll.apiserver.tables import printers
from atoll.apiserver.tables.columns import Printer

JSON = dict[str, Any]

_SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")


@dataclass(frozen=True)
class SecretStrategy(KindStrategy):
    printer: Printer | None = printers.SECRET

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        obj.setdefault("type", "Opaque")
        self.defaults_on_update(rd, obj)

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()


@dataclass(frozen=True)
class ServiceStrategy(KindStrategy):
    printer: Printer | None = printers.SERVICE
    name_rule: str = "label"
    returns_deleted_object: bool = True

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            ip = str(_SERVICE_NET[random.randrange(10, _SERVICE_NET.num_addresses - 1)])
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        node_ports = spec["type"] in ("NodePort", "LoadBalancer")
        if node_ports:
            spec.setdefault("externalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
                if node_ports and not port.get("nodePort"):  # kubectl shows PORT(S) as 80:31234/TCP
                    port["nodePort"] = random.randrange(30000, 32768)
        obj.setdefault("status", {"loadBalancer": {}})


@dataclass(frozen=True)
class EmptyStatusStrategy(KindStrategy):
    """Kinds whose status starts empty and changes only through ``/status`` (ResourceQuota, CRD)."""

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        obj["status"] = {}
