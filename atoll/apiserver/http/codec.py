"""Request bodies in (JSON, YAML, protobuf) and responses out (JSON and ``Status``).

kubectl sends protobuf for typed ``create`` commands, YAML is accepted like the real server, the
Python client sends JSON without a Content-Type, and every error leaves as a ``Status``: in YAML
when the request's ``Accept`` prefers YAML (``negotiate.error_media``), else JSON.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import yaml
from aiohttp import web

from atoll.api import errors
from atoll.apiserver.http.bodies import MAX_DEPTH, check_depth, load_yaml
from atoll.apiserver.http.negotiate import error_media, yaml_bytes
from atoll.apiserver.http.protobuf import decode_k8s_protobuf
from atoll.apiserver.registry import params

JSON = dict[str, Any]
USER_KEY: web.RequestKey[Any] = web.RequestKey("atoll_user", object)
MAX_BODY = 3 * 1024 * 1024


JSON_TYPES = ("", "application/json", "*/*")


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.RequestEntityTooLarge(
            f"Request entity too large: limit is {MAX_BODY} bytes, got {request.content_length}"
        )
    if request.content_length == 0 or not request.body_exists:
        return b""  # (aiohttp's empty payload refuses even readexactly(0))
    if request.content_length is not None:  # the usual case: one read, no chunk iterator
        try:
            return await request.content.readexactly(request.content_length)
        except asyncio.IncompleteReadError:
            raise errors.BadRequest("the request body ended before its Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def decode_object(raw: bytes, content_type: str) -> Any:
    """A request body as a Python value, by content type (JSON assumed when absent)."""
    if content_type in JSON_TYPES or content_type.endswith("+json"):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.BadRequest(f"the body of the request was not valid JSON: {exc}") from None
        if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:  # one bracket per level: fewer cannot nest deeper
            check_depth(value)
        return value
    if content_type in ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"):
        return load_yaml(raw)
    if content_type == "application/vnd.kubernetes.protobuf":
        try:
            return decode_k8s_protobuf(raw)
        except errors.APIError:
            raise
        except Exception as exc:
            raise errors.BadRequest(f"the body of the request was not valid protobuf: {exc}") from None
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f'application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")'
    )


def decode_dict(raw: bytes, content_type: str) -> JSON:
    value = decode_object(raw, content_type)
    if not isinstance(value, dict):
        raise errors.BadRequest("the body of the request must be a JSON object")
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=raw, status=status, content_type="application/json", headers=headers)


def status_response(err: errors.APIError, headers: dict[str, str] | None = None, accept: str = "") -> web.Response:
    """``err``'s ``Status``, encoded as the request's ``accept`` prefers (JSON unless it names YAML)."""
    if "yaml" in accept and error_media(accept) == "yaml":
        try:
            body = yaml_bytes(err.status())
        except yaml.YAMLError:  # a value YAML's safe dumper cannot represent: the Status in JSON
            return json_response(err.status(), status=err.code, headers=headers)
        return web.Response(body=body, status=err.code, content_type="application/yaml", headers=headers)
    return json_response(err.status(), status=err.code, headers=headers)


def success_status(rd_plural: str, group: str, name: str, uid: str) -> JSON:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": rd_plural, "uid": uid},
    }


def bool_param(request: web.Request, name: str) -> bool:
    """A boolean option of the query as kube-apiserver reads it (``params.flag``)."""
    return params.flag(request.query.get(name)) is True
