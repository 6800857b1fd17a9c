"""Subresource handlers: what a kind serves under ``…/NAME/<subresource>``.

Each kind's strategy maps subresource names to handlers, as kube-apiserver's registry pairs a
resource with the REST storage of each subresource. A handler says which HTTP methods the generic
object endpoints serve for it (``status``: GET, PUT and PATCH of the object with the status
rules; ``finalize``: GET) and serves every other method itself, answering one of:

- ``ObjectReply`` — an object, rendered like any object (JSON or a Table, warnings, 200/201);
- ``StatusReply`` — a body sent as is (a ``Status``, a ``TokenRequest``);
- ``StreamReply`` — a stream the HTTP layer relays from a node (``pods/log``);
- ``RelayReply`` — the whole request (any method, body, the path after ``…/proxy``, watch
  streams included) relayed to another API server (``instances/proxy`` of the fleet).
- ``UpgradeReply`` — a WebSocket the HTTP layer relays to a node (``pods/exec``, ``attach``,
  ``portforward``).

Discovery reads ``verbs`` and ``response_kind`` from the same handlers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from atoll.api import errors
from atoll.api.registry import ResourceDef

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage, WriteOptions

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SubresourceCall:
    """One request to a subresource, decoded by the HTTP layer."""

    method: str
    rd: ResourceDef
    namespace: str | None
    name: str
    subresource: str
    body: JSON | None  # None when the request had no body
    query: Mapping[str, str]
    opts: WriteOptions
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObjectReply:
    obj: JSON
    status: int = 200


@dataclass(frozen=True, slots=True)
class StatusReply:
    body: JSON
    status: int = 200


@dataclass(frozen=True, slots=True)
class StreamReply:
    """Relay ``GET url + path?params`` (over the cluster's TLS) to the client as ``text/plain``."""

    url: str
    path: str
    params: dict[str, str] = field(default_factory=dict)


class ProxyTarget(Protocol):
    """Where a ``proxy`` subresource relays to, with the credentials it presents there."""

    @property
    def url(self) -> str: ...

    @property
    def ssl_context(self) -> ssl.SSLContext: ...

    @property
    def token(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RelayReply:
    """Relay the request as is (method, body, headers that matter) to ``target`` + the path tail."""

    target: ProxyTarget



@dataclass(frozen=True, slots=True)
class UpgradeReply:
    """Relay a WebSocket between the client and ``url + path?params`` (a node's ``/exec``), with the
    client's subprotocols, over the cluster's TLS."""

    url: str
    path: str
    params: tuple[tuple[str, str], ...] = ()



Reply = ObjectReply | StatusReply | StreamReply | RelayReply | UpgradeReply


class Subresource(Protocol):
    @property
    def verbs(self) -> tuple[str, ...]:
        """RBAC/discovery verbs (``get``, ``create``, ``update``, ``patch``)."""

    @property
    def response_kind(self) -> tuple[str, str, str] | None:
        """(group, version, kind) answered, ``SAME_KIND`` for the parent's kind, None for none (streams)."""

    @property
    def generic_methods(self) -> frozenset[str]:
        """HTTP methods the generic object endpoints serve for this subresource."""

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply: ...


SAME_KIND = ("", "", "")


@dataclass(frozen=True, slots=True)
class StatusSubresource:
    """``…/status``: GET, PUT and PATCH of the object, changing only what the strategy's status
    rules allow."""

    verbs: tuple[str, ...] = ("get", "patch", "update")
    response_kind: tuple[str, str, str] | None = SAME_KIND
    generic_methods: frozenset[str] = frozenset({"GET", "PUT", "PATCH"})

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        raise method_not_allowed(call)


@dataclass(frozen=True, slots=True)
class NotServed:
    """A subresource advertised for clients' sake but refused with 501 (the fallback for a listed
    subresource no strategy serves)."""

    verbs: tuple[str, ...] = ("create", "get")
    response_kind: tuple[str, str, str] | None = None
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        raise errors.NotImplementedYet(
            f"the {call.rd.plural}/{call.subresource} subresource is not served by this server yet"
        )


NOT_SERVED = NotServed()


def method_not_allowed(call: SubresourceCall) -> errors.MethodNotAllowed:
    return errors.MethodNotAllowed(f"{call.method} is not supported on {call.rd.plural}/{call.subresource}")


def require_body(call: SubresourceCall) -> JSON:
    if call.body is None:
        raise errors.BadRequest("the body of the request must be a JSON object")
    return call.body


@dataclass(frozen=True, slots=True)
class ProxySubresource:
    """``…/NAME/proxy/<path>``: every method relayed to the API server ``resolve(name)`` names
    (which raises an ``APIError`` when it has none). The body is never decoded here."""

    resolve: Callable[[str], ProxyTarget]
    verbs: tuple[str, ...] = ("create", "delete", "get", "patch", "update")
    response_kind: tuple[str, str, str] | None = None
    generic_methods: frozenset[str] = frozenset()
    relays_body: bool = True

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        await storage.current(call.rd, call.namespace, call.name)  # 404 for an unknown object
        return RelayReply(self.resolve(call.name))
