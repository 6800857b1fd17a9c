"""OpenAPI v2 (Swagger 2.0) at ``/openapi/v2``, derived from the v3 documents of every group-version.

kubectl <= 1.28 downloads it (as gnostic protobuf, see :mod:`atoll.api.gnostic`) before ``apply``,
``create -f`` and ``explain``; every kubectl reads it for ``explain --output=plaintext-openapiv2``
and older ``QueryParamVerifier`` checks; SDK generators and the Python client's tooling read the
JSON. kube-openapi's v2 parser (what kubectl runs on the protobuf) rejects the whole document for
one schema it cannot read, so the conversion keeps to what it accepts:

- ``#/components/schemas/X`` references become ``#/definitions/X``; a reference keeps only its
  ``description`` and ``x-`` extensions (kube-openapi refuses a ``$ref`` with a ``type``), and a
  ``allOf: [{$ref}]`` wrapper becomes the plain reference;
- ``nullable``, ``oneOf``, ``anyOf``, ``not`` and other v3-only keywords are dropped (v2 has
  none), a ``type`` list keeps its one non-null type (or none), an array always has ``items``;
- ``Quantity`` and ``IntOrString`` get upstream's v2 forms (``string``, ``int-or-string``);
- parameters carry their schema's ``type`` inline; a request body becomes the ``body`` parameter
  (PATCH bodies reference ``io.k8s.apimachinery.pkg.apis.meta.v1.Patch`` like upstream); each
  response keeps its schema, and ``consumes``/``produces`` list the v3 media types.

``x-kubernetes-group-version-kind``, ``-action`` and ``x-kubernetes-patch-strategy`` /
``-patch-merge-key`` (client-side strategic merge patch of kubectl <= 1.28) are carried over.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from atoll.api.k8s_schemas import KUBE_VERSION

JSON = dict[str, Any]

PATCH_DEFINITION = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
_SPECIAL = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
}
_SCHEMA_KEYS = frozenset({
    "format", "title", "description", "default", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "enum", "discriminator", "readOnly", "example",
})
_PARAM_KEYS = ("name", "in", "required", "description", "allowEmptyValue")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_V3_REF, _V2_REF = "#/components/schemas/", "#/definitions/"


def swagger(v3_docs: Iterable[JSON]) -> JSON:
    """One Swagger 2.0 document from the v3 documents of all group-versions."""
    paths: JSON = {}
    definitions: JSON = {PATCH_DEFINITION: {
        "type": "object",
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
    }}
    for doc in v3_docs:
        for path, item in (doc.get("paths") or {}).items():
            paths[path] = path_item(item)
        for name, node in ((doc.get("components") or {}).get("schemas") or {}).items():
            if name not in definitions:
                definitions[name] = definition(name, node)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
    }


def definition(name: str, node: JSON) -> JSON:
    special = _SPECIAL.get(name)
    if special is not None:
        description = node.get("description")
        return {**({"description": description} if description else {}), **special}
    return schema(node)


def path_item(item: JSON) -> JSON:
    out: JSON = {}
    for method in _METHODS:
        if method in item:
            out[method] = operation(item[method])
    if item.get("parameters"):
        out["parameters"] = [parameter(p) for p in item["parameters"]]
    out.update(_extensions(item))
    return out


def operation(op: JSON) -> JSON:
    out: JSON = {k: op[k] for k in ("operationId", "description", "tags", "deprecated") if k in op}
    params = [parameter(p) for p in op.get("parameters") or []]
    body = op.get("requestBody")
    if isinstance(body, dict):
        content = body.get("content") or {}
        out["consumes"] = list(content)
        if op.get("x-kubernetes-action") == "patch":
            body_schema: JSON = {"$ref": _V2_REF + PATCH_DEFINITION}
        else:
            body_schema = schema(_first_schema(content))
        params.insert(0, {"name": "body", "in": "body", "required": bool(body.get("required")), "schema": body_schema})
    produces: list[str] = []
    responses: JSON = {}
    for code, response in (op.get("responses") or {}).items():
        content = response.get("content") or {}
        produces.extend(t for t in content if t not in produces)
        converted: JSON = {"description": response.get("description", "")}
        if content:
            converted["schema"] = schema(_first_schema(content))
        responses[code] = converted
    if produces:
        out["produces"] = produces
    if params:
        out["parameters"] = params
    out["responses"] = responses
    out.update(_extensions(op))
    return out


def parameter(param: JSON) -> JSON:
    if "$ref" in param:
        return {"$ref": str(param["$ref"]).replace("#/components/parameters/", "#/parameters/")}
    out: JSON = {k: param[k] for k in _PARAM_KEYS if k in param}
    inline = param.get("schema") or {}
    out["type"] = _one_type(inline.get("type")) or "string"
    for key in ("format", "uniqueItems", "enum", "default"):
        if key in inline:
            out[key] = inline[key]
    out.update(_extensions(param))
    return out


def schema(node: Any) -> JSON:
    """A v3 schema object as Swagger 2.0 (see the module docstring for what changes)."""
    if not isinstance(node, dict):
        return {}
    extensions = _extensions(node)
    ref = node.get("$ref")
    wrapped = node.get("allOf")
    if ref is None and isinstance(wrapped, list) and len(wrapped) == 1 and "$ref" in wrapped[0]:
        ref = wrapped[0]["$ref"]
    if isinstance(ref, str):
        out: JSON = {"$ref": ref.replace(_V3_REF, _V2_REF)}
        if node.get("description"):
            out["description"] = node["description"]
        return {**out, **extensions}
    out = {k: v for k, v in node.items() if k in _SCHEMA_KEYS}
    kind = _one_type(node.get("type"))
    if kind:
        out["type"] = kind
    if isinstance(node.get("properties"), dict):
        out["properties"] = {name: schema(sub) for name, sub in node["properties"].items()}
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif isinstance(extra, dict):
        out["additionalProperties"] = schema(extra)
    if isinstance(node.get("allOf"), list):
        out["allOf"] = [schema(s) for s in node["allOf"]]
    if kind == "array" or "items" in node:
        out["items"] = schema(node.get("items"))
    return {**out, **extensions}


def _one_type(kind: Any) -> str | None:
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        return str(types[0]) if len(types) == 1 else None
    return None


def _first_schema(content: JSON) -> Any:
    media: Any = content.get("application/json") or next(iter(content.values()), {})
    return media.get("schema") if isinstance(media, dict) else None


def _extensions(node: JSON) -> JSON:
    return {k: v for k, v in node.items() if k.startswith("x-")}
