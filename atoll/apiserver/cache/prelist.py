"""The previous states of the history rows from before the watch cache's initial list.

At start the cache replays the store's rows of the revisions just before its initial list into
its history, so clients of the previous server process can resume from a resourceVersion. A live
event carries the object's previous state (a selected watch needs it: an object that leaves the
selector is sent as DELETED with that content, one that enters it as ADDED); a replayed row gets
it here, without reading the store: from the key's earlier row in the replayed window as the rows
are remembered (``chain``), or, for a key's first row there, from the row itself -- every update
row of the store keeps the value it replaced (kine's ``old_value``, ``Event.prev_value``, which
compaction never clears from a row it keeps). Those bytes are kept as they came (bounded by the
history's byte budget) and decoded once, when a selected watch first replays the row (``settle``).
A previous state that cannot be decoded (or that the row does not carry) stays unknown, and a
selected watch that would need it gets 410 (its client relists).
"""

from __future__ import annotations

from atoll.apiserver.cache.entries import Cached, decode_or_skip
from atoll.apiserver.cache.watchers import WatchEvent


class PreList:
    """The replayed window's previous states (one per watch cache)."""

    def __init__(self, max_bytes: int) -> None:
        self.listed = 0
        """The initial list's revision: rows at or below it are replayed, later ones live."""
        self._max_bytes = max_bytes
        self._last: dict[str, Cached] | None = {}  # key -> its latest replayed state (None: replay over)
        self._kept: dict[int, tuple[bytes, int]] = {}  # revision -> (previous value, its revision), in order
        self.bytes = 0
        """Bytes of the previous values kept (at most ``max_bytes``)."""

    def chain(
        self, key: str, etype: str, cached: Cached | None, revision: int, prev: bytes | None, prev_revision: int
    ) -> Cached | None:
        """The previous state of a replayed row of ``key`` (``cached``: its state, None for a row
        that could not be decoded), when an earlier replayed row tells it; remembers this one. For a
        MODIFIED it cannot tell, the row's own previous value ``prev`` is kept for ``settle``."""
        last = self._last
        if last is None:
            return None
        previous = None if etype == "ADDED" else last.get(key)
        if previous is None and etype == "MODIFIED" and cached is not None and prev is not None:
            self._keep(revision, prev, prev_revision)
        if cached is None or etype == "DELETED":
            last.pop(key, None)
        else:
            last[key] = cached
        return previous

    def _keep(self, revision: int, prev: bytes, prev_revision: int) -> None:
        if self.bytes + len(prev) <= self._max_bytes:
            self._kept[revision] = (prev, prev_revision)
            self.bytes += len(prev)

    def done(self) -> None:
        """The replay is over (a live event came): forget the window's latest states."""
        self._last = None

    def forget(self, start: int) -> None:
        """The history no longer holds the rows at or below ``start``: drop their kept values."""
        kept = self._kept
        while kept:
            revision = next(iter(kept))
            if revision > start:
                return
            self.bytes -= len(kept.pop(revision)[0])

    def unknown(self, event: WatchEvent) -> bool:
        """``event`` is a replayed MODIFIED whose previous state is not known (yet)."""
        return event.previous is None and event.type == "MODIFIED" and event.revision <= self.listed

    def settle(self, event: WatchEvent) -> bool:
        """Give ``event`` (``unknown``) its previous state from the value its row replaced, decoded
        now (once: the event keeps it); False when there is none or it cannot be decoded."""
        kept = self._kept.pop(event.revision, None)
        if kept is None:
            return False
        value, prev_revision = kept
        self.bytes -= len(value)
        event.previous = decode_or_skip(event.key, value, prev_revision, keep_decoded=False)
        return event.previous is not None
