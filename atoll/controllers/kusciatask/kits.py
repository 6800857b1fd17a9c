"""Party kits: what one party of a KusciaTask runs, resolved from its AppImage (reference §1.8, §2.5).

A kit is the AppImage's deploy template for the party's role merged with the party's own
``template`` (replicas, restartPolicy, per-container name/command/args/workingDir, env appended,
resources merged), the image (``name:tag``; a DomainAppImage of the same name in the party's
namespace overrides tag and id), the config templates, the merged container ports and the pod
names ``<task>-<role>-<i>`` (``<task>-<i>`` without a role).

Template selection (Kuscia's): the first deploy template whose comma-separated ``role`` list
contains the role; else the template without a role; else, if the party has no role, the first
template; else an error naming the party and the AppImage.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atoll.api.kuscia_tasks import select_deploy_template

JSON = dict[str, Any]
SERVICED_SCOPES = ("Cluster", "Domain")
MAX_NAME = 63


class KitError(ValueError):
    """A party cannot be built; the message names the party and the cause."""


@dataclass(frozen=True, slots=True)
class PortSpec:
    name: str
    protocol: str = "HTTP"
    scope: str = "Local"

    @property
    def serviced(self) -> bool:
        return self.scope in SERVICED_SCOPES


@dataclass(slots=True)
class PartyKit:
    index: int
    domain: str
    role: str
    app_image: str
    image: str
    image_id: str
    replicas: int
    min_reserved_pods: int
    spec: JSON
    """The merged Kuscia pod spec (restartPolicy, containers, affinity)."""
    config_templates: dict[str, str] = field(default_factory=dict)
    ports: list[PortSpec] = field(default_factory=list)
    network_policy: JSON | None = None
    pod_names: list[str] = field(default_factory=list)
    bandwidth_limits: dict[str, int] = field(default_factory=dict)
    """destination domain → KiB/s (``party.bandwidthLimits``), annotated on the party's Services."""

    @property
    def key(self) -> str:
        """``domain`` or ``domain/role`` (a domain may take several roles in one task)."""
        return f"{self.domain}/{self.role}" if self.role else self.domain

    @property
    def serviced_ports(self) -> list[PortSpec]:
        return [p for p in self.ports if p.serviced]


def pod_name(task: str, role: str, index: int) -> str:
    return f"{task}-{role}-{index}" if role else f"{task}-{index}"


def service_name(pod: str, port: str) -> str:
    """Kuscia's ``<pod>-<port>`` (``svc-`` prefix if it starts with a digit; hashed when too long)."""
    name = f"{pod}-{port}"
    if name[:1].isdigit():
        name = f"svc-{name}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(pod.encode()).hexdigest()[:16]
    head = f"svc-{pod}"[: MAX_NAME - len(port) - 18].rstrip("-")
    return f"{head}-{digest}-{port}"


def egress_service_name(service: str, domain: str) -> str:
    """Name of the egress Service for ``service`` of ``domain`` in a consuming domain (contract C2)."""
    name = f"{service}-{domain}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_NAME - 17].rstrip('-')}-{digest}"


def select_template(app_image: JSON, role: str) -> JSON:
    template = select_deploy_template(app_image, role)
    if template is not None:
        return template
    name = (app_image.get("metadata") or {}).get("name")
    raise KitError(f"AppImage {name!r} has no deploy template for role {role!r}")


def merge_container(base: JSON, override: JSON) -> JSON:
    merged = copy.deepcopy(base)
    for key in ("name", "command", "args", "workingDir"):
        if override.get(key):
            merged[key] = copy.deepcopy(override[key])
    if override.get("env"):
        merged["env"] = [*(merged.get("env") or []), *copy.deepcopy(override["env"])]
    resources = override.get("resources") or {}
    if resources:
        target = merged.setdefault("resources", {})
        for part in ("requests", "limits"):
            if resources.get(part):
                target[part] = {**(target.get(part) or {}), **resources[part]}
    return merged


def merge_spec(template_spec: JSON, party_spec: JSON) -> JSON:
    spec = copy.deepcopy(template_spec)
    if party_spec.get("restartPolicy"):
        spec["restartPolicy"] = party_spec["restartPolicy"]
    containers = list(spec.get("containers") or [])
    overrides = list(party_spec.get("containers") or [])
    spec["containers"] = [
        merge_container(c, overrides[i]) if i < len(overrides) else c for i, c in enumerate(containers)
    ]
    if not spec["containers"] and overrides:
        spec["containers"] = copy.deepcopy(overrides)
    return spec


