"""Indexed watch fan-out (``cache.fanout``): a watcher whose field selector pins ``spec.nodeName``
(or ``metadata.name``) gets exactly the events its filter would have let through, in order, while
events of other values never reach it. Fed straight into a real watch cache over SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from atoll.api.builtins import BUILTINS
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.cache.watchers import Watcher
from atoll.apiserver.registry.lists import Selection, make_matcher
from atoll.store.base import Event
from atoll.store.sqlite import SQLiteStore

POD = next(r for r in BUILTINS if r.plural == "pods" and r.group == "")
JSON = dict[str, Any]


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[WatchCache]:
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    cache = WatchCache(store)
    task = asyncio.create_task(cache.run())
    try:
        await cache.wait_ready()
        yield cache
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


class _Feed:
    """Writes pod events straight into the cache, as the store's watch would deliver them."""

    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self.revs: dict[str, int] = {}

    def put(self, ns: str, name: str, node: str | None, labels: JSON | None = None, *, delete: bool = False) -> None:
        key = POD.key(ns, name)
        rev = self.cache.revision + 1
        spec: JSON = {} if node is None else {"nodeName": node}
        obj = {"metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec}
        prev = self.revs.get(key, 0)
        self.cache._apply([Event(rev, key, orjson.dumps(obj), prev == 0, delete, rev, prev)])
        if delete:
            self.revs.pop(key, None)
        else:
            self.revs[key] = rev


def _drain(w: Watcher) -> list[tuple[str, str, int]]:
    out = []
    while not w.queue.empty():
        ev = w.queue.get_nowait()
        assert ev is not None
        out.append((ev.type, ev.current.obj["metadata"]["name"], ev.revision))
    return out


def _both(cache: WatchCache, prefix: str, label: str, field: str) -> tuple[Watcher, Watcher]:
    """The same selector watched through the index and through a plain (unindexable) filter."""
    sel = make_matcher(POD, label, field)
    assert isinstance(sel, Selection)
    indexed, _ = cache.watch(prefix, sel, None)
    plain, _ = cache.watch(prefix, lambda obj: sel(obj), None)
    return indexed, plain


async def test_indexed_watchers_get_exactly_what_their_filter_selects_in_order(cache: WatchCache) -> None:
    feed = _Feed(cache)
    selectors = [
        (POD.key_prefix(), "", "spec.nodeName=alice"),
        (POD.key_prefix(), "", "spec.nodeName=bob"),
        (POD.key_prefix(), "", "spec.nodeName="),
        (POD.key_prefix("ns1"), "", "spec.nodeName=alice"),
        (POD.key_prefix(), "app=x", "spec.nodeName=alice"),
        (POD.key_prefix(), "", "spec.nodeName=alice,metadata.namespace=ns2"),
        (POD.key_prefix(), "", "metadata.name=p1"),
        (POD.key_prefix("ns2"), "", "metadata.name=p1"),
        (POD.key_prefix(), "", "spec.nodeName!=alice"),
    ]
    pairs = [_both(cache, *s) for s in selectors]
    everything, _ = cache.watch(POD.key_prefix(), None, None)
    feed.put("ns1", "p1", None)  # unbound
    feed.put("ns1", "p1", "alice")  # bound: ADDED for alice's watchers
    feed.put("ns2", "p1", "alice", {"app": "x"})
    feed.put("ns1", "p1", "alice", {"app": "x"})  # MODIFIED, stays on alice
    feed.put("ns1", "p1", "bob")  # moved: DELETED for alice, ADDED for bob
    feed.put("ns2", "p1", "alice", delete=True)
    feed.put("ns1", "p1", "bob", delete=True)
    for indexed, plain in pairs:
        assert _drain(indexed) == _drain(plain)
    alice, plain_alice = _both(cache, *selectors[0])  # a fresh pair sees the next events the same way
    feed.put("ns3", "p2", "")
    feed.put("ns3", "p2", "alice")
    feed.put("ns3", "p2", "alice", delete=True)
    assert _drain(alice) == _drain(plain_alice) == [("ADDED", "p2", 9), ("DELETED", "p2", 10)]
    unfiltered = ["ADDED", "MODIFIED", "ADDED", "MODIFIED", "MODIFIED", "DELETED", "DELETED", "ADDED", "MODIFIED"]
    assert [t for t, _, _ in _drain(everything)] == [*unfiltered, "DELETED"]


async def test_a_pod_entering_and_leaving_a_node(cache: WatchCache) -> None:
    feed = _Feed(cache)
    alice, _ = cache.watch(POD.key_prefix(), make_matcher(POD, "", "spec.nodeName=alice"), None)
    bob, _ = cache.watch(POD.key_prefix(), make_matcher(POD, "", "spec.nodeName=bob"), None)
    feed.put("ns", "p", "")
    feed.put("ns", "p", "alice")
    feed.put("ns", "p", "bob")
    feed.put("ns", "p", "bob", delete=True)
    assert _drain(alice) == [("ADDED", "p", 2), ("DELETED", "p", 3)]
    assert _drain(bob) == [("ADDED", "p", 3), ("DELETED", "p", 4)]


class _Counting:
    """A pinning filter that counts how often it is run."""

    def __init__(self, field: str, value: str) -> None:
        self.field, self.value, self.calls = field, value, 0

    def __call__(self, obj: JSON) -> bool:
        self.calls += 1
        return bool((obj.get("spec") or {}).get("nodeName", "") == self.value)

    def exact(self, field: str) -> str | None:
        return self.value if field == self.field else None

    def only(self, field: str) -> bool:
        return False


async def test_events_of_other_nodes_never_reach_an_indexed_watcher(cache: WatchCache) -> None:
    feed = _Feed(cache)
    carol = _Counting("spec.nodeName", "carol")
    watcher, _ = cache.watch(POD.key_prefix(), carol, None)
    for i in range(20):
        feed.put("ns", f"p{i}", "alice")
        feed.put("ns", f"p{i}", "bob")
    assert carol.calls == 0
    feed.put("ns", "p0", "carol")
    assert carol.calls == 2 and _drain(watcher) == [("ADDED", "p0", 41)]
    cache.stop(watcher)
    assert cache.watcher_count == 0 and not cache._by_resource


async def test_stopped_watchers_leave_no_index_behind(cache: WatchCache) -> None:
    watchers = [
        cache.watch(POD.key_prefix(ns), make_matcher(POD, label, field), None)[0]
        for ns in (None, "ns")
        for label, field in (("", ""), ("", "spec.nodeName=a"), ("a=b", "spec.nodeName=a"), ("", "metadata.name=x"))
    ]
    for w in watchers:
        cache.stop(w)
        cache.stop(w)  # twice: harmless
    assert cache.watcher_count == 0 and not cache._by_resource


async def test_a_selector_leave_is_the_previous_state_built_once_for_all_its_watchers(cache: WatchCache) -> None:
    """kube's cacher: DELETED with the previous object at the event's revision. The watchers of one
    fan-out event share that one DELETED (one encoding), on each path: pinned, indexed+filtered,
    filtered; an event that leaves no selector builds none."""
    feed = _Feed(cache)
    feed.put("ns", "p", "alice", {"app": "x"})
    selectors = [("", "spec.nodeName=alice")] * 2 + [("app=x", "spec.nodeName=alice")] * 2 + [("app=x", "")] * 2
    watchers = [cache.watch(POD.key_prefix("ns"), make_matcher(POD, *s), None)[0] for s in selectors]
    feed.put("ns", "p", "alice", {"app": "x", "more": "y"})  # stays in every selector
    assert all(_drain(w) == [("MODIFIED", "p", 2)] for w in watchers)
    feed.put("ns", "p", "bob", {"app": "y"})  # leaves them all
    left = [w.queue.get_nowait() for w in watchers]
    assert all(w.queue.empty() for w in watchers)
    for ev in left:
        assert ev is not None and ev.type == "DELETED" and ev.revision == 3
        assert ev.current.obj["metadata"]["labels"] == {"app": "x", "more": "y"}
        assert ev.current.obj["spec"] == {"nodeName": "alice"} and ev.current.obj["metadata"]["resourceVersion"] == "3"
        assert orjson.loads(ev.line()) == {"type": "DELETED", "object": ev.current.obj}
    assert all(ev is left[0] for ev in left)  # one event, one encoding, for every watcher


async def test_a_selector_entry_is_one_added_built_once_for_all_its_watchers(cache: WatchCache) -> None:
    """An update that makes the object match a selector is ADDED with the current object. The
    watchers of one fan-out event share that one ADDED (one encoding), on each path: pinned,
    indexed+filtered, filtered; a watcher the object stays in gets the MODIFIED itself."""
    feed = _Feed(cache)
    feed.put("ns", "p", "bob", {"app": "y"})
    selectors = [("", "spec.nodeName=alice")] * 2 + [("app=x", "spec.nodeName=alice")] * 2 + [("app=x", "")] * 2
    watchers = [cache.watch(POD.key_prefix("ns"), make_matcher(POD, *s), None)[0] for s in selectors]
    stays = cache.watch(POD.key_prefix("ns"), make_matcher(POD, "", ""), None)[0]
    assert all(_drain(w) == [] for w in watchers) and _drain(stays) == []
    feed.put("ns", "p", "alice", {"app": "x"})  # enters them all
    entered = [w.queue.get_nowait() for w in watchers]
    modified = stays.queue.get_nowait()
    assert all(w.queue.empty() for w in [*watchers, stays])
    for ev in entered:
        assert ev is not None and ev.type == "ADDED" and ev.revision == 2
        assert ev.current.obj["metadata"]["labels"] == {"app": "x"} and ev.current.obj["spec"] == {"nodeName": "alice"}
        assert orjson.loads(ev.line()) == {"type": "ADDED", "object": ev.current.obj}
    assert all(ev is entered[0] for ev in entered)  # one event, one encoding, for every watcher
    assert entered[0] is not None and entered[0].line() is entered[0].line()  # the frame is kept, not rebuilt
    assert modified is not None and modified.type == "MODIFIED" and modified.current is entered[0].current
