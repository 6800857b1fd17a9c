"""Expectations observed through the informer and the pod cache's orphan index (what the
ReplicaSet controller reads instead of scanning its namespace)."""

from __future__ import annotations

from typing import Any

from atoll.api.clock import FakeClock
from atoll.runtime.cache import ORPHAN_INDEX, Cache, CachedNames, by_orphan_namespace
from atoll.runtime.expectations import Expectations

JSON = dict[str, Any]


def pod(name: str, owner: str | None = None, namespace: str = "ns") -> JSON:
    md: JSON = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if owner is not None:
        md["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}", "controller": True}]
    return {"metadata": md}


def test_created_pod_deleted_before_the_reconcile_is_not_pending_once_observed() -> None:
    clock = FakeClock(1000.0)
    expect = Expectations(ttl=60, clock=clock)
    cache = Cache()
    expect.created("rs", "a")
    expect.created("rs", "b")
    assert expect.creating("rs")
    assert expect.pending_creates("rs", CachedNames(cache, "ns")) == {"a", "b"}
    cache.upsert(pod("a", "rs"))
    assert expect.pending_creates("rs", CachedNames(cache, "ns")) == {"b"}
    expect.observed("rs", "b")  # the informer's add; the pod is gone again before the next read
    assert expect.pending_creates("rs", CachedNames(cache, "ns")) == set()
    assert not expect.creating("rs")


def test_pending_creates_expire_after_the_ttl() -> None:
    clock = FakeClock(1000.0)
    expect = Expectations(ttl=60, clock=clock)
    expect.created("rs", "lost")
    assert expect.pending_creates("rs", ["other"]) == {"lost"}
    clock.advance(61)
    assert expect.pending_creates("rs", ["other"]) == set()
    assert not expect.creating("rs")


def test_orphan_index_follows_adoption_and_release() -> None:
    cache = Cache()
    cache.ensure_index(ORPHAN_INDEX, by_orphan_namespace)
    cache.ensure_index(ORPHAN_INDEX, by_orphan_namespace)  # a second controller asking: no error
    cache.upsert(pod("x"))
    cache.upsert(pod("y", "rs"))
    cache.upsert(pod("z", namespace="other"))
    assert [p["metadata"]["name"] for p in cache.by_index(ORPHAN_INDEX, "ns")] == ["x"]
    cache.upsert(pod("x", "rs"))  # adopted
    assert cache.by_index(ORPHAN_INDEX, "ns") == []
    cache.upsert(pod("y"))  # released
    assert [p["metadata"]["name"] for p in cache.by_index(ORPHAN_INDEX, "ns")] == ["y"]
    assert [p["metadata"]["name"] for p in cache.by_owner("uid-rs")] == ["x"]
