"""The media type of a resource request's answer, chosen from its ``Accept`` header as
kube-apiserver's ``NegotiateOutputMediaType`` chooses it: JSON, or YAML when the client prefers
it (``kubectl get --raw``-style clients and ``curl -H 'Accept: application/yaml'``), and
``406 NotAcceptable`` when it accepts none of the served types, before anything is done.

A client that accepts only protobuf is answered in JSON with a JSON ``Content-Type``: every
Kubernetes client that asks for protobuf decodes the answer by its ``Content-Type`` (client-go's
negotiated decoder), so it reads the JSON. A watch is JSON only (kube streams JSON or protobuf).
The common headers (none, ``*/*``, anything naming JSON) are decided without parsing.
"""

from __future__ import annotations

from typing import Literal

import orjson
import yaml
from aiohttp import web

from atoll.api import errors

Media = Literal["json", "yaml"]
SERVED = "application/json, application/yaml, application/vnd.kubernetes.protobuf"
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_JSON_LIKE = ("application/json", "application/*", "*/*", "application/vnd.kubernetes.protobuf")
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _ranges(accept: str) -> list[tuple[float, int, str]]:
    """(quality, -position, media range) of each acceptable range (q > 0)."""
    out = []
    for position, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if fields[0] and quality > 0:
            out.append((quality, -position, fields[0].lower()))
    return out


def output_media(accept: str, *, watch: bool = False) -> Media:
    """``json`` or ``yaml`` for ``accept``; 406 naming the served types when it takes neither."""
    if not accept or ("yaml" not in accept and ("json" in accept or "*/*" in accept)):
        return "json"
    for _quality, _position, media in sorted(_ranges(accept), reverse=True):
        if media in _JSON_LIKE or media.startswith("application/json"):
            return "json"
        if media in _YAML_TYPES and not watch:
            return "yaml"
    raise errors.NotAcceptable(f"only the following media types are accepted: {SERVED}")


def as_yaml(response: web.StreamResponse) -> web.StreamResponse:
    """A JSON answer re-encoded as YAML (other answers, e.g. a log's text, are left alone)."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return response
    body = response.body
    if not isinstance(body, (bytes, bytearray)):
        return response
    text = yaml.dump(orjson.loads(body), Dumper=_DUMPER, default_flow_style=False, sort_keys=False)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    return web.Response(body=text.encode(), status=response.status, headers=headers, content_type="application/yaml")