def merged_ports(spec: JSON, party: str) -> list[PortSpec]:
    ports: list[PortSpec] = []
    seen: set[str] = set()
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            name = str(port.get("name") or "")
            if not name:
                raise KitError(f"party {party}: container {container.get('name')!r} has a port without a name")
            if name in seen:
                raise KitError(f"party {party}: duplicate port name {name!r}")
            seen.add(name)
            ports.append(PortSpec(name, str(port.get("protocol") or "HTTP"), str(port.get("scope") or "Local")))
    return ports


def image_of(app_image: JSON, domain_app_image: JSON | None) -> tuple[str, str]:
    """``name:tag`` and image id; the DomainAppImage's first image overrides tag and id."""
    image = (app_image.get("spec") or {}).get("image") or {}
    tag, image_id = str(image.get("tag") or "latest"), str(image.get("id") or "")
    overrides = ((domain_app_image or {}).get("spec") or {}).get("images") or []
    if overrides:
        tag = str(overrides[0].get("tag") or tag)
        image_id = str(overrides[0].get("id") or image_id)
    return f"{image.get('name')}:{tag}", image_id


Lookup = Callable[[str, str | None], JSON | None]
"""``(name, namespace)`` → object from an informer cache (``None`` namespace: cluster-scoped)."""


def build_kit(task: JSON, index: int, party: JSON, app_images: Lookup, domain_app_images: Lookup) -> PartyKit:
    task_name = str(task["metadata"]["name"])
    domain, role = str(party.get("domainID") or ""), str(party.get("role") or "")
    label = f"{domain}/{role}" if role else domain
    ref = str(party.get("appImageRef") or "")
    app_image = app_images(ref, None)
    if app_image is None:
        raise KitError(f"party {label}: AppImage {ref!r} not found")
    template = select_template(app_image, role)
    party_template = party.get("template") or {}
    spec = merge_spec(template.get("spec") or {}, party_template.get("spec") or {})
    if not spec.get("containers"):
        raise KitError(f"party {label}: AppImage {ref!r} deploy template has no containers")
    replicas = int(party_template.get("replicas") or template.get("replicas") or 1)
    min_pods = int(party.get("minReservedPods") or 0)
    image, image_id = image_of(app_image, domain_app_images(ref, domain))
    return PartyKit(
        index=index,
        domain=domain,
        role=role,
        app_image=ref,
        image=image,
        image_id=image_id,
        replicas=replicas,
        min_reserved_pods=min_pods if 0 < min_pods <= replicas else replicas,
        spec=spec,
        config_templates=dict((app_image.get("spec") or {}).get("configTemplates") or {}),
        ports=merged_ports(spec, label),
        network_policy=template.get("networkPolicy"),
        pod_names=[pod_name(task_name, role, i) for i in range(replicas)],
        bandwidth_limits={
            str(b.get("destinationID")): int(b.get("limitKBps") or 0)
            for b in party.get("bandwidthLimits") or []
            if b.get("destinationID")
        },
    )


def build_kits(task: JSON, app_images: Lookup, domain_app_images: Lookup) -> list[PartyKit]:
    parties = (task.get("spec") or {}).get("parties") or []
    if not parties:
        raise KitError("the task has no parties")
    return [build_kit(task, i, party, app_images, domain_app_images) for i, party in enumerate(parties)]


def access_domains(kits: list[PartyKit], owner: PartyKit, port: PortSpec) -> list[str]:
    """Domains allowed to reach ``port`` of ``owner``'s pods (Kuscia's access-domain rule)."""
    if port.scope == "Domain":
        return [owner.domain]
    policy = owner.network_policy or {}
    ingresses = policy.get("ingresses") or []
    if not ingresses:
        return sorted({k.domain for k in kits})
    roles: set[str] = set()
    for ingress in ingresses:
        if any((p or {}).get("port") == port.name for p in ingress.get("ports") or []):
            roles.update(str(r) for r in ((ingress.get("from") or {}).get("roles") or []))
    return sorted({k.domain for k in kits if k.role in roles} | {owner.domain})
