"""The calls to CRDs' conversion webhooks, as kube-apiserver makes them.

One ``ConversionReview`` (``apiextensions.k8s.io/v1``) per batch of objects is POSTed to the CRD's
``spec.conversion.webhook.clientConfig.url``, verified against its ``caBundle`` (the system CAs
without one), within ``TIMEOUT``. The answer must be ``Success`` with as many converted objects,
in order, each at the desired ``apiVersion`` and of the same kind; as kube-apiserver, only the
labels and annotations of a converted object's metadata are taken from the webhook (the rest is
kept from the original). Any failure is a 500 ``InternalError`` naming the webhook.

As kube-apiserver's webhook client manager, the API server keeps one client per distinct
``(url, caBundle)`` (``WebhookClients``): an aiohttp session whose keep-alive connections later
calls reuse (no TCP and TLS handshake per batch; a connection idle for 15 s, aiohttp's keep-alive,
is closed). A client is made on first use; it is dropped when no served CRD uses its configuration
any more (a CRD's ``clientConfig`` changed or the CRD was deleted: ``CRDManager`` says so) and, the
least recently used first, beyond ``CLIENTS`` kept; a dropped client is closed as soon as its calls
in flight are done; all (also those in a call) are closed when the API server stops. A review the
server disconnected from without answering (an idle kept connection it had just closed) is sent
once more: a conversion has no side effects.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import uuid
from collections import OrderedDict
from typing import Any

import aiohttp

from atoll.api import errors

JSON = dict[str, Any]
TIMEOUT = 30.0
"""Seconds a conversion webhook has to answer (kube-apiserver's default)."""
REVIEW_VERSION = "apiextensions.k8s.io/v1"
CLIENTS = 100
"""Clients kept at most (distinct ``(url, caBundle)``); beyond it the least recently used is dropped."""

ClientKey = tuple[str, str]
"""``(url, caBundle)`` of a ``clientConfig``: the configurations that share one client."""


def client_key(config: JSON) -> ClientKey:
    """The configuration of ``config`` (a ``clientConfig``) that a client is kept for."""
    return str(config["url"]), str(config.get("caBundle") or "")


def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    if not ca_bundle:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())


def _failed(resource: str, detail: str) -> errors.InternalError:
    return errors.InternalError(f"conversion webhook for {resource} failed: {detail}")


class _Client:
    """The session of one configuration, and how many calls use it now."""

    __slots__ = ("calls", "session")

    def __init__(self, ca_bundle: str) -> None:
        connector = aiohttp.TCPConnector(ssl=_ssl_context(ca_bundle))
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        self.calls = 0


class WebhookClients:
    """The API server's clients of conversion webhooks, one per ``(url, caBundle)`` (see the module
    docstring); ``convert`` calls one, ``drop`` and ``close`` end them."""

    def __init__(self, limit: int = CLIENTS) -> None:
        self._limit = limit
        self._clients: OrderedDict[ClientKey, _Client] = OrderedDict()  # least recently used first
        self._draining: set[_Client] = set()  # dropped, closed when their calls in flight are done
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    def sessions(self) -> list[aiohttp.ClientSession]:
        """The sessions of the clients kept now, least recently used first."""
        return [c.session for c in self._clients.values()]

    async def convert(self, config: JSON, resource: str, objects: list[JSON], desired: str) -> list[JSON]:
        """``objects`` converted to ``desired`` by the webhook ``config`` (a ``clientConfig``) of
        ``resource`` (``plural.group``, for error messages)."""
        uid = str(uuid.uuid4())
        review = {
            "apiVersion": REVIEW_VERSION,
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
        }
        try:
            client = self._client(config, resource)
            answer = await self._call(client, str(config["url"]), review, resource)
        except errors.APIError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError, OSError) as exc:
            raise _failed(resource, str(exc) or type(exc).__name__) from None
        return _converted(resource, uid, answer, objects, desired)

    def drop(self, config: JSON) -> None:
        """Stop keeping the client of ``config`` (no served CRD uses it any more); it is closed once
        its calls in flight are done, and a later call makes a new one."""
        client = self._clients.pop(client_key(config), None)
        if client is not None:
            self._retire(client)

    async def close(self) -> None:
        """Close every client, also those still in a call (the API server stops); calls from now on fail."""
        self._closed = True
        clients = [*self._clients.values(), *self._draining]
        self._clients.clear()
        self._draining.clear()
        await asyncio.gather(*(c.session.close() for c in clients), *self._closing)

    def _client(self, config: JSON, resource: str) -> _Client:
        """The client of ``config``: the kept one, else a new one (the least recently used dropped
        beyond the limit)."""
        if self._closed:
            raise _failed(resource, "the API server is stopping")
        key = client_key(config)
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        client = self._clients[key] = _Client(key[1])
        while len(self._clients) > self._limit:
            _, oldest = self._clients.popitem(last=False)
            self._retire(oldest)
        return client

    async def _call(self, client: _Client, url: str, review: JSON, resource: str) -> Any:
        """The webhook's answer to ``review``, sent once more if the server disconnected without one."""
        client.calls += 1
        try:
            try:
                return await _post(client.session, url, review, resource)
            except aiohttp.ServerDisconnectedError:
                if client.session.closed:  # closed under the call: the API server stops
                    raise
                return await _post(client.session, url, review, resource)
        finally:
            client.calls -= 1
            if client.calls == 0 and client in self._draining:
                self._draining.discard(client)
                self._close_soon(client)

    def _retire(self, client: _Client) -> None:
        if client.calls:
            self._draining.add(client)
        else:
            self._close_soon(client)

    def _close_soon(self, client: _Client) -> None:
        task = asyncio.get_running_loop().create_task(client.session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _post(session: aiohttp.ClientSession, url: str, review: JSON, resource: str) -> Any:
    async with session.post(url, json=review) as reply:
        if reply.status != 200:
            raise _failed(resource, f"the server answered {reply.status}")
        return await reply.json(content_type=None)


def _converted(resource: str, uid: str, answer: Any, objects: list[JSON], desired: str) -> list[JSON]:
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict) or response.get("uid") != uid:
        raise _failed(resource, "the response is not a ConversionReview for the request")
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise _failed(resource, str(result.get("message") or "conversion failed"))
    converted = response.get("convertedObjects")
    if not isinstance(converted, list) or len(converted) != len(objects):
        raise _failed(resource, f"expected {len(objects)} converted objects, got {len(converted or [])}")
    out = []
    for original, new in zip(objects, converted, strict=True):
        if not isinstance(new, dict) or new.get("apiVersion") != desired or new.get("kind") != original.get("kind"):
            raise _failed(resource, f"a converted object is not a {original.get('kind')} of {desired}")
        metadata = dict(original.get("metadata") or {})
        theirs: JSON = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
        for key in ("labels", "annotations"):
            if theirs.get(key):
                metadata[key] = theirs[key]
            else:
                metadata.pop(key, None)
        out.append({**new, "metadata": metadata})
    return out
