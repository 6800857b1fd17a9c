"""OpenAPI v3: the index at ``/openapi/v3`` and one document per group-version.

kubectl's ``apply`` looks for a PATCH operation whose ``x-kubernetes-group-version-kind`` matches
the object and that accepts ``fieldValidation``; then it validates nothing itself and sends
``fieldValidation=Strict``. ``kubectl explain`` reads ``components.schemas``. CRD schemas come from
the CRDs; built-in kinds get their published Kubernetes schemas when available (see
``builtin_schemas``) and a permissive object schema otherwise. The ``hash`` in each URL changes
whenever the registry changes, so kubectl never keeps a stale document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from atoll.api import k8s_schemas
from atoll.api.registry import Registry, ResourceDef

JSON = dict[str, Any]

_PARAMS = [
    {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for n in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
]


# path parameters as kube-apiserver declares them (OpenAPI requires every {template} declared)
_NAME_PARAM = {"name": "name", "in": "path", "required": True, "description": "name of the object",
               "schema": {"type": "string", "uniqueItems": True}}
_NAMESPACE_PARAM = {"name": "namespace", "in": "path", "required": True,
                    "description": "object name and auth scope, such as for teams and projects",
                    "schema": {"type": "string", "uniqueItems": True}}
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def schema_name(rd: ResourceDef) -> str:
    """``io.k8s.api.core.v1.Pod`` for built-ins, reversed-group naming for custom resources."""
    if rd.builtin:
        upstream = k8s_schemas.schema_name_for(rd.group, rd.version, rd.kind)
        if upstream:
            return upstream
        group = rd.group.split(".")[0] if rd.group else "core"
        return f"io.k8s.api.{group}.{rd.version}.{rd.kind}"
    return ".".join(reversed(rd.group.split("."))) + f".{rd.version}.{rd.kind}"


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


class OpenAPI:
    def __init__(self, registry: Registry, builtin_schemas: Callable[[ResourceDef], JSON | None] | None = None) -> None:
        self._registry = registry
        self._builtin_schemas = builtin_schemas
        self._docs: dict[str, bytes] = {}
        self._generation = -1

    def _refresh(self) -> None:
        if self._generation != self._registry.generation:
            self._docs.clear()
            self._generation = self._registry.generation

    def _gv_doc(self, group: str, version: str) -> bytes | None:
        self._refresh()
        key = gv_path(group, version)
        if key in self._docs:
            return self._docs[key]
        rds = self._registry.in_group_version(group, version)
        if not rds:
            return None
        paths: JSON = {}
        schemas: JSON = {}
        for rd in rds:
            base = "/" + gv_path(group, version) + ("/namespaces/{namespace}" if rd.namespaced else "")
            gvk = {"group": rd.group, "version": rd.version, "kind": rd.kind}
            ref = {"$ref": f"#/components/schemas/{schema_name(rd)}"}
            op = {
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _PARAMS,
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
            }
            scope = [_NAMESPACE_PARAM] if rd.namespaced else []
            body = {"required": True, "content": {"application/json": {"schema": ref}}}
            patch_body = {"required": True, "content": {
                t: {"schema": {"type": "array" if t.startswith("application/json-patch") else "object"}}
                for t in _PATCH_TYPES}}
            paths[f"{base}/{rd.plural}/{{name}}"] = {
                "parameters": [_NAME_PARAM, *scope],
                "get": {**op, "x-kubernetes-action": "get"},
                "put": {**op, "x-kubernetes-action": "put", "requestBody": body},
                "patch": {**op, "x-kubernetes-action": "patch", "requestBody": patch_body},
                "delete": {**op, "x-kubernetes-action": "delete"},
            }
            paths[f"{base}/{rd.plural}"] = {
                **({"parameters": scope} if scope else {}),
                "post": {**op, "x-kubernetes-action": "post", "requestBody": body},
                "get": {**op, "x-kubernetes-action": "list"},
            }
            upstream = k8s_schemas.schema_name_for(rd.group, rd.version, rd.kind) if rd.builtin else None
            if upstream:
                schemas.update(k8s_schemas.closure([upstream]))
            else:
                schemas[schema_name(rd)] = self._schema(rd)
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        }
        raw = self._docs[key] = orjson.dumps(doc)
        return raw

    def _schema(self, rd: ResourceDef) -> JSON:
        gvk = [{"group": rd.group, "version": rd.version, "kind": rd.kind}]
        base: JSON | None = None
        if rd.schema is not None:
            base = dict(rd.schema)
        elif self._builtin_schemas is not None:
            base = self._builtin_schemas(rd)
        if base is None:
            base = {
                "type": "object",
                "description": f"{rd.kind} is a Kubernetes {rd.kind} object.",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        props = dict(base.get("properties") or {})
        props.setdefault(
            "apiVersion",
            {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of an object.",
            },
        )
        props.setdefault(
            "kind",
            {
                "type": "string",
                "description": "Kind is a string value representing the REST resource this object represents.",
            },
        )
        props.setdefault("metadata", {"type": "object", "description": "Standard object's metadata."})
        out = dict(base, properties=props)
        out.setdefault("type", "object")
        out.setdefault("description", f"{rd.kind} is a {rd.group or 'core'} {rd.version} resource.")
        out["x-kubernetes-group-version-kind"] = gvk
        return out

    def index(self) -> bytes:
        self._refresh()
        if "index" not in self._docs:
            paths = {}
            for group, versions in self._registry.groups().items():
                for version in versions:
                    doc = self._gv_doc(group, version) or b""
                    digest = hashlib.sha256(doc).hexdigest()[:32].upper()
                    path = gv_path(group, version)
                    paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            self._docs["index"] = orjson.dumps({"paths": paths})
        return self._docs["index"]

    def document(self, path: str) -> bytes | None:
        parts = path.strip("/").split("/")
        if parts == ["api", "v1"]:
            return self._gv_doc("", "v1")
        if len(parts) == 3 and parts[0] == "apis":
            return self._gv_doc(parts[1], parts[2])
        return None
