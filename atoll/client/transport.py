"""The HTTP transport under :class:`atoll.client.Client`: one pooled session, credentials, raw requests.

* **One ``aiohttp.ClientSession`` per client**, created lazily inside the running loop, so a
  client can be built in synchronous code and every request reuses pooled connections: TCP with
  the kubeconfig's TLS context, or a Unix socket (a same-host API server's loopback listener).
  This package is the only place in Atoll that opens HTTP client sessions.
* **Bearer tokens** are sent on every request; a projected token file is re-read once a minute.
* **In-process reads and writes**: a client built with a ``local`` backend (the master's own admin
  client) serves LIST/WATCH/GET from it without HTTP, and with ``local_writes`` its writes too
  (:mod:`atoll.client.local`).
* **Errors are the server's errors.** A non-2xx answer is parsed back into the matching
  :class:`atoll.api.errors.APIError` (``except NotFound:`` works like ``apierrors.IsNotFound``);
  transport problems become :class:`ClientConnectionError`. aiohttp never leaks.

:class:`Transport` is the base class of the client: the typed verbs on top of it call
:meth:`Transport.request` directly (no wrapper object per request).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

from atoll.api.errors import InternalError
from atoll.client.errors import ClientConnectionError, ClientTimeoutError, error_from_response
from atoll.client.kubelet import STREAM_MESSAGE_MAX
from atoll.client.local import LocalReads, LocalWrites
from atoll.client.stream import StreamResponse

JSON = dict[str, Any]
TOKEN_REREAD_SECONDS = 60.0
"""Projected service-account tokens rotate (hourly by default); re-reading each minute is plenty."""


def _params(raw: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class Transport:
    """Connection settings, the pooled session and raw requests to one API server."""

    local: LocalReads | None = None
    """In-process LIST/WATCH/GET (:mod:`atoll.client.local`), or None: over HTTP."""
    local_writes: LocalWrites | None = None
    """In-process creates, updates, patches and deletes, or None: over HTTP."""

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
        local: LocalReads | None = None,
        local_writes: LocalWrites | None = None,
    ) -> None:
        """``unix_socket``: connect to this Unix socket instead of ``server``'s host (plain HTTP
        to a same-host API server's loopback listener; ``server`` is then ``http://localhost``).
        ``local``: serve LIST/WATCH/GET in-process from this backend (:mod:`atoll.client.local`;
        the master's own admin client); ``local_writes``: its writes too."""
        self.local = local
        self.local_writes = local_writes
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

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
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

    @property
    def user_agent(self) -> str:
        return self._headers["User-Agent"]

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
            method,
            path,
            params=params,
            body=body,
            content_type=content_type,
            client_timeout=timeout,
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
                f"{self.server}{path}",
                params=list(params),
                protocols=tuple(protocols),
                headers=self._auth_headers(),
                max_msg_size=STREAM_MESSAGE_MAX,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_close=10),
            )
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

    async def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        result = await self.request(method, path, **kwargs)
        if not isinstance(result, dict):
            raise InternalError(f"{method} {path}: expected a JSON object")
        return result
