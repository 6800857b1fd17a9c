"""The calls to CRDs' conversion webhooks, as kube-apiserver makes them.

One ``ConversionReview`` (``apiextensions.k8s.io/v1``) per batch of objects is POSTed to the CRD's
``spec.conversion.webhook.clientConfig.url``, verified against its ``caBundle`` (the system CAs
without one), within ``TIMEOUT`` (one deadline for the call, a second attempt included). The answer
is checked as kube-apiserver's ``webhook_converter.go`` checks it: a ``ConversionReview`` of
``apiextensions.k8s.io/v1`` whose ``response`` has the request's ``uid``, ``result.status``
``Success`` and a list of as many converted objects, in order, each at the desired ``apiVersion``,
of the same kind, name, namespace and uid, its labels and annotations maps of strings; as
kube-apiserver, only the labels and annotations of a converted object's metadata are taken from the
webhook (the rest is kept from the original). Any failure, a malformed answer too, is a 500
``InternalError`` naming the webhook of the CRD, with kube-apiserver's message.

As kube-apiserver's webhook client manager, the API server keeps one client per distinct
``(url, caBundle)`` (``WebhookClients``): an aiohttp session whose keep-alive connections later
calls reuse (no TCP and TLS handshake per batch; a connection idle for 15 s, aiohttp's keep-alive,
is closed). Only the configurations of served CRDs (``CRDManager`` says which: ``use``) are kept: a
client is made on first use; it is dropped when no served CRD uses its configuration any more (a
CRD's ``clientConfig`` changed or the CRD was deleted: ``drop``) and, the least recently used first,
beyond ``CLIENTS`` kept; a dropped client is closed as soon as its calls in flight are done; all
(also those in a call) are closed when the API server stops. A call for a configuration no served
CRD uses (a watch keeps the resource definition it started with, so a CRD's old ``clientConfig``)
has a one-shot session, closed after the call: nothing is kept that nothing would drop. A review
the server ended the connection under without answering (an idle kept connection it had just
closed: disconnected, reset, or closing as the review was written) is sent once more: a conversion
has no side effects.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import functools
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


@functools.lru_cache(maxsize=64)
def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """One context per caBundle, shared by its clients: building one costs ~20 ms of the event loop
    (the system's trust store without a caBundle), which a one-shot client would pay per call."""
    if not ca_bundle:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())


def _failed(resource: str, detail: str) -> errors.InternalError:
    return errors.InternalError(f"conversion webhook for {resource} failed: {detail}")


def _retried(exc: Exception) -> bool:
    """Whether ``exc`` is the webhook ending a kept connection under the review (it disconnected,
    reset it, or the write met it closing): the review is sent once more."""
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError):
        return True
    return (
        isinstance(exc, aiohttp.ClientOSError)
        and not isinstance(exc, aiohttp.ClientConnectorError)  # (no connection yet: nothing was kept)
        and exc.errno in (errno.ECONNRESET, errno.EPIPE)
    )


class _Client:
    """The session of one configuration, and how many calls use it now."""

    __slots__ = ("calls", "session")

    def __init__(self, ca_bundle: str) -> None:
        connector = aiohttp.TCPConnector(ssl=_ssl_context(ca_bundle))
        # no timeout of its own: a call's attempts share one deadline (``WebhookClients._call``)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        self.calls = 0


class WebhookClients:
    """The API server's clients of conversion webhooks, one per ``(url, caBundle)`` (see the module
    docstring); ``convert`` calls one, ``use`` says which are kept, ``drop`` and ``close`` end them."""

    def __init__(self, limit: int = CLIENTS) -> None:
        self._limit = limit
        self._clients: OrderedDict[ClientKey, _Client] = OrderedDict()  # least recently used first
        self._in_use: set[ClientKey] = set()  # the configurations of served CRDs: the only ones kept
        self._draining: set[_Client] = set()  # dropped or one-shot: closed when their calls are done
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
        except TimeoutError:
            raise _failed(resource, f"no answer within {TIMEOUT:g}s") from None
        except (aiohttp.ClientError, ValueError, ssl.SSLError, OSError) as exc:
            raise _failed(resource, str(exc) or type(exc).__name__) from None
        return _converted(resource, uid, answer, objects, desired)

    def use(self, config: JSON) -> None:
        """A served CRD calls the webhook ``config``: its client is kept (made on first use)."""
        self._in_use.add(client_key(config))

    def drop(self, config: JSON) -> None:
        """Stop keeping the client of ``config`` (no served CRD uses it any more); it is closed once
        its calls in flight are done, and a later call (of a reader holding the old definition)
        uses a one-shot client."""
        key = client_key(config)
        self._in_use.discard(key)
        client = self._clients.pop(key, None)
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
        beyond the limit); of a configuration no served CRD uses, a one-shot one closed after the
        call."""
        if self._closed:
            raise _failed(resource, "the API server is stopping")
        key = client_key(config)
        if key not in self._in_use:
            once = _Client(key[1])
            self._draining.add(once)  # closed when its call is done (at once by ``close``)
            return once
        kept = self._clients.get(key)
        if kept is not None:
            self._clients.move_to_end(key)
            return kept
        client = self._clients[key] = _Client(key[1])
        while len(self._clients) > self._limit:
            _, oldest = self._clients.popitem(last=False)
            self._retire(oldest)
        return client

    async def _call(self, client: _Client, url: str, review: JSON, resource: str) -> Any:
        """The webhook's answer to ``review`` within ``TIMEOUT`` (both attempts together), sent once
        more if the server ended the connection without one."""
        client.calls += 1
        try:
            async with asyncio.timeout(TIMEOUT):
                try:
                    return await _post(client.session, url, review, resource)
                except aiohttp.ClientError as exc:
                    if not _retried(exc) or client.session.closed:  # (closed under the call: the server stops)
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


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names = {dict: "object", list: "array", str: "string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _a(value: Any) -> str:
    """``value``'s JSON type with its article: "a string", "an array"."""
    name = _json_type(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _field(parent: JSON, name: str, path: str, kind: type) -> Any:
    """``parent[name]`` (None if absent or null), else a malformed answer if it is not a ``kind``."""
    value = parent.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"cannot decode {path}: {_a(value)}, not {_a(kind())}")
    return value


