"""The replayed window's previous states (``cache/prelist.py``): taken from the key's earlier row,
else kept as the bytes the row replaced (within a byte budget) and decoded once on demand; dropped
once the history no longer holds their rows."""

from __future__ import annotations

import orjson

from atoll.apiserver.cache.entries import decode
from atoll.apiserver.cache.prelist import PreList
from atoll.apiserver.cache.watchers import WatchEvent

KEY = "/core/configmaps/default/x"


def value(app: str) -> bytes:
    return orjson.dumps({"metadata": {"name": "x", "namespace": "default", "labels": {"app": app}}})


def replayed(
    pre: PreList, revision: int, app: str, prev: bytes | None, prev_revision: int, key: str = KEY
) -> WatchEvent:
    """A replayed MODIFIED of ``key`` at ``revision`` (``prev``: the value its row replaced)."""
    cached = decode(value(app), revision)
    previous = pre.chain(key, "MODIFIED", cached, revision, prev, prev_revision)
    return WatchEvent("MODIFIED", key, cached, previous, revision)


def test_a_first_row_keeps_what_it_replaced_and_decodes_it_once() -> None:
    pre = PreList(max_bytes=1 << 20)
    pre.listed = 20
    first = replayed(pre, 11, "b", value("a"), 10)
    second = replayed(pre, 12, "c", value("b"), 11)
    assert second.previous is first.current  # from the chain: nothing kept
    assert pre.bytes == len(value("a")) and pre.unknown(first) and not pre.unknown(second)
    assert pre.settle(first)
    assert first.previous is not None and first.previous.obj["metadata"]["labels"] == {"app": "a"}
    assert first.previous.obj["metadata"]["resourceVersion"] == "10"
    assert pre.bytes == 0 and not pre.unknown(first) and not pre.settle(first)


def test_an_undecodable_previous_value_stays_unknown() -> None:
    pre = PreList(max_bytes=1 << 20)
    pre.listed = 20
    event = replayed(pre, 11, "b", b"not an object", 10)
    assert not pre.settle(event) and pre.unknown(event)


def test_kept_values_are_bounded_and_forgotten_with_their_rows() -> None:
    size = len(value("a"))
    pre = PreList(max_bytes=2 * size)
    pre.listed = 20
    events = [replayed(pre, 11 + i, "b", value("a"), 1, f"{KEY}{i}") for i in range(3)]  # 3 keys' first rows
    assert pre.bytes == 2 * size  # the third did not fit: unknown
    assert not pre.settle(events[2])
    pre.forget(11)  # the history dropped revision 11
    assert pre.bytes == size and not pre.settle(events[0]) and pre.settle(events[1])
