"""Barriers for tests of controllers running in the ``api_server`` fixture's master: what a
controller has done (its reconcile counter) and whether it has work left (its queue), so a test
that checks something did *not* happen waits for the controller to have looked, never sleeps."""

from __future__ import annotations

from typing import Any

from atoll.runtime.metrics import RECONCILE_RESULTS, REGISTRY
from tests.conftest import RunningServer, eventually


def controller(api_server: RunningServer, name: str) -> Any:
    assert api_server.node is not None and api_server.node.manager is not None
    (found,) = [c for c in api_server.node.manager.controllers if c.name == name]
    return found


def reconciles(name: str) -> float:
    """Reconciles the controller has finished, whatever their result (its metric)."""
    return sum(
        REGISTRY.get_sample_value("controller_runtime_reconcile_total", {"controller": name, "result": result}) or 0.0
        for result in RECONCILE_RESULTS
    )


def idle(api_server: RunningServer, *names: str) -> None:
    """Nothing queued or being reconciled by these controllers (AssertionError otherwise)."""
    for name in names:
        queue = controller(api_server, name).queue
        assert len(queue) == 0 and queue.processing == 0, (name, len(queue), queue.processing)


async def settled(
    api_server: RunningServer, name: str, since: float, *, at_least: int = 1, within: float = 10.0
) -> None:
    """Until the controller finished ``at_least`` more reconciles than ``since`` and has nothing left."""

    def done() -> None:
        assert reconciles(name) >= since + at_least, (name, reconciles(name), since)
        idle(api_server, name)

    await eventually(done, within)


async def collector_saw(api_server: RunningServer, *objects: dict[str, Any]) -> None:
    """Until the garbage collector's graph holds these objects and it has no work left."""
    graph = controller(api_server, "garbagecollector").graph

    def seen() -> None:
        for obj in objects:
            assert graph.get(obj["metadata"]["uid"]) is not None, obj["metadata"]["name"]
        idle(api_server, "garbagecollector")

    await eventually(seen)
