"""The async Kubernetes REST client: plain dicts in, plain dicts out, one pooled session.

Design choices, and why:

* **Dicts, not models.** Controllers read a few fields and write patches; building typed models
  for every object on every watch event costs more than the reconcile. JSON goes through orjson.
* **One ``aiohttp.ClientSession`` per client**, created lazily inside the running loop, so a
  ``Client`` can be built in synchronous code and every request reuses pooled connections.
  This package is the only place in Atoll that opens HTTP client sessions.
* **Errors are the server's errors.** A non-2xx answer is parsed back into the matching
  :class:`atoll.api.errors.APIError` (``except NotFound:`` works like ``apierrors.IsNotFound``);
  transport problems become :class:`ClientConnectionError`. aiohttp never leaks.
* **Works against any API server.** Only documented REST paths and legacy discovery are used, so
  the same code talks to Atoll's server, kube-apiserver, k3s or kind.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import aiohttp
import orjson

from atoll.api.errors import APIError, InternalError, from_status
from atoll.api.registry import ResourceDef
from atoll.client.discovery import AGGREGATED_ACCEPT, Discovery
from atoll.client.errors import ClientConnectionError, ClientTimeoutError
from atoll.client.kubeconfig import KubeConfig, load_kubeconfig
from atoll.client.kubelet import STREAM_MESSAGE_MAX
from atoll.client.stream import StreamResponse

JSON = dict[str, Any]
Items = list[JSON]
ResourceDefs = list[ResourceDef]
PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
METADATA_ONLY: Mapping[str, str] = {
    "Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
}
"""Headers of a metadata-only list or watch (client-go's metadata client): items are
``PartialObjectMetadata``; a server that cannot serve them answers full objects."""
ERROR_TEXT_LIMIT = 256
"""Non-Status error bodies are truncated: proxies echo requests, and requests carry secrets."""
TOKEN_REREAD_SECONDS = 60.0
"""Projected service-account tokens rotate (hourly by default); re-reading each minute is plenty."""


def resource_path(
    rd: ResourceDef, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """``/api/v1/namespaces/ns/pods/x/status`` and friends; no namespace lists across all."""
    path = f"/apis/{rd.group}/{rd.version}" if rd.group else f"/api/{rd.version}"
    if rd.namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{rd.plural}"
    if name is not None:
        if rd.namespaced and not namespace:
            raise ValueError(f"{rd.group_resource} {name!r}: a namespace is required")
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def _params(raw: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def error_from_response(status: int, body: bytes) -> APIError:
    """A ``Status`` body → its APIError; anything else → the APIError class of the HTTP code."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return from_status(parsed, status)
    text = body[:ERROR_TEXT_LIMIT].decode("utf-8", "replace").strip() or f"HTTP {status}"
    return from_status({"code": status, "message": text}, status)


class Client:
    """Async client for one Kubernetes-compatible API server."""

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        token_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        namespace: str = "default",
        server_hostname: str | None = None,
        timeout: float = 30.0,
        user_agent: str = "atoll/0.1",
        pool_size: int = 100,
        unix_socket: str | None = None,
    ) -> None:
        """``unix_socket``: connect to this Unix socket instead of ``server``'s host (plain HTTP
        to a same-host API server's loopback listener; ``server`` is then ``http://localhost``)."""
        self.server = server.rstrip("/")
        self._unix_socket = unix_socket
        self.namespace = namespace
        """The kubeconfig context's namespace; callers decide whether to use it."""
        self.timeout = timeout
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._token = token
        self._token_file = token_file
        self._token_read_at = time.monotonic()
        self._headers = {"Accept": "application/json", "User-Agent": user_agent, **(headers or {})}
        self._server_hostname = server_hostname
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._discovery = Discovery(self.get_path, self._get_aggregated)

    @classmethod
    def from_config(cls, config: KubeConfig, **kwargs: Any) -> Client:
        return cls(
            config.server,
            ssl_context=config.ssl_context,
            token=config.token,
            token_file=config.token_file,
            headers=config.headers,
            namespace=config.namespace,
            server_hostname=config.server_hostname,
            **kwargs,
        )

    @classmethod
    def from_kubeconfig(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        context: str | None = None,
        **kwargs: Any,
    ) -> Client:
        return cls.from_config(load_kubeconfig(source, context), **kwargs)

    def under_path(self, prefix: str) -> Client:
        """A client of the API served under ``server + prefix`` (a proxied API server), with this
        client's TLS settings and credentials (close it separately)."""
        return Client(
            self.server + prefix,
            ssl_context=self._ssl if isinstance(self._ssl, ssl.SSLContext) else None,
            token=self._token,
            token_file=self._token_file,
            headers=self._headers,
            namespace=self.namespace,
            server_hostname=self._server_hostname,
            timeout=self.timeout,
            pool_size=self._pool_size,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._get_session()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._unix_socket is not None:
                connector = aiohttp.UnixConnector(path=self._unix_socket, limit=self._pool_size)
            else:
                connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

    @property
    def token(self) -> str | None:
        """The bearer token in use (never log it)."""
        return self._token

    def set_token(self, token: str) -> None:
        """Use a renewed bearer token from the next request on (e.g. a rotated ServiceAccount token)."""
        self._token = token

    def _auth_headers(self) -> dict[str, str]:
        if self._token_file and time.monotonic() - self._token_read_at > TOKEN_REREAD_SECONDS:
            try:
                with open(self._token_file) as fh:
                    self._token = fh.read().strip()
                self._token_read_at = time.monotonic()
            except OSError:
                pass  # keep the last good token; the server will say 401 if it expired
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # -- raw requests ------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        client_timeout: aiohttp.ClientTimeout,
        extra_headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {**self._auth_headers(), **(extra_headers or {})}
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type or "application/json"
        what = f"{method} {self.server}{path}"
        try:
            return await self._get_session().request(
                method,
                self.server + path,
                params=_params(params),
                data=data,
                headers=headers,
                timeout=client_timeout,
                server_hostname=self._server_hostname,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ClientTimeoutError(f"{what}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise ClientConnectionError(f"{what}: {exc}") from exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request. Returns decoded JSON (or text), or a :class:`StreamResponse` if
        ``stream`` (the caller closes it; ``read_timeout`` bounds silence between chunks).
        ``headers`` add to (or replace) the client's own for this request (``Accept``)."""
        if stream:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=read_timeout)
        else:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
        response = await self._send(
            method, path, params=params, body=body, content_type=content_type, client_timeout=timeout,
            extra_headers=headers,
        )
        what = f"{method} {path}"
        if stream and response.status < 300:
            return StreamResponse(response, what)
        try:
            raw = await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ClientTimeoutError(f"{what}: timed out reading the response") from exc
        except aiohttp.ClientError as exc:
            raise ClientConnectionError(f"{what}: {exc}") from exc
        finally:
            response.release()
        if response.status >= 300:
            raise error_from_response(response.status, raw)
        if not raw:
            return {}
        if "json" in response.headers.get("Content-Type", "application/json"):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InternalError(f"{what}: invalid JSON in response: {exc}") from exc
        return raw.decode("utf-8", "replace")

    async def websocket(
        self, path: str, *, params: Sequence[tuple[str, str]] = (), protocols: Sequence[str] = ()
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket to ``path`` (a node's exec endpoint); the caller closes it. A refused
        upgrade raises the server's error like any request."""
        what = f"GET {path} (websocket)"
        try:
            return await self._get_session().ws_connect(
                f"{self.server}{path}", params=list(params), protocols=tuple(protocols),
                headers=self._auth_headers(), max_msg_size=STREAM_MESSAGE_MAX, autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_close=10))
        except aiohttp.WSServerHandshakeError as exc:
            raise error_from_response(exc.status, str(exc.message).encode()) from None
        except aiohttp.ClientError as exc:
            raise ClientConnectionError(f"{what}: {exc}") from exc

    async def get_path(self, path: str) -> JSON:
        """GET any path that answers a JSON object (discovery, ``/version``, …)."""
        result = await self.request("GET", path)
        if not isinstance(result, dict):
            raise InternalError(f"GET {path}: expected a JSON object")
        return result

    async def _get_aggregated(self, path: str) -> JSON:
        return await self._json("GET", path, headers={"Accept": AGGREGATED_ACCEPT})

    async def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        result = await self.request(method, path, **kwargs)
        if not isinstance(result, dict):
            raise InternalError(f"{method} {path}: expected a JSON object")
        return result

    # -- verbs -------------------------------------------------------------------------------

    async def get(
        self, rd: ResourceDef, name: str, namespace: str | None = None, subresource: str | None = None
    ) -> JSON:
        return await self._json("GET", resource_path(rd, namespace, name, subresource))

    async def list(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        """One page; ``headers`` e.g. ``METADATA_ONLY`` for a ``PartialObjectMetadataList``."""
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "continue": continue_,
            "resourceVersion": resource_version,
        }
        return await self._json("GET", resource_path(rd, namespace), params=params, headers=headers)

    async def list_all(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int | None = 500,
        resource_version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Items, str]:
        """All items, following ``continue`` tokens; items get ``apiVersion``/``kind`` filled in
        (kube-apiserver omits them inside lists). Returns (items, the list's resourceVersion).
        ``headers=METADATA_ONLY`` lists ``PartialObjectMetadata`` items."""
        items: Items = []
        list_rv = ""
        token: str | None = None
        while True:
            page = await self.list(
                rd,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_=token,
                resource_version=None if token else resource_version,
                headers=headers,
            )
            meta = page.get("metadata") or {}
            list_rv = list_rv or str(meta.get("resourceVersion") or "")
            for item in page.get("items") or ():
                item.setdefault("apiVersion", rd.api_version)
                item.setdefault("kind", rd.kind)
                items.append(item)
            token = meta.get("continue") or None
            if not token:
                return items, list_rv

    async def watch(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        resource_version: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        inactivity_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[tuple[str, JSON], None]:
        """Yield ``(type, object)`` until the server ends the stream. An ``ERROR`` event raises its
        APIError (``Gone`` for 410); silence longer than ``inactivity_timeout`` raises
        :class:`ClientTimeoutError`. Use ``contextlib.aclosing`` to stop early."""
        params = {
            "watch": True,
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": True if allow_bookmarks else None,
        }
        path = resource_path(rd, namespace)
        stream: StreamResponse = await self.request(
            "GET", path, params=params, stream=True, read_timeout=inactivity_timeout, headers=headers
        )
        with stream:
            async for line in stream.lines():
                try:
                    event = orjson.loads(line)
                    kind, obj = str(event["type"]), event["object"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    bad = line[:ERROR_TEXT_LIMIT]
                    raise InternalError(f"watch {path}: malformed event: {bad!r}") from exc
                if kind == "ERROR":
                    if isinstance(obj, dict) and obj.get("kind") == "Status":
                        raise from_status(obj)
                    raise InternalError(f"watch {path}: error event: {str(obj)[:ERROR_TEXT_LIMIT]}")
                yield kind, obj

    async def create(
        self,
        rd: ResourceDef,
        body: JSON,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> JSON:
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        if rd.namespaced and not namespace:
            raise ValueError(f"{rd.group_resource}: a namespace is required to create")
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        return await self._json("POST", resource_path(rd, namespace), params=params, body=body)

    async def update(
        self,
        rd: ResourceDef,
        body: JSON,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> JSON:
        """PUT the whole object; ``metadata.resourceVersion`` in the body is the precondition."""
        meta = body.get("metadata") or {}
        path = resource_path(rd, meta.get("namespace"), str(meta["name"]), subresource)
        return await self._json("PUT", path, params={"fieldManager": field_manager}, body=body)

    async def patch(
        self,
        rd: ResourceDef,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> JSON:
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = {"fieldManager": field_manager, "force": force}
        return await self._json(
            "PATCH",
            resource_path(rd, namespace, name, subresource),
            params=params,
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )

    async def delete(
        self,
        rd: ResourceDef,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        preconditions: JSON | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> JSON:
        """Returns the deleted object (or the object marked for deletion), or a ``Status``."""
        options = _delete_options(propagation_policy, preconditions, grace_period_seconds, dry_run)
        return await self._json("DELETE", resource_path(rd, namespace, name), body=options)

    async def delete_collection(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: str | None = None,
    ) -> JSON:
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        options = _delete_options(propagation_policy, None, None, False)
        return await self._json("DELETE", resource_path(rd, namespace), params=params, body=options)

    # -- discovery ---------------------------------------------------------------------------

    async def discover(self, api_version: str, kind: str) -> ResourceDef:
        """The ResourceDef for ``apiVersion``/``kind`` via legacy discovery (cached)."""
        return await self._discovery.resource(api_version, kind)

    async def resource_for(self, obj: Mapping[str, Any]) -> ResourceDef:
        """The ResourceDef of an object read from YAML."""
        return await self.discover(str(obj["apiVersion"]), str(obj["kind"]))

    async def preferred_resources(self) -> tuple[ResourceDefs, dict[str, Exception]]:
        """All resources of the preferred group-versions, plus the group-versions that failed."""
        return await self._discovery.preferred_resources()

    def invalidate_discovery(self) -> None:
        self._discovery.invalidate()


def _delete_options(
    propagation_policy: str | None,
    preconditions: JSON | None,
    grace_period_seconds: int | None,
    dry_run: bool,
) -> JSON | None:
    options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        options["propagationPolicy"] = propagation_policy
    if preconditions:
        options["preconditions"] = preconditions
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if dry_run:
        options["dryRun"] = ["All"]
    return options if len(options) > 2 else None
