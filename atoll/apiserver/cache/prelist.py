"""The previous states of the history rows from before the watch cache's initial list.

At start the cache replays the store's rows of the revisions just before its initial list into
its history, so clients of the previous server process can resume from a resourceVersion. A live
event carries the object's previous state (a selected watch needs it: an object that leaves the
selector is sent as DELETED with that content, one that enters it as ADDED); a replayed row does
not come with it. Here each replayed row gets it: from the key's earlier row in the replayed
window as they are remembered (``chain``), or, for a key's first row there, from the store on
demand (``resolve``: the key's value just before the row, read once per row when a selected
watch first replays it). A predecessor the store no longer has (compacted) or cannot decode stays
unknown, and a selected watch that would need it gets 410 (its client relists).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from atoll.apiserver.cache.entries import Cached, decode_or_skip
from atoll.apiserver.cache.watchers import WatchEvent
from atoll.store.base import Compacted, Store

log = logging.getLogger(__name__)


class PreList:
    """The replayed window's previous states (one per watch cache)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.listed = 0
        """The initial list's revision: rows at or below it are replayed, later ones live."""
        self._last: dict[str, Cached] | None = {}  # key -> its latest replayed state (None: replay over)
        self._unknown: set[int] = set()  # rows whose predecessor the store could not give

    def chain(self, key: str, etype: str, cached: Cached | None) -> Cached | None:
        """The previous state of a replayed row of ``key`` (``cached``: its state, None for a row
        that could not be decoded), when an earlier replayed row tells it; remembers this one."""
        last = self._last
        if last is None:
            return None
        previous = None if etype == "ADDED" else last.get(key)
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

    async def resolve(self, events: Iterable[WatchEvent], prefix: str) -> None:
        """Give the replayed MODIFIEDs under ``prefix`` among ``events`` their previous state from
        the store, where it is still unknown; each row is read at most once."""
        for event in events:
            if self.unknown(event) and event.key.startswith(prefix) and event.revision not in self._unknown:
                previous = await self._read(event)
                if previous is None:
                    self._unknown.add(event.revision)
                elif event.previous is None:
                    event.previous = previous

    async def _read(self, event: WatchEvent) -> Cached | None:
        """The key's state just before ``event`` (the row it replaced), or None."""
        try:
            page = await self._store.list(event.key, revision=event.revision - 1, limit=1, start_key=event.key)
        except Compacted:
            return None
        except Exception:  # the watch falls back to 410, as before the store could tell
            log.exception("reading the state of %s before revision %d", event.key, event.revision)
            return None
        if not page.items or page.items[0].key != event.key:
            return None
        kv = page.items[0]
        return decode_or_skip(kv.key, kv.value, kv.revision, keep_decoded=False)