def _response(uid: str, answer: Any) -> JSON:
    """The ``response`` of a ConversionReview ``answer`` checked as kube-apiserver does (``ValueError``:
    the answer is malformed or not a success)."""
    if not isinstance(answer, dict):
        raise ValueError(f"cannot decode the answer: {_a(answer)}, not an object")
    gvk = f"{answer.get('apiVersion') or ''}, Kind={answer.get('kind') or ''}"
    if gvk != f"{REVIEW_VERSION}, Kind=ConversionReview":
        raise ValueError(f"expected webhook response of {REVIEW_VERSION}, Kind=ConversionReview, got {gvk}")
    response = _field(answer, "response", "response", dict)
    if response is None:
        raise ValueError("no response provided")
    if response.get("uid") != uid:
        raise ValueError(f'expected response.uid="{uid}", got "{response.get("uid") or ""}"')
    result = _field(response, "result", "response.result", dict) or {}
    if result.get("status") != "Success":
        message = result.get("message")
        if message:
            raise ValueError(str(message))
        raise ValueError(f"response.result.status was '{result.get('status') or ''}', not 'Success'")
    _field(response, "convertedObjects", "response.convertedObjects", list)
    return dict(response)


def _metadata(original: JSON, new: JSON) -> JSON:
    """The metadata of ``original`` with the labels and annotations of ``new`` (``ValueError``: they
    are malformed)."""
    theirs = new.get("metadata")
    if theirs is None:
        raise ValueError("missing metadata in converted object")
    if not isinstance(theirs, dict):
        raise ValueError(f"invalid metadata of type {_json_type(theirs)} in converted object")
    metadata = dict(original.get("metadata") or {})
    for key in ("labels", "annotations"):
        value = theirs.get(key)
        if value is None:
            metadata.pop(key, None)
            continue
        if not isinstance(value, dict):
            raise ValueError(f"invalid metadata.{key} of type {_json_type(value)} in converted object")
        for k, v in value.items():
            if not isinstance(v, str):
                raise ValueError(f"metadata.{key}[{k}] must be a string, but is {_json_type(v)} in converted object")
        metadata[key] = value
    return metadata


def _check_converted(original: JSON, new: Any, desired: str) -> None:
    """``ValueError`` if ``new`` is not ``original`` at ``desired`` (kind, name, namespace, uid kept)."""
    if not isinstance(new, dict):
        raise ValueError(f"{_a(new)}, not an object")
    if new.get("apiVersion") != desired:
        raise ValueError(f"invalid groupVersion (expected {desired}, received {new.get('apiVersion') or ''})")
    if new.get("kind") != original.get("kind"):
        raise ValueError(f"invalid kind (expected {original.get('kind')}, received {new.get('kind') or ''})")
    ours, theirs = original.get("metadata") or {}, new.get("metadata")
    theirs = theirs if isinstance(theirs, dict) else {}
    for key in ("name", "namespace", "uid"):
        if (ours.get(key) or "") != (theirs.get(key) or ""):
            what = "UID" if key == "uid" else key  # kube's words
            raise ValueError(f"must have the same {what}: {ours.get(key) or ''} != {theirs.get(key) or ''}")


def _converted(resource: str, uid: str, answer: Any, objects: list[JSON], desired: str) -> list[JSON]:
    """The converted ``objects`` of the webhook's ``answer``; any malformed answer, as
    kube-apiserver's, is an ``InternalError`` naming the webhook's CRD."""
    try:
        response = _response(uid, answer)
    except ValueError as exc:
        raise _failed(resource, str(exc)) from None
    converted = response.get("convertedObjects") or []
    if len(converted) != len(objects):
        raise errors.InternalError(
            f"conversion webhook for {resource} returned {len(converted)} objects, expected {len(objects)}"
        )
    out = []
    for i, (original, new) in enumerate(zip(objects, converted, strict=True)):
        try:
            _check_converted(original, new, desired)
        except ValueError as exc:
            raise errors.InternalError(
                f"conversion webhook for {resource} returned invalid converted object at index {i}: {exc}"
            ) from None
        try:
            metadata = _metadata(original, new)
        except ValueError as exc:
            raise errors.InternalError(
                f"conversion webhook for {resource} returned invalid metadata in object at index {i}: {exc}"
            ) from None
        out.append({**new, "metadata": metadata})
    return out
