"""Reading what a pod refers to: ConfigMaps, Secrets and downward-API fields.

Lookups go straight to the API (one GET per object per container start, cached for the start),
so a ConfigMap created after its pod is picked up on the next attempt. A missing object that is
not ``optional`` raises :class:`ConfigMissing`; the container then waits with the kubelet's
reason ``CreateContainerConfigError`` and is retried.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.client import Client

JSON = dict[str, Any]


class ConfigMissing(Exception):
    """A referenced ConfigMap, Secret or key does not exist (kubelet: CreateContainerConfigError)."""


class Sources:
    def __init__(self, client: Client, pod: JSON) -> None:
        self.client = client
        self.pod = pod
        self.namespace = str(pod["metadata"].get("namespace") or "default")
        self._cache: dict[tuple[str, str], JSON | None] = {}

    async def _get(self, kind: str, name: str) -> JSON | None:
        key = (kind, name)
        if key not in self._cache:
            rd = kinds.CONFIGMAPS if kind == "configmap" else kinds.SECRETS
            try:
                self._cache[key] = await self.client.get(rd, name, self.namespace)
            except NotFound:
                self._cache[key] = None
        return self._cache[key]

    async def data(self, kind: str, name: str, *, optional: bool) -> dict[str, bytes] | None:
        """All keys of a ConfigMap (``data`` + ``binaryData``) or Secret, decoded to bytes."""
        obj = await self._get(kind, name)
        if obj is None:
            if optional:
                return None
            raise ConfigMissing(f'{kind} "{name}" not found')
        out: dict[str, bytes] = {}
        if kind == "configmap":
            out.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
            out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        else:
            out.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        return out

    async def key(self, kind: str, ref: JSON) -> str | None:
        optional = bool(ref.get("optional"))
        data = await self.data(kind, str(ref.get("name") or ""), optional=optional)
        if data is None:
            return None
        key = str(ref.get("key") or "")
        if key not in data:
            if optional:
                return None
            raise ConfigMissing(f'couldn\'t find key {key} in {kind.capitalize()} {self.namespace}/{ref.get("name")}')
        return data[key].decode("utf-8", "replace")


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: JSON, path: str, host_ip: str) -> str:
    """A downward-API ``fieldRef.fieldPath`` of the pod."""
    md = pod["metadata"]
    match = _SUBSCRIPT.match(path)
    if match:
        return str((md.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": md.get("name"),
        "metadata.namespace": md.get("namespace"),
        "metadata.uid": md.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": host_ip,
        "status.podIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = md.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigMissing(f"unsupported fieldPath {path!r}")


def resource_value(container: JSON, ref: JSON) -> str:
    """A ``resourceFieldRef`` (limits/requests of cpu or memory; cpu rounded up to whole cores)."""
    from math import ceil

    from atoll.api.quantity import parse_quantity

    resource = str(ref.get("resource") or "")
    section, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(section) or {}).get(name)
    if value is None:
        return "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(ceil(parse_quantity(value) / divisor))
