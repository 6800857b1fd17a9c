"""Parsing Kubernetes REST paths into a ``Route`` (resource, namespace, name, subresource).

``/api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]]``, ``/apis/{g}/{v}/...`` and the cluster-scoped
forms. ``/api/v1/namespaces/{name}/status|finalize`` are Namespace subresources: a third segment
that is a namespaced resource of the group-version means "collection in a namespace", anything
else means "subresource of the namespace". ``…/{name}/proxy/{path...}`` keeps the path after
``proxy`` as the route's ``tail`` (relayed by kinds whose strategy serves a ``proxy`` subresource).
"""

from __future__ import annotations

from dataclasses import dataclass

from atoll.api import errors
from atoll.api.registry import Registry, ResourceDef

PROXY = "proxy"


@dataclass(frozen=True, slots=True)
class Route:
    rd: ResourceDef
    namespace: str | None  # None: cluster-scoped, or all namespaces for a namespaced list
    name: str | None
    subresource: str
    tail: str = ""  # the path after ``…/proxy/``


def _unknown() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


def parse_resource_path(registry: Registry, core: bool, parts: list[str]) -> Route:
    """``parts`` are the path segments after ``/api`` (``["v1", ...]``) or ``/apis`` (``[g, v, ...]``)."""
    if core:
        if not parts or parts[0] != "v1":
            raise _unknown()
        group, version, rest = "", "v1", parts[1:]
    else:
        if len(parts) < 3:
            raise _unknown()
        group, version, rest = parts[0], parts[1], parts[2:]
    if not rest:
        raise _unknown()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        candidate = registry.get(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    tail = ""
    if len(rest) > 3 and rest[2] == PROXY:
        tail, rest = "/".join(rest[3:]), rest[:3]
    rd = registry.get(group, version, rest[0])
    if rd is None or len(rest) > 3:
        raise _unknown()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rd.subresources and sub != PROXY:
        raise _unknown()
    if rd.namespaced and namespace is None and name is not None:
        raise _unknown()
    return Route(rd, namespace, name, sub, tail)
