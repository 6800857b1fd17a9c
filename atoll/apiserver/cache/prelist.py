"""The previous states of the history rows from before the watch cache's initial list.

At start the cache replays the store's rows of the revisions just before its initial list into
its history, so clients of the previous server process can resume from a resourceVersion. A live
event carries the object's previous state (a selected watch needs it: an object that leaves the
selector is sent as DELETED with that content, one that enters it as ADDED); a replayed row does
not come with it. Here each replayed row gets it: from the key's earlier row in the replayed
window as they are remembered (``chain``), or, for a key's first row there, from the store on
demand (``resolve``, once per row, when a selected watch first replays it): its row at the
row's ``prev_revision``, which is the key's state at the window's start -- a few rows are read
one by one, many with one paged LIST of the watch's prefix at that revision. A predecessor the
store no longer has (compacted) or cannot decode stays unknown, and a selected watch that would
need it gets 410 (its client relists).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from atoll.apiserver.cache.entries import Cached, decode_or_skip
from atoll.apiserver.cache.watchers import WatchEvent
from atoll.store.base import Compacted, KeyValue, Store

log = logging.getLogger(__name__)

POINT_READ = 16
"""A row read alone costs about as much as this many objects of a LIST (SQLite: ~120 us and ~7 us):
fewer rows to resolve than the prefix's objects / this are read one by one, more with one paged LIST
of the watch's prefix at the window's start."""
PAGE = 256


class PreList:
    """The replayed window's previous states (one per watch cache)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.listed = 0
        """The initial list's revision: rows at or below it are replayed, later ones live."""
        self._last: dict[str, Cached] | None = {}  # key -> its latest replayed state (None: replay over)
        self._pending: dict[int, int] = {}  # revision -> prev_revision of replayed rows to resolve

    def chain(self, key: str, etype: str, cached: Cached | None, revision: int, prev_revision: int) -> Cached | None:
        """The previous state of a replayed row of ``key`` (``cached``: its state, None for a row
        that could not be decoded), when an earlier replayed row tells it; remembers this one.
        A MODIFIED it cannot tell is left for ``resolve``."""
        last = self._last
        if last is None:
            return None
        previous = None if etype == "ADDED" else last.get(key)
        if previous is None and etype == "MODIFIED" and cached is not None:
            self._pending[revision] = prev_revision
        if cached is None or etype == "DELETED":
            last.pop(key, None)
        else:
            last[key] = cached
        return previous

    def done(self) -> None:
        """The replay is over (a live event came): forget the window's latest states."""
        self._last = None

    def unknown(self, event: WatchEvent) -> bool:
        """``event`` is a replayed MODIFIED whose previous state is not known (yet)."""
        return event.previous is None and event.type == "MODIFIED" and event.revision <= self.listed

    async def resolve(self, events: Iterable[WatchEvent], prefix: str, start: int, objects: int) -> None:
        """Give the replayed MODIFIEDs under ``prefix`` (which holds about ``objects`` objects)
        among ``events`` (rows after ``start``, the history's first revision) their previous state
        from the store where it is still unknown; each row is looked up once, found or not."""
        todo = [e for e in events if e.revision in self._pending and self.unknown(e) and e.key.startswith(prefix)]
        if not todo:
            return
        if len(todo) * POINT_READ < objects:
            for event in todo:
                self._settle(event, await self._before(event))
        else:
            found = await self._states_at(prefix, start, {e.key for e in todo})
            for event in todo:
                self._settle(event, found.get(event.key))

    def _settle(self, event: WatchEvent, kv: KeyValue | None) -> None:
        """``kv`` is the state read for ``event``'s key: its previous one when at its ``prev_revision``."""
        prev_revision = self._pending.pop(event.revision, None)
        if kv is None or kv.revision != prev_revision:
            return  # compacted, or not the row it replaced: unknown
        previous = decode_or_skip(kv.key, kv.value, kv.revision, keep_decoded=False)
        if previous is not None and event.previous is None:
            event.previous = previous

    async def _before(self, event: WatchEvent) -> KeyValue | None:
        """The key's state just before ``event`` (at any revision until the row, it is the row
        this one replaced), or None."""
        try:
            page = await self._store.list(event.key, revision=event.revision - 1, limit=1, start_key=event.key)
        except Compacted:
            return None
        except Exception:  # the watch falls back to 410, as before the store could tell
            log.exception("reading the state of %s before revision %d", event.key, event.revision)
            return None
        return page.items[0] if page.items and page.items[0].key == event.key else None

    async def _states_at(self, prefix: str, revision: int, keys: set[str]) -> dict[str, KeyValue]:
        """The states of ``keys`` under ``prefix`` at ``revision`` (those the store still has),
        one page of rows alive at a time."""
        out: dict[str, KeyValue] = {}
        start_key = ""
        try:
            while True:
                page = await self._store.list(prefix, revision=revision, limit=PAGE, start_key=start_key)
                out.update((kv.key, kv) for kv in page.items if kv.key in keys)
                if not page.more or not page.items:
                    return out
                start_key = page.items[-1].key + "\x00"
        except Compacted:
            return out
        except Exception:
            log.exception("reading %s at revision %d", prefix, revision)
            return out
