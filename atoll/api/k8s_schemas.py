"""Kubernetes' published schemas for the built-in kinds, in OpenAPI v3 form.

Taken from the ``kubernetes-validate`` package, which ships the upstream OpenAPI definitions per
Kubernetes release (we read v1.32). They feed ``/openapi/v3`` (so ``kubectl explain pod.spec``
works) and carry ``x-kubernetes-patch-merge-key`` / ``-patch-strategy`` for strategic merge patch.
Loaded lazily once; JSON-Schema-isms (``type: [T, "null"]``, ``$defs`` references) are rewritten
to OpenAPI v3 (``nullable``, ``#/components/schemas/…``).
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import orjson

JSON = dict[str, Any]
KUBE_VERSION = "v1.32.0"


def _to_openapi(node: Any) -> Any:
    if isinstance(node, dict):
        out: JSON = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = value.replace("#/$defs/", "#/components/schemas/")
            elif key == "type" and isinstance(value, list):
                types = [t for t in value if t != "null"]
                if len(types) == 1:
                    out["type"] = types[0]
                if "null" in value:
                    out["nullable"] = True
            else:
                out[key] = _to_openapi(value)
        return out
    if isinstance(node, list):
        return [_to_openapi(v) for v in node]
    return node


@functools.cache
def definitions() -> dict[str, JSON]:
    """All upstream definitions by name (``io.k8s.api.core.v1.Pod``), OpenAPI v3 style."""
    try:
        root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"{KUBE_VERSION}-local"
        raw = (root / "_definitions.json").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        return {}
    defs = orjson.loads(raw).get("$defs") or {}
    return {name: _to_openapi(schema) for name, schema in defs.items()}


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            out.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return out


def schema_name_for(group: str, version: str, kind: str) -> str | None:
    return _by_gvk().get((group, version, kind))


def closure(names: list[str]) -> dict[str, JSON]:
    """The named definitions plus everything they reference, transitively."""
    defs = definitions()
    out: dict[str, JSON] = {}
    stack = [n for n in names if n in defs]
    while stack:
        name = stack.pop()
        if name in out:
            continue
        out[name] = defs[name]
        stack.extend(ref for ref in _refs(defs[name]) if ref in defs and ref not in out)
    return out


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[-1])
            else:
                found.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs(value))
    return found
