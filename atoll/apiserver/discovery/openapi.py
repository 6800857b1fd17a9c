"""OpenAPI v3: the index at ``/openapi/v3`` and one document per group-version; and the OpenAPI v2
document derived from them (:mod:`.openapi_v2`, JSON or gnostic protobuf, with an ETag).

kubectl's ``apply`` looks for a PATCH operation whose ``x-kubernetes-group-version-kind`` matches
the object and that accepts ``fieldValidation``; then it validates nothing itself and sends
``fieldValidation=Strict``. ``kubectl explain`` reads ``components.schemas``. CRD schemas come from
the CRDs; built-in kinds get their published Kubernetes schemas when available (see
``builtin_schemas``) and a permissive object schema otherwise. The ``hash`` in each URL changes
whenever the registry changes, so kubectl never keeps a stale document. Each resource has its
collection, object, ``/status`` and all-namespaces paths with kube-apiserver's ``operationId``s,
limited to the operations its verbs allow. Every document is built once per registry generation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from atoll.api import gnostic, k8s_schemas
from atoll.api.registry import Registry, ResourceDef
from atoll.apiserver.discovery.openapi_v2 import swagger

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


def operation_id(verb: str, rd: ResourceDef, *, scope: str | None = None, suffix: str = "") -> str:
    """kube-apiserver's operation ids: ``readAppsV1NamespacedDeploymentStatus``,
    ``listCoreV1PodForAllNamespaces``, ``deleteCoreV1CollectionNamespacedPod``."""
    group = rd.group.removesuffix(".k8s.io") if rd.group else "core"
    words = [w for part in group.split(".") for w in part.split("-") if w]
    if scope is None:
        scope = "Namespaced" if rd.namespaced else ""
    return f"{verb}{''.join(w[:1].upper() + w[1:] for w in words)}{rd.version.capitalize()}{scope}{rd.kind}{suffix}"


# x-kubernetes-action -> (RBAC verb that must be served, operation id verb)
_ACTIONS = {"get": ("get", "read"), "put": ("update", "replace"), "patch": ("patch", "patch"),
            "delete": ("delete", "delete"), "post": ("create", "create"), "list": ("list", "list"),
            "deletecollection": ("deletecollection", "delete")}


def _paths(rd: ResourceDef) -> JSON:
    """The collection, object and ``/status`` paths of one resource (and the all-namespaces list),
    with only the operations its verbs allow."""
    base = "/" + gv_path(rd.group, rd.version) + ("/namespaces/{namespace}" if rd.namespaced else "")
    gvk = {"group": rd.group, "version": rd.version, "kind": rd.kind}
    ref = {"$ref": f"#/components/schemas/{schema_name(rd)}"}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    scope = [_NAMESPACE_PARAM] if rd.namespaced else []
    body = {"required": True, "content": {"application/json": {"schema": ref}}}
    patch_body = {"required": True, "content": {
        t: {"schema": {"type": "array" if t.startswith("application/json-patch") else "object"}} for t in _PATCH_TYPES}}
    bodies = {"put": body, "patch": patch_body, "post": body}

    def ops(methods: dict[str, str], suffix: str = "", scope_word: str | None = None) -> JSON:
        out: JSON = {}
        for method, action in methods.items():
            verb, word = _ACTIONS[action]
            if verb not in rd.verbs:
                continue
            if action == "deletecollection":
                op_id = operation_id("delete", rd, scope="Collection" + ("Namespaced" if rd.namespaced else ""))
            else:
                op_id = operation_id(word, rd, scope=scope_word, suffix=suffix)
            out[method] = {"operationId": op_id,
                           "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                           "parameters": _PARAMS, "responses": ok,
                           **({"requestBody": bodies[method]} if method in bodies else {})}
        return out

    paths: JSON = {
        f"{base}/{rd.plural}/{{name}}": {"parameters": [_NAME_PARAM, *scope], **ops(
            {"get": "get", "put": "put", "patch": "patch", "delete": "delete"})},
        f"{base}/{rd.plural}": {**({"parameters": scope} if scope else {}), **ops(
            {"post": "post", "get": "list", "delete": "deletecollection"})},
    }
    if rd.has_status:
        paths[f"{base}/{rd.plural}/{{name}}/status"] = {"parameters": [_NAME_PARAM, *scope], **ops(
            {"get": "get", "put": "put", "patch": "patch"}, suffix="Status")}
    if rd.namespaced:
        every = ops({"get": "list"}, suffix="ForAllNamespaces", scope_word="")
        if every:
            paths[f"/{gv_path(rd.group, rd.version)}/{rd.plural}"] = every
    return {path: item for path, item in paths.items() if set(item) - {"parameters"}}


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
            paths.update(_paths(rd))
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

    def v2(self, *, protobuf: bool) -> tuple[bytes, str]:
        """The Swagger 2.0 document (JSON or gnostic protobuf) and its ETag, built once per registry
        generation from the v3 documents (see :mod:`.openapi_v2`)."""
        self._refresh()
        key = "v2.pb" if protobuf else "v2.json"
        if "v2.json" not in self._docs:
            docs = [orjson.loads(self._gv_doc(group, version) or b"{}")
                    for group, versions in self._registry.groups().items() for version in versions]
            self._docs["v2.json"] = orjson.dumps(swagger(docs))
        if key not in self._docs:  # the protobuf from the JSON: no decoded document is kept around
            self._docs[key] = gnostic.encode(orjson.loads(self._docs["v2.json"]))
        raw = self._docs[key]
        etag = self._docs.get(key + ".etag")
        if etag is None:
            etag = self._docs[key + ".etag"] = b'"' + hashlib.sha256(raw).hexdigest()[:32].upper().encode() + b'"'
        return raw, etag.decode()

    def document(self, path: str) -> bytes | None:
        parts = path.strip("/").split("/")
        if parts == ["api", "v1"]:
            return self._gv_doc("", "v1")
        if len(parts) == 3 and parts[0] == "apis":
            return self._gv_doc(parts[1], parts[2])
        return None
