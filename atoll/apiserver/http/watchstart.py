"""How a watch starts: what its request asks for and the events it begins with, shared by the HTTP
stream (:mod:`atoll.apiserver.http.watch`) and the in-process watch (:mod:`atoll.apiserver.http.local`),
so both have one semantic.

``resourceVersion`` "" or "0": synthetic ADDED events for the current objects, then live events;
N: the cached history after N (410 when no longer retained). ``sendInitialEvents=true`` (with
``resourceVersionMatch=NotOlderThan``, client-go's watch-list) always begins with the current
state as ADDED events -- after the cache has caught up with N, or with the store for "" (the
caller waits: ``ResourceHandlers.catch_up``) -- and, when bookmarks are allowed, a BOOKMARK
annotated ``k8s.io/initial-events-end: "true"`` at the revision of that state.
``sendInitialEvents=false`` begins with live events only. ``timeoutSeconds`` ends the stream; without
it, a random time in ``[min_timeout, max_timeout]``. Booleans are read as kube-apiserver reads them
(``params.flag``: "0" and "false" in any case are false, any other value true).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.cache.watchcache import WatchCache, WatchEvent
from atoll.apiserver.cache.watchers import Filter, Watcher
from atoll.apiserver.registry import params

JSON = dict[str, Any]
INITIAL_EVENTS_END = {"k8s.io/initial-events-end": "true"}
"""The annotation of the BOOKMARK that ends a watch's initial events."""


@dataclass(frozen=True, slots=True)
class WatchStreamSettings:
    bookmark_interval: float = 10.0
    """Seconds between BOOKMARK events on a stream that asked for them (kube-apiserver: about 1 min;
    shorter here so informers' resume points stay fresh on a quiet resource)."""
    min_timeout: float = 1800.0
    max_timeout: float = 3600.0
    """Without ``timeoutSeconds`` a stream ends after a random time in [min, max] (kube-apiserver's
    ``--min-request-timeout`` spread), so clients reconnect to a fresh server now and then."""


def parse_rv(value: str) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"invalid resourceVersion: {value!r}") from None


def _text(value: Any) -> str:
    """A query value as it reads over HTTP (an in-process caller's None is absent, True "true")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class WatchStart:
    """What one watch request asks for."""

    resource_version: str
    """As given ("": none)."""
    revision: int
    send_initial: bool | None
    """``sendInitialEvents``; None when not given."""
    bookmarks: bool
    timeout: float
    """Seconds until the stream ends."""


def watch_start(query: Mapping[str, Any], settings: WatchStreamSettings) -> WatchStart:
    """Read a watch's query (HTTP strings, or an in-process client's values); 400 for a bad one."""
    rv = _text(query.get("resourceVersion"))
    raw_timeout = _text(query.get("timeoutSeconds"))
    try:
        timeout = float(raw_timeout or 0) or random.uniform(settings.min_timeout, settings.max_timeout)
    except ValueError:
        raise errors.BadRequest(f"invalid timeoutSeconds: {raw_timeout!r}") from None
    send_initial = params.flag(query.get("sendInitialEvents"))
    params.watch_resource_version_match(
        _text(query.get("resourceVersionMatch")), send_initial, _text(query.get("continue"))
    )
    return WatchStart(
        resource_version=rv,
        revision=parse_rv(rv),
        send_initial=send_initial,
        bookmarks=params.flag(query.get("allowWatchBookmarks")) is True,
        timeout=timeout,
    )


def begin(
    cache: WatchCache, prefix: str, matcher: Filter | None, start: WatchStart
) -> tuple[Watcher, list[WatchEvent], int | None]:
    """Register the watch: its watcher, the events it begins with, and the revision of its
    initial-events-end BOOKMARK (None: it sends none). ``cache.watch`` is synchronous, so that
    revision is exactly the state the initial events show."""
    snapshot = cache.revision
    if start.send_initial:
        revision = 0  # the current state, whatever the resourceVersion (NotOlderThan: caught up already)
    elif start.send_initial is False and not start.revision:
        revision = snapshot  # from now on, with no initial events
    else:
        revision = start.revision
    watcher, initial = cache.watch(prefix, matcher, revision)
    return watcher, initial, snapshot if start.send_initial and start.bookmarks else None


def bookmark(rd: ResourceDef, revision: int, annotations: JSON | None = None) -> JSON:
    """A BOOKMARK event's object: only the kind and ``metadata.resourceVersion`` (and annotations);
    a metadata-only or Table watch transforms it as its other events' objects."""
    md: JSON = {"resourceVersion": str(revision)}
    if annotations:
        md["annotations"] = annotations
    return {"kind": rd.kind, "apiVersion": rd.api_version, "metadata": md}
