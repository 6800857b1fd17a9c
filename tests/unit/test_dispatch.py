"""One dispatcher per informer for its controllers' sources (``atoll/runtime/dispatch.py``).

Every source must enqueue exactly what the per-controller handlers enqueued before (same keys,
same queues, every event); gates may only skip what maps to no key; a failing source is logged and
the others still run."""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from atoll.api import kinds
from atoll.client import Client
from atoll.controllers import ControllerContext, setup_all
from atoll.runtime import Cache, Controller, Informer, Manager, ObjectKey, WorkQueue
from atoll.runtime.dispatch import Source, SourceDispatch
from atoll.runtime.keys import Gated, key_of, owner_mapper
from atoll.scheduler import setup as setup_scheduler

JSON = dict[str, Any]
NAMESPACES = ("alice", "bob", "carol")


class _Recon:
    async def reconcile(self, key: ObjectKey) -> Any:
        raise AssertionError("not run")


def _client() -> Client:
    return Client.__new__(Client)  # never used: the informers are fed by hand


def _pod(rng: random.Random, name: str, rv: int) -> JSON:
    md: JSON = {"name": name, "namespace": rng.choice(NAMESPACES), "resourceVersion": str(rv), "uid": name}
    if rng.random() < 0.5:
        md["labels"] = {"app": rng.choice(("a", "b"))}
    if rng.random() < 0.4:
        kind = rng.choice(("ReplicaSet", "ReplicationController", "Job", "DaemonSet", "StatefulSet", "Other"))
        apis = {"Job": "batch/v1", "ReplicaSet": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1"}
        api = apis.get(kind, "v1")
        md["ownerReferences"] = [{"kind": kind, "apiVersion": api, "name": rng.choice(("o1", "o2")), "uid": "u",
                                  "controller": rng.random() < 0.8}]
    if rng.random() < 0.1:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: JSON = {"containers": [{"name": "c", "image": "i"}]}
    if rng.random() < 0.6:
        spec["nodeName"] = rng.choice(("n1", "n2"))
    if rng.random() < 0.2:
        spec["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": "claim"}}]
    phase = rng.choice(("Pending", "Running", "Succeeded", "Failed"))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": {"phase": phase}}


def _owner(kind: str, namespace: str, name: str, selector: JSON) -> JSON:
    spec: JSON = {"selector": selector}
    if kind in ("ReplicaSet", "Deployment", "PodDisruptionBudget"):
        spec = {"selector": {"matchLabels": selector}}
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"}, "spec": spec}


def _fill_scopes(manager: Manager, rng: random.Random) -> None:
    """Services, quotas, PDBs, ReplicaSets and RCs in some namespaces only (the gates' subject)."""
    for rd, kind in ((kinds.SERVICES, "Service"), (kinds.RESOURCEQUOTAS, "ResourceQuota"),
                     (kinds.PODDISRUPTIONBUDGETS, "PodDisruptionBudget"), (kinds.REPLICASETS, "ReplicaSet"),
                     (kinds.REPLICATIONCONTROLLERS, "ReplicationController")):
        informer = manager.informers.existing(rd)
        assert informer is not None
        for namespace in NAMESPACES:
            if rng.random() < 0.5:
                informer.cache.upsert(_owner(kind, namespace, "o1", {"app": "a"}))


def _reference(sources: list[Source]) -> Callable[[str, JSON | None, JSON], list[tuple[str, Any]]]:
    """What the former per-controller closures enqueued for one event, in order."""

    def expected(kind: str, old: JSON | None, new: JSON) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for s in sources:
            name = s.target.name
            if kind != "MODIFIED":
                out += [(name, k) for k in s.mapper(new)]
            elif s.predicate is None or s.predicate(old or {}, new):
                out += [(name, k) for k in s.mapper(old or {})] + [(name, k) for k in s.mapper(new)]
        return out

    return expected


class _Recording:
    """Stands in for each controller's queue: records (controller, key) in order."""

    def __init__(self, name: str, log: list[tuple[str, Any]]) -> None:
        self.name, self._log = name, log

    def add(self, key: Any) -> None:
        self._log.append((self.name, key))


