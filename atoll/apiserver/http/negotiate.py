"""The media type and conversion of a resource request's answer, chosen from its ``Accept`` header
as kube-apiserver's ``NegotiateOutputMediaType`` chooses them: JSON, or YAML when the client
prefers it (``kubectl get --raw``-style clients and ``curl -H 'Accept: application/yaml'``), and
``406 NotAcceptable`` when it accepts none of the served types, before anything is done.

A range may ask for a conversion with ``as=``/``g=``/``v=`` (a ``Target``): ``Table``,
``PartialObjectMetadata`` or ``PartialObjectMetadataList`` of ``meta.k8s.io`` ``v1`` or
``v1beta1`` (kube-apiserver 1.27 to 1.33 serves both, and answers in the version asked for). A range
asking for any other conversion (another version, kind or group, or a protobuf Table) is passed
over like one of an unserved type, as kube-apiserver's ``RequestScope.AllowsMediaTypeTransform``
passes it over: the next range decides, and 406 when none is left. Whether a served kind fits the
answer (``PartialObjectMetadataList`` for one object, say) is checked once the answer is there, as
kube-apiserver checks it (``partial.check_one``/``check_list``: 406, no later range tried).

An error's ``Status`` follows the same negotiation (kube-apiserver's ``ErrorNegotiated``): YAML when
the client prefers YAML; ranges asking for a conversion are passed over (a ``Status`` is never
converted) and an error is never hidden behind a 406 (JSON then). ``error_media`` decides without
parsing when ``Accept`` does not name YAML.

A client that accepts only protobuf is answered in JSON with a JSON ``Content-Type``: every
Kubernetes client that asks for protobuf decodes the answer by its ``Content-Type`` (client-go's
negotiated decoder), so it reads the JSON. A watch is JSON only (kube streams JSON or protobuf).
The common headers (none, ``*/*``, anything naming JSON without a conversion) are decided without
parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
import yaml
from aiohttp import web

from atoll.api import errors

Media = Literal["json", "yaml"]
SERVED = "application/json, application/yaml, application/vnd.kubernetes.protobuf"
META_VERSIONS = ("v1", "v1beta1")
"""The versions of ``meta.k8s.io`` a Table or PartialObjectMetadata answer is served in."""
_KINDS = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")
_PROTOBUF = "application/vnd.kubernetes.protobuf"
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_JSON_LIKE = ("application/json", "application/*", "*/*", _PROTOBUF)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True, slots=True)
class Target:
    """The conversion a media range asks for: ``as=<kind>;g=meta.k8s.io;v=<version>``."""

    kind: str
    """``Table``, ``PartialObjectMetadata`` or ``PartialObjectMetadataList``."""
    version: str
    """``v1`` or ``v1beta1`` (``META_VERSIONS``)."""

    @property
    def api_version(self) -> str:
        return "meta.k8s.io/" + self.version

    @property
    def table(self) -> bool:
        return self.kind == "Table"

    @property
    def metadata(self) -> bool:
        """Metadata only: ``PartialObjectMetadata`` (one object, or each item of a list or watch)."""
        return self.kind != "Table"


TARGET_KEY: web.RequestKey[Target] = web.RequestKey("atoll_target", Target)
"""The request's ``Target``, set by the router when the negotiated range asks for one."""


@dataclass(frozen=True, slots=True)
class _Range:
    quality: float
    position: int
    media: str  # as sent (matched case-sensitively, as kube), without parameters
    params: dict[str, str]  # parameters other than q


def _ranges(accept: str) -> list[_Range]:
    """The acceptable ranges (q > 0), the preferred first: by quality, then specific before
    wildcard (``application/yaml`` before ``application/*`` before ``*/*``, as kube's goautoneg
    orders ranges of equal quality), then position. Media types are compared as sent
    (case-sensitively), as kube compares them."""
    out = []
    for position, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        quality, params = 1.0, {}
        for param in fields[1:]:
            name, _, value = param.partition("=")
            name, value = name.strip(), value.strip()
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            elif name:
                params[name] = value
        if fields[0] and quality > 0:
            out.append(_Range(quality, position, fields[0], params))
    return sorted(out, key=lambda r: (-r.quality, r.media.startswith("*/"), r.media.endswith("/*"), r.position))


def _served(media: str, watch: bool) -> Media | None:
    if media in _JSON_LIKE or media.startswith("application/json"):
        return "json"
    if media in _YAML_TYPES and not watch:
        return "yaml"
    return None


def _target(media: str, params: dict[str, str]) -> Target | None:
    """The conversion ``params`` ask for, None when it is not served (kube passes the range over)."""
    kind, version = params.get("as", ""), params.get("v", "")
    if params.get("g") != "meta.k8s.io" or version not in META_VERSIONS or kind not in _KINDS:
        return None
    if kind == "Table" and media == _PROTOBUF:
        return None  # kube converts to a Table in JSON or YAML only
    return Target(kind, version)


def _negotiate(accept: str, *, watch: bool, convert: bool) -> tuple[Media, Target | None]:
    for r in _ranges(accept):
        media = _served(r.media, watch)
        if media is None:
            continue
        if "as" not in r.params and "g" not in r.params and "v" not in r.params:
            return media, None
        target = _target(r.media, r.params) if convert else None
        if target is not None:
            return media, target
    raise errors.NotAcceptable(f"only the following media types are accepted: {SERVED}")


def negotiate(accept: str, *, watch: bool = False) -> tuple[Media, Target | None]:
    """The media type of the answer and the conversion it asks for (None: the object itself);
    406 naming the served types when no range of ``accept`` is served."""
    if not accept or ("yaml" not in accept and ";" not in accept and ("json" in accept or "*/*" in accept)):
        return "json", None
    return _negotiate(accept, watch=watch, convert=True)


def error_media(accept: str) -> Media:
    """The media type of an error's ``Status``: YAML when the client prefers it, else JSON (also
    when nothing is acceptable: the error is not hidden behind a 406)."""
    if "yaml" not in accept:
        return "json"
    try:
        return _negotiate(accept, watch=False, convert=False)[0]
    except errors.NotAcceptable:
        return "json"


def yaml_bytes(value: Any) -> bytes:
    return yaml.dump(value, Dumper=_DUMPER, default_flow_style=False, sort_keys=False, allow_unicode=True).encode()


def as_yaml(response: web.StreamResponse) -> web.StreamResponse:
    """A JSON answer re-encoded as YAML (other answers, e.g. a log's text, are left alone)."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return response
    body = response.body
    if not isinstance(body, (bytes, bytearray)):
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    return web.Response(body=yaml_bytes(orjson.loads(body)), status=response.status, headers=headers,
                        content_type="application/yaml")
