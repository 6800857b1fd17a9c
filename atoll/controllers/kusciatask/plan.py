"""The task's network plan: which ports each party needs, which Services and egress Services exist,
and what each pod is told (``TASK_CLUSTER_DEFINE``, ``ALLOCATED_PORTS``), per contract C2.

* Every port of every pod gets a port from its domain's allocator (``status.allocatedPorts``
  entry of the party, key ``<pod>/<port>``).
* Every ``Cluster``/``Domain``-scoped port gets a headless Service ``<pod>-<port>`` in the party's
  namespace.
* Every ``Cluster``-scoped Service another task domain may reach (Kuscia's access-domain rule)
  gets an **egress Service** in that consuming domain, on a port from the consuming domain's
  allocator; those ports are recorded in an ``allocatedPorts`` entry with role ``EGRESS_ROLE``.
* A pod's cluster define lists, per party and serviced port, one endpoint per pod: own-domain
  services as ``127.0.0.1:<port>``, reachable peer services as ``127.0.0.1:<egress port>``, and
  anything else under Kuscia's name ``<svc>.<domain>.svc[:port]`` (which is also kept, for every
  endpoint, in the pod annotation ``atoll.io/kuscia-service-hosts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.controllers.kusciatask.kits import PartyKit, PortSpec, access_domains, egress_service_name, service_name

JSON = dict[str, Any]
EGRESS_ROLE = "atoll.io/egress"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ServicePlan:
    kit: PartyKit
    pod: str
    pod_index: int
    port: PortSpec
    name: str
    number: int
    access: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EgressPlan:
    consumer: str
    """Domain whose namespace holds the egress Service (whose gateway listens on ``number``)."""
    target: ServicePlan
    name: str
    number: int

    @property
    def host(self) -> str:
        return f"{self.target.name}.{self.target.kit.domain}.svc"


def party_port_counts(kits: list[PartyKit]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kit in kits:
        counts[kit.domain] = counts.get(kit.domain, 0) + len(kit.ports) * kit.replicas
    return counts


def egress_needs(kits: list[PartyKit]) -> list[tuple[str, PartyKit, int, PortSpec]]:
    """(consumer domain, owner kit, pod index, port) of every egress Service the task needs."""
    needs: list[tuple[str, PartyKit, int, PortSpec]] = []
    for kit in kits:
        for port in kit.serviced_ports:
            if port.scope != "Cluster":
                continue
            for consumer in access_domains(kits, kit, port):
                if consumer == kit.domain:
                    continue
                needs.extend((consumer, kit, i, port) for i in range(kit.replicas))
    return needs


def egress_key(kit: PartyKit, pod_index: int, port: PortSpec) -> str:
    return f"{egress_service_name(service_name(kit.pod_names[pod_index], port.name), kit.domain)}/{port.name}"


def allocated_ports_status(kits: list[PartyKit], ports: dict[str, list[int]]) -> list[JSON]:
    """``status.allocatedPorts`` from the allocator's answer (consumed in the order of the needs)."""
    queue = {domain: list(numbers) for domain, numbers in ports.items()}
    entries: list[JSON] = []
    for kit in kits:
        named = {}
        for pod in kit.pod_names:
            for port in kit.ports:
                named[f"{pod}/{port.name}"] = queue[kit.domain].pop(0)
        entries.append({"domainID": kit.domain, "role": kit.role, "namedPort": named})
    egress: dict[str, dict[str, int]] = {}
    for consumer, kit, index, port in egress_needs(kits):
        egress.setdefault(consumer, {})[egress_key(kit, index, port)] = queue[consumer].pop(0)
    entries.extend({"domainID": d, "role": EGRESS_ROLE, "namedPort": named} for d, named in egress.items())
    return entries


def wanted_ports(kits: list[PartyKit]) -> dict[str, int]:
    counts = party_port_counts(kits)
    for consumer, *_ in egress_needs(kits):
        counts[consumer] = counts.get(consumer, 0) + 1
    return counts


def ports_of(status: list[JSON], domain: str, role: str) -> dict[str, int]:
    for entry in status:
        if entry.get("domainID") == domain and (entry.get("role") or "") == role:
            return {str(k): int(v) for k, v in (entry.get("namedPort") or {}).items()}
    return {}


class Plan:
    """Services, egress Services and per-pod views of one task, from its kits and allocated ports."""

    def __init__(self, kits: list[PartyKit], allocated: list[JSON]) -> None:
        self.kits = kits
        self.allocated = allocated
        self.services: list[ServicePlan] = []
        for kit in kits:
            numbers = ports_of(allocated, kit.domain, kit.role)
            for i, pod in enumerate(kit.pod_names):
                for port in kit.serviced_ports:
                    self.services.append(
                        ServicePlan(kit, pod, i, port, service_name(pod, port.name), numbers[f"{pod}/{port.name}"],
                                    tuple(access_domains(kits, kit, port)))
                    )
        self.egress: list[EgressPlan] = []
        by_target = {(s.kit.index, s.pod_index, s.port.name): s for s in self.services}
        for consumer, kit, index, port in egress_needs(kits):
            key = egress_key(kit, index, port)
            number = ports_of(allocated, consumer, EGRESS_ROLE)[key]
            target = by_target[(kit.index, index, port.name)]
            self.egress.append(EgressPlan(consumer, target, key.split("/", 1)[0], number))
        self._egress_by = {(e.consumer, e.target.name, e.target.kit.domain): e for e in self.egress}

    def pod_ports(self, kit: PartyKit, pod: str) -> dict[str, int]:
        numbers = ports_of(self.allocated, kit.domain, kit.role)
        return {p.name: numbers[f"{pod}/{p.name}"] for p in kit.ports}

    def allocated_ports_json(self, kit: PartyKit, pod: str) -> JSON:
        numbers = self.pod_ports(kit, pod)
        return {
            "ports": [
                {"name": p.name, "port": numbers[p.name], "scope": p.scope, "protocol": p.protocol} for p in kit.ports
            ]
        }

    def endpoint(self, viewer: str, service: ServicePlan) -> str:
        if service.kit.domain == viewer:
            return f"{LOOPBACK}:{service.number}"
        egress = self._egress_by.get((viewer, service.name, service.kit.domain))
        if egress is not None:
            return f"{LOOPBACK}:{egress.number}"
        return kuscia_endpoint(service)

    def cluster_define(self, kit: PartyKit, pod_index: int) -> JSON:
        parties = []
        for party in self.kits:
            services = []
            for port in party.serviced_ports:
                mine = [s for s in self.services if s.kit is party and s.port.name == port.name]
                services.append({"portName": port.name, "endpoints": [self.endpoint(kit.domain, s) for s in mine]})
            parties.append({"name": party.domain, "role": party.role, "services": services})
        return {"parties": parties, "selfPartyIdx": kit.index, "selfEndpointIdx": pod_index}

    def kuscia_hosts(self) -> dict[str, str]:
        """Kuscia's endpoint name of every Service, keyed by ``<domain>/<service>``."""
        return {f"{s.kit.domain}/{s.name}": kuscia_endpoint(s) for s in self.services}


def kuscia_endpoint(service: ServicePlan) -> str:
    host = f"{service.name}.{service.kit.domain}.svc"
    return host if service.port.scope == "Cluster" else f"{host}:{service.number}"