async def test_the_master_pod_sources_enqueue_what_their_handlers_did() -> None:
    """Every controller and the scheduler on one pods informer, 3,000 random pod events against
    random Services/quotas/PDBs/owners: each event enqueues exactly the keys the former handlers
    (predicate, then mapper of old and of new) did, and the gates skip mappers and predicates."""
    rng = random.Random(14)
    manager = Manager(_client())
    ctx = ControllerContext(_client())
    setup_all(manager, ctx)
    setup_scheduler(manager, ctx)
    _fill_scopes(manager, rng)
    pods = manager.informers.existing(kinds.PODS)
    assert pods is not None and isinstance(pods.dispatch, SourceDispatch)
    dispatch = pods.dispatch
    sources = list(dispatch._sources)
    assert sum(s.gate is not None for s in sources) >= 8  # the owner mappers and the gated scopes
    log: list[tuple[str, Any]] = []
    queues = {id(s.target): _Recording(s.target.name, log) for s in sources}
    dispatch._sources = [Source(_Target(s.target.name, queues[id(s.target)]), s.mapper, s.predicate, s.gate)
                         for s in sources]
    expected = _reference(sources)
    current: dict[ObjectKey, JSON] = {}
    gated_skips = 0
    for rv in range(1, 3001):
        name = f"p{rng.randrange(40)}"
        key_obj = _pod(rng, name, rv)
        old = current.get(key_of(key_obj))
        if old is not None:
            key_obj["metadata"]["namespace"] = old["metadata"]["namespace"]
        kind = "DELETED" if old is not None and rng.random() < 0.2 else "MODIFIED" if old is not None else "ADDED"
        want = expected(kind, copy.deepcopy(old), copy.deepcopy(key_obj))
        log.clear()
        if kind == "DELETED":
            pods._apply_event("DELETED", key_obj)
            current.pop(key_of(key_obj))
        else:
            pods._apply_event(kind, key_obj)
            current[key_of(key_obj)] = key_obj
        assert log == want, (kind, old, key_obj)
        gated_skips += sum(1 for s in sources if s.gate is not None and not s.gate(key_obj))
    assert gated_skips > 1000  # the gates did reject (and so skip) many mapper calls


class _Target:
    def __init__(self, name: str, queue: _Recording) -> None:
        self.name, self.queue = name, queue


async def test_gates_skip_the_mapper_and_the_predicate() -> None:
    informer = Informer(_client(), kinds.PODS)
    controller: Controller[ObjectKey] = Controller("gated", _Recon(), WorkQueue())
    calls: list[str] = []

    def mapper(obj: JSON) -> Iterable[ObjectKey]:
        calls.append("mapper")
        return (key_of(obj),)

    def predicate(old: JSON, new: JSON) -> bool:
        calls.append("predicate")
        return True

    def gate(obj: JSON) -> bool:
        return bool((obj.get("metadata") or {}).get("labels"))

    controller.watch(informer, Gated(mapper, gate), update_predicate=predicate)
    bare = {"metadata": {"name": "a", "namespace": "n", "resourceVersion": "1"}}
    informer.store(bare)
    informer.store({**bare, "metadata": {**bare["metadata"], "resourceVersion": "2"}})
    assert calls == [] and len(controller.queue) == 0  # rejected on both sides: nothing asked
    informer.store({"metadata": {**bare["metadata"], "resourceVersion": "3", "labels": {"x": "y"}}})
    assert calls == ["predicate", "mapper"]  # the old side is rejected, the new one mapped
    assert len(controller.queue) == 1


async def test_owner_mappers_are_not_called_for_objects_without_owners() -> None:
    informer = Informer(_client(), kinds.PODS)
    controller: Controller[ObjectKey] = Controller("jobs", _Recon(), WorkQueue())
    controller.watch(informer, owner_mapper("Job", "batch/v1"))
    informer.store({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "1"}})
    assert len(controller.queue) == 0
    owned = {"name": "b", "namespace": "n", "resourceVersion": "1",
             "ownerReferences": [{"kind": "Job", "apiVersion": "batch/v1", "name": "j", "controller": True}]}
    informer.store({"metadata": owned})
    assert len(controller.queue) == 1


async def test_a_failing_source_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    informer = Informer(_client(), kinds.PODS)
    broken: Controller[ObjectKey] = Controller("broken", _Recon(), WorkQueue())
    fine: Controller[ObjectKey] = Controller("fine", _Recon(), WorkQueue())

    def boom(obj: JSON) -> Iterable[ObjectKey]:
        raise ValueError("mapper bug")

    broken.watch(informer, boom)
    fine.watch(informer)
    with caplog.at_level(logging.ERROR):
        informer.store({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "1"}})
    assert len(fine.queue) == 1
    assert "event handler for pods failed (controller broken)" in caplog.text


async def test_a_source_added_to_a_filled_informer_enqueues_what_is_cached() -> None:
    informer = Informer(_client(), kinds.PODS)
    first: Controller[ObjectKey] = Controller("first", _Recon(), WorkQueue())
    first.watch(informer)
    for i in range(3):
        informer.store({"metadata": {"name": f"p{i}", "namespace": "n", "resourceVersion": "1"}})
    late: Controller[ObjectKey] = Controller("late", _Recon(), WorkQueue())
    late.watch(informer)
    assert len(late.queue) == 3 and len(first.queue) == 3
    assert informer.dispatch is SourceDispatch.of(informer)  # one dispatcher, one handler slot
    assert len(informer._handlers) == 1


def test_cache_any_in() -> None:
    cache = Cache()
    assert not cache.any_in("n") and not cache.any_in(None)
    cache.upsert({"metadata": {"name": "a", "namespace": "n"}})
    assert cache.any_in("n") and not cache.any_in("m")
    cache.remove(ObjectKey("n", "a"))
    assert not cache.any_in("n")

