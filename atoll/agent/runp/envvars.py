"""A container's environment, resolved like the kubelet: ``envFrom`` first, then ``env`` in order,
``valueFrom`` (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef) and ``$(VAR)``
expansion (``$$`` escapes; unknown names are left as written)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from atoll.agent.runp.sources import ConfigMissing, Sources, field_value, resource_value

JSON = dict[str, Any]
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REF.sub(sub, text)


async def container_env(sources: Sources, container: JSON, *, host_ip: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("envFrom") or []:
        prefix = str(item.get("prefix") or "")
        for kind, field in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = item.get(field)
            if not ref:
                continue
            data = await sources.data(kind, str(ref.get("name") or ""), optional=bool(ref.get("optional")))
            for key, raw in (data or {}).items():
                if _ENV_NAME.match(prefix + key):
                    env[prefix + key] = raw.decode("utf-8", "replace")
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if source.get("fieldRef"):
            value = field_value(sources.pod, str(source["fieldRef"].get("fieldPath") or ""), host_ip)
        elif source.get("resourceFieldRef"):
            value = resource_value(container, source["resourceFieldRef"])
        elif source.get("configMapKeyRef"):
            value = await sources.key("configmap", source["configMapKeyRef"])
        elif source.get("secretKeyRef"):
            value = await sources.key("secret", source["secretKeyRef"])
        else:
            raise ConfigMissing(f"env {name}: unsupported valueFrom")
        if value is not None:
            env[name] = value
    return env
