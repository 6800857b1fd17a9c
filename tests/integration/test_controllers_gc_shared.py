"""The garbage collector observes resources the controller manager already informs on through
the manager's shared informers (no second watch), and leaves them when it stops.

Runs with the endpoints controller, whose shared Pod informer the collector must reuse, and checks
cascading deletion of Pods through it, then that stopping the collector removes its handlers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from atoll.api.kinds import CONFIGMAPS, PODS
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.controllers import collector_saw, controller
from tests.integration.test_controllers_gc import NS, TIMEOUT, gone, make_cm, make_pod

pytestmark = pytest.mark.controllers("garbagecollector", "endpoints")
POD_MONITOR = ("", "v1", "pods")


@pytest.fixture
async def client(api_server: RunningServer) -> AsyncIterator[Client]:
    async with api_server.client() as c:
        yield c


async def test_pods_are_collected_through_the_shared_informer(api_server: RunningServer, client: Client) -> None:
    assert api_server.node is not None and api_server.node.manager is not None
    shared = api_server.node.manager.informers.existing(PODS)
    assert shared is not None  # the endpoints controller's
    gc = controller(api_server, "garbagecollector")
    owner = await make_cm(client, "owner")
    dep_pod = await make_pod(client, "dep-pod", owner)
    await collector_saw(api_server, owner, dep_pod)
    informer, task = gc.monitors.informers[POD_MONITOR]
    assert informer is shared and task is None  # no private Pod informer, no second watch
    cm_informer, cm_task = gc.monitors.informers[("", "v1", "configmaps")]
    assert cm_informer is not api_server.node.manager.informers.existing(CONFIGMAPS) and cm_task is not None

    await client.delete(CONFIGMAPS, "owner", NS, propagation_policy="Background")
    await eventually(lambda: gone(client, PODS, "dep-pod"), TIMEOUT)  # the dependent Pod is deleted
    await eventually(lambda: gc.graph.get(dep_pod["metadata"]["uid"]) is None, TIMEOUT)


async def test_stopping_the_collector_leaves_the_shared_informer(api_server: RunningServer) -> None:
    assert api_server.node is not None and api_server.node.manager is not None
    shared = api_server.node.manager.informers.existing(PODS)
    assert shared is not None
    gc = controller(api_server, "garbagecollector")
    await eventually(lambda: POD_MONITOR in gc.monitors.informers)
    handlers = list(shared._handlers)
    assert len(handlers) >= 2  # the endpoints controller's and the collector's
    gc.monitors._stop(POD_MONITOR)
    assert len(shared._handlers) == len(handlers) - 1
    assert POD_MONITOR not in gc.monitors.informers
