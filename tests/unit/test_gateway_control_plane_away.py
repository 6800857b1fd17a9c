"""A lite's gateway keeps beating while the master's API is unreachable (a master restarting).

Its Gateway heartbeat and its routes' heartbeats write through the master API every 15 s; a beat
that fell into a master's restart used to raise the client's connection error out of the gateway's
task group and stop the whole lite, whose pods then stayed Pending on a Node still marked Ready.
"""

from __future__ import annotations

import asyncio
import contextlib

from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api.clock import FakeClock
from atoll.client import Client
from atoll.gateway import instance
from atoll.gateway.initiator import Initiator
from atoll.node.network import free_port
from tests.conftest import eventually


def unreachable() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused


async def test_the_gateway_heartbeat_outlives_an_unreachable_master() -> None:
    clock = FakeClock()
    async with Client(unreachable(), timeout=5) as client:
        beating = asyncio.create_task(instance.heartbeat(client, "bob", "vm", clock, address="127.0.0.1",
                                                         public_key="key", version="v"))
        try:
            for _ in range(2):  # each beat fails and the loop waits for the next period
                await eventually(lambda: beating.done() or clock.sleepers == 1, 10)
                assert not beating.done(), beating.exception()
                clock.advance(instance.HEARTBEAT_PERIOD)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def test_route_heartbeats_outlive_an_unreachable_master() -> None:
    clock = FakeClock()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    route = {
        "metadata": {"name": "bob-kuscia-system", "namespace": "bob"},
        "spec": {"source": "bob", "destination": "kuscia-system"},
        "status": {"tokenStatus": {"revisionInitializer": "vm", "revisionToken": {"revision": 1, "token": "t"},
                                   "tokens": [{"revision": 1, "token": "t", "isReady": True}]}},
    }
    gateway = unreachable()
    async with Client(unreachable(), timeout=5) as client:
        initiator = Initiator(client, "bob", "vm", key, clock, lambda: gateway)
        initiator.update([route])
        running = asyncio.create_task(initiator.run())
        try:
            for _ in range(2):  # the handshake GET and the status write fail; the next beat still comes
                await eventually(lambda: running.done() or clock.sleepers == 1, 10)
                assert not running.done(), running.exception()
                clock.advance(initiator.heartbeat_period)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
