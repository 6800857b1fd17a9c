"""gnostic's OpenAPI v2 protobuf (``openapi.v2.Document``): what kubectl and client-go ask
``/openapi/v2`` for (``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``).

The message types are those of the published ``OpenAPIv2.proto`` of ``github.com/google/gnostic-models``
(vendored beside this file, Apache-2.0), compiled by protoc into ``OpenAPIv2.pb`` (a
``FileDescriptorSet``; see :mod:`.generate`). Loading the descriptor at run time into a private pool
keeps us independent of protobuf's generated-code version checks.

:func:`encode` turns a Swagger 2.0 JSON document into that message as gnostic's compiler
(``NewDocument``) does: ``$ref`` becomes ``_ref``; ``x-…`` keys become ``vendor_extension`` entries
whose value is YAML text (we write JSON, which is YAML); parameters split into body and
query/path/header/formData sub-schemas; maps (paths, definitions, properties, responses) become
lists of named entries in document order.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import orjson
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

JSON = dict[str, Any]
Message = Any  # dynamically built protobuf message classes

_SCALAR_SCHEMA = {
    "format": "format", "title": "title", "description": "description", "multipleOf": "multiple_of",
    "maximum": "maximum", "exclusiveMaximum": "exclusive_maximum", "minimum": "minimum",
    "exclusiveMinimum": "exclusive_minimum", "maxLength": "max_length", "minLength": "min_length",
    "pattern": "pattern", "maxItems": "max_items", "minItems": "min_items", "uniqueItems": "unique_items",
    "maxProperties": "max_properties", "minProperties": "min_properties", "discriminator": "discriminator",
    "readOnly": "read_only",
}
_SCALAR_PARAM = {
    "required": "required", "in": "in", "description": "description", "name": "name",
    "allowEmptyValue": "allow_empty_value", "type": "type", "format": "format",
    "collectionFormat": "collection_format", "maximum": "maximum", "exclusiveMaximum": "exclusive_maximum",
    "minimum": "minimum", "exclusiveMinimum": "exclusive_minimum", "maxLength": "max_length",
    "minLength": "min_length", "pattern": "pattern", "maxItems": "max_items", "minItems": "min_items",
    "uniqueItems": "unique_items", "multipleOf": "multiple_of",
}
_SUB_SCHEMA = {"query": "QueryParameterSubSchema", "path": "PathParameterSubSchema",
               "header": "HeaderParameterSubSchema", "formData": "FormDataParameterSubSchema"}
_SUB_FIELD = {"query": "query_parameter_sub_schema", "path": "path_parameter_sub_schema",
              "header": "header_parameter_sub_schema", "formData": "form_data_parameter_sub_schema"}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


@functools.cache
def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)
    raw = (importlib.resources.files(__package__) / "OpenAPIv2.pb").read_bytes()
    for file in descriptor_pb2.FileDescriptorSet.FromString(raw).file:
        pool.Add(file)
    package = pool.FindFileByName("OpenAPIv2.proto")
    return {name: message_factory.GetMessageClass(desc) for name, desc in package.message_types_by_name.items()}


def message(name: str) -> Any:
    """The message class ``openapi.v2.<name>`` (``Document`` to decode a served document)."""
    return _classes()[name]


def encode(doc: JSON) -> bytes:
    """The serialized ``openapi.v2.Document`` of a Swagger 2.0 JSON document."""
    return bytes(_document(doc).SerializeToString(deterministic=True))


def _any(value: Any) -> Message:
    return message("Any")(yaml=orjson.dumps(value).decode() + "\n")


def _extensions(node: JSON) -> list[Message]:
    named = message("NamedAny")
    return [named(name=k, value=_any(v)) for k, v in node.items() if k.startswith("x-")]


def _scalars(target: Message, node: JSON, table: dict[str, str]) -> None:
    for key, field in table.items():
        value = node.get(key)
        if value is not None:
            setattr(target, field, value)


def _document(doc: JSON) -> Message:
    out = message("Document")(swagger=str(doc.get("swagger", "2.0")))
    info = doc.get("info") or {}
    out.info.CopyFrom(message("Info")(title=str(info.get("title", "")), version=str(info.get("version", "")),
                                      description=str(info.get("description", ""))))
    for key in ("schemes", "consumes", "produces"):
        getattr(out, key).extend(doc.get(key) or [])
    for key, field in (("host", "host"), ("basePath", "base_path")):
        if doc.get(key):
            setattr(out, field, doc[key])
    named_path = message("NamedPathItem")
    out.paths.path.extend(named_path(name=p, value=_path_item(item)) for p, item in (doc.get("paths") or {}).items())
    named_schema = message("NamedSchema")
    out.definitions.additional_properties.extend(
        named_schema(name=n, value=schema(s)) for n, s in (doc.get("definitions") or {}).items())
    out.vendor_extension.extend(_extensions(doc))
    return out


def _path_item(item: JSON) -> Message:
    out = message("PathItem")()
    if "$ref" in item:
        out._ref = item["$ref"]
    for method in _METHODS:
        if method in item:
            getattr(out, method).CopyFrom(_operation(item[method]))
    out.parameters.extend(_parameters_item(p) for p in item.get("parameters") or [])
    out.vendor_extension.extend(_extensions(item))
    return out


def _operation(op: JSON) -> Message:
    out = message("Operation")()
    for key, field in (("summary", "summary"), ("description", "description"), ("operationId", "operation_id")):
        if op.get(key):
            setattr(out, field, op[key])
    for key in ("tags", "produces", "consumes", "schemes"):
        getattr(out, key).extend(op.get(key) or [])
    out.deprecated = bool(op.get("deprecated"))
    out.parameters.extend(_parameters_item(p) for p in op.get("parameters") or [])
    named_response = message("NamedResponseValue")
    for code, response in (op.get("responses") or {}).items():
        if code.startswith("x-"):
            continue
        out.responses.response_code.append(named_response(name=code, value=_response_value(response)))
    out.responses.vendor_extension.extend(_extensions(op.get("responses") or {}))
    out.vendor_extension.extend(_extensions(op))
    return out


def _response_value(response: JSON) -> Message:
    value = message("ResponseValue")()
    if "$ref" in response:
        value.json_reference.CopyFrom(message("JsonReference")(_ref=response["$ref"]))
        return value
    out = value.response
    out.description = str(response.get("description", ""))
    if "schema" in response:
        out.schema.schema.CopyFrom(schema(response["schema"]))
    out.vendor_extension.extend(_extensions(response))
    return value


def _parameters_item(param: JSON) -> Message:
    item = message("ParametersItem")()
    if "$ref" in param:
        item.json_reference.CopyFrom(message("JsonReference")(_ref=param["$ref"]))
        return item
    where = param.get("in")
    if where == "body":
        body = item.parameter.body_parameter
        _scalars(body, param, {"description": "description", "name": "name", "in": "in", "required": "required"})
        body.schema.CopyFrom(schema(param.get("schema") or {}))
        body.vendor_extension.extend(_extensions(param))
        return item
    sub = message(_SUB_SCHEMA.get(str(where), "QueryParameterSubSchema"))()
    _scalars(sub, param, _SCALAR_PARAM)
    if "default" in param:
        sub.default.CopyFrom(_any(param["default"]))
    sub.enum.extend(_any(v) for v in param.get("enum") or [])
    if "items" in param:
        sub.items.CopyFrom(_primitives(param["items"]))
    sub.vendor_extension.extend(_extensions(param))
    getattr(item.parameter.non_body_parameter, _SUB_FIELD.get(str(where), "query_parameter_sub_schema")).CopyFrom(sub)
    return item


def _primitives(items: JSON) -> Message:
    out = message("PrimitivesItems")()
    for key, field in (("type", "type"), ("format", "format"), ("collectionFormat", "collection_format")):
        if items.get(key):
            setattr(out, field, items[key])
    if "items" in items:
        out.items.CopyFrom(_primitives(items["items"]))
    return out


def schema(node: JSON) -> Message:
    """One Swagger 2.0 schema object as ``openapi.v2.Schema``."""
    out = message("Schema")()
    if "$ref" in node:
        out._ref = node["$ref"]
    _scalars(out, node, _SCALAR_SCHEMA)
    if "default" in node:
        out.default.CopyFrom(_any(node["default"]))
    if "example" in node:
        out.example.CopyFrom(_any(node["example"]))
    out.required.extend(node.get("required") or [])
    out.enum.extend(_any(v) for v in node.get("enum") or [])
    kind = node.get("type")
    if kind:
        out.type.value.extend([kind] if isinstance(kind, str) else kind)
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out.additional_properties.boolean = extra
    elif isinstance(extra, dict):
        out.additional_properties.schema.CopyFrom(schema(extra))
    items = node.get("items")
    if isinstance(items, dict):
        out.items.schema.append(schema(items))
    elif isinstance(items, list):
        out.items.schema.extend(schema(i) for i in items)
    out.all_of.extend(schema(s) for s in node.get("allOf") or [])
    if "properties" in node:
        named = message("NamedSchema")
        out.properties.SetInParent()
        out.properties.additional_properties.extend(
            named(name=k, value=schema(v)) for k, v in (node["properties"] or {}).items())
    out.vendor_extension.extend(_extensions(node))
    return out
