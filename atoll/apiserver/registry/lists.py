"""LIST: selectors, pagination with continue tokens, consistent reads from the watch cache.

The first page is served from the watch cache at its current revision R. A continue token holds
``{rv: R, start: next key}``; later pages come from the cache's snapshot at R (the current objects
with the changes after R undone from the event history) while the history still reaches back to R,
otherwise from the store at revision R (so pages form one consistent snapshot) or 410 once R has
been compacted. Pages are built lazily: a page of 500 touches about 500 objects, not the rest.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.api.selectors import (
    FieldSelector,
    LabelSelector,
    field_selectors_for,
    parse_field_selector,
    parse_label_selector,
)
from atoll.apiserver.cache.entries import Cached, decode_or_skip
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry import conversion
from atoll.store.base import Compacted, Store

JSON = dict[str, Any]
Matcher = Callable[[JSON], bool]

_EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter."
)


@dataclass(slots=True)
class Page:
    items: list[Cached]
    revision: int
    continue_token: str
    remaining: int | None


class Selection:
    """The predicate of a LIST/WATCH's label and field selectors. ``exact`` tells the value a
    field is pinned to (the watch cache indexes such watchers, see ``cache.fanout``)."""

    __slots__ = ("_fields", "_labels")

    def __init__(self, labels: LabelSelector | None, fields: FieldSelector | None) -> None:
        self._labels = labels
        self._fields = fields

    def __call__(self, obj: JSON) -> bool:
        try:
            if self._labels is not None and not self._labels.matches((obj.get("metadata") or {}).get("labels")):
                return False
            return self._fields is None or self._fields.matches(obj)
        except (AttributeError, TypeError, KeyError, ValueError):
            return False  # a malformed stored object (from before validation) matches no selector

    def exact(self, field: str) -> str | None:
        return None if self._fields is None else self._fields.exact(field)

    def only(self, field: str) -> bool:
        """True when the selectors are ``field=value`` alone."""
        fields = self._fields
        return self._labels is None and fields is not None and len(fields.requirements) == 1 and (
            fields.exact(field) is not None
        )


def make_matcher(rd: ResourceDef, label_selector: str, field_selector: str) -> Selection | None:
    """A predicate for the selectors, or None when they select everything."""
    labels = parse_label_selector(label_selector) if label_selector else None
    fields = parse_field_selector(field_selector, field_selectors_for(rd.group, rd.kind)) if field_selector else None
    if labels is not None and labels.empty:
        labels = None
    if fields is not None and fields.empty:
        fields = None
    if labels is None and fields is None:
        return None
    return Selection(labels, fields)


def _encode_token(revision: int, start: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": revision, "start": start})).decode()


def _decode_token(token: str, prefix: str, current: int) -> tuple[int, str]:
    """(revision, start key) of a continue token we issued; 400 for anything else (a forged token
    may not name a future revision nor start outside the listed resource)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        rv, start = data["rv"], data["start"]
    except Exception:
        rv, start = None, None
    if not isinstance(rv, int) or isinstance(rv, bool) or rv < 1 or not isinstance(start, str):
        raise errors.BadRequest(f"continue: invalid continue token: {token[:64]!r}")
    if rv > current:
        raise errors.BadRequest(f"continue: the token's revision {rv} is newer than the server's ({current})")
    if not start.startswith(prefix):
        raise errors.BadRequest("continue: the token was issued for another resource or namespace")
    return rv, start


async def list_page(
    store: Store,
    cache: WatchCache,
    rd: ResourceDef,
    namespace: str | None,
    *,
    matcher: Matcher | None,
    limit: int,
    continue_token: str,
    exact_name: str | None,
) -> Page:
    prefix = rd.key_prefix(namespace)
    if exact_name is not None and not continue_token:
        key = rd.key(namespace, exact_name) if (namespace or not rd.namespaced) else None
        if key is not None:
            one = cache.get(key)
            items = [one] if one is not None and (matcher is None or matcher(one.obj)) else []
            return Page(items, cache.revision, "", None)
    if continue_token:
        revision, start = _decode_token(continue_token, prefix, cache.revision)
        if revision != cache.revision:
            changed = cache.changed_since(prefix, revision)
            if changed is None:
                return await _store_page(store, rd, prefix, revision, start, matcher, limit)
            return _page(_snapshot(cache, prefix, start, changed), revision, matcher, limit, None)
    else:
        revision, start = cache.revision, ""
    if matcher is None and not limit:
        return Page(cache.list(prefix, start), revision, "", None)
    total = cache.count_from(prefix, start) if matcher is None else None
    return _page(cache.iter_from(prefix, start), revision, matcher, limit, total)


def _page(
    candidates: Iterator[tuple[str, Cached]], revision: int, matcher: Matcher | None, limit: int, total: int | None
) -> Page:
    """Up to ``limit`` matching items; a continue token (and the count left) if more follow."""
    out: list[Cached] = []
    for index, (key, item) in enumerate(candidates):
        if matcher is not None and not matcher(item.peek()):
            continue
        if limit and len(out) == limit:
            return Page(out, revision, _encode_token(revision, key), None if total is None else total - index)
        out.append(item)
    return Page(out, revision, "", None)


def _snapshot(
    cache: WatchCache, prefix: str, start: str, changed: dict[str, Cached | None]
) -> Iterator[tuple[str, Cached]]:
    """The objects at an earlier revision from ``start``, in key order: the current ones merged
    with ``changed`` (each changed key's state then; None: it did not exist)."""
    then = sorted((k, c) for k, c in changed.items() if k >= start)
    j = 0
    for key, item in cache.iter_from(prefix, start):
        while j < len(then) and then[j][0] <= key:
            old_key, was = then[j]
            j += 1
            if was is not None:
                yield old_key, was
        if key not in changed:
            yield key, item
    for old_key, was in then[j:]:
        if was is not None:
            yield old_key, was


async def _store_page(
    store: Store, rd: ResourceDef, prefix: str, revision: int, start: str, matcher: Matcher | None, limit: int
) -> Page:
    out: list[Cached] = []
    cursor = start
    while True:
        try:
            batch = await store.list(prefix, revision=revision, limit=max(limit, 100) + 1, start_key=cursor)
        except Compacted:
            raise errors.Gone(_EXPIRED_CONTINUE) from None
        for kv in batch.items:
            cached = decode_or_skip(kv.key, kv.value, kv.revision, keep_decoded=False)
            if cached is None:
                continue
            if matcher is not None and not matcher(cached.peek()):
                continue
            if limit and len(out) == limit:
                return Page(out, revision, _encode_token(revision, kv.key), None)
            out.append(cached)
        if not batch.more or not batch.items:
            return Page(out, revision, "", None)
        cursor = batch.items[-1].key + "\x00"


def list_body(rd: ResourceDef, page: Page) -> bytes:
    """``{"kind":"XList",...,"items":[...]}`` assembled from the cached encodings (at ``rd``'s
    version: ``conversion``)."""
    md: JSON = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        md["continue"] = page.continue_token
        if page.remaining is not None:
            md["remainingItemCount"] = page.remaining
    head = orjson.dumps({"kind": rd.kind_list(), "apiVersion": rd.api_version, "metadata": md})
    if rd.storage_version:
        items = b",".join(conversion.raw(rd, c) for c in page.items)
    else:
        items = b",".join(c.raw for c in page.items)
    return head[:-1] + b',"items":[' + items + b"]}"
