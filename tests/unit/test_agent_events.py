"""The agent's Event sender: queued Events wait while a status write holds the recorder, and go out
when every hold is released, or ``HOLD_MAX_SECONDS`` after they were queued while holds continue."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from atoll.agent import events
from atoll.agent.events import EventRecorder
from tests.conftest import eventually

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}


class RecordingClient:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create(self, _rd: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return body


async def test_queued_events_wait_for_the_status_writes_holding_the_recorder() -> None:
    client = RecordingClient()
    recorder = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    with recorder.holding():
        with recorder.holding():
            recorder.pod_event(POD, "Started", "Started container main")
            await eventually(lambda: recorder.held_back == 1)  # the sender task found the holds and waits
            assert client.created == []
        assert recorder.held_back == 1 and client.created == []  # one hold is still there: not woken
    await eventually(lambda: [e["reason"] for e in client.created] == ["Started"])


async def test_a_held_event_goes_out_after_the_longest_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "HOLD_MAX_SECONDS", 0.05)
    client = RecordingClient()
    recorder = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    with recorder.holding():  # status writes that never end
        recorder.pod_event(POD, "Started", "Started container main")
        recorder.pod_event(POD, "Killing", "Stopping container main")
        await eventually(lambda: [e["reason"] for e in client.created] == ["Started", "Killing"])


async def test_events_go_out_at_once_without_holds() -> None:
    client = RecordingClient()
    recorder = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    recorder.pod_event(POD, "Started", "Started container main")
    await recorder.flush()
    assert [e["reason"] for e in client.created] == ["Started"]


class GatedClient(RecordingClient):
    """Creates that wait until the test opens the gate, counting how many are in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def create(self, rd: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.created.append(body)
        await self.gate.wait()
        self.in_flight -= 1
        return body


async def test_a_few_events_are_in_flight_at_once_in_queue_order() -> None:
    client = GatedClient()
    recorder = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    for i in range(10):
        recorder.pod_event(POD, f"R{i}", "m")
    await eventually(lambda: client.in_flight == events.EVENTS_IN_FLIGHT)
    client.gate.set()
    await recorder.flush()
    assert client.most_in_flight == events.EVENTS_IN_FLIGHT
    assert [e["reason"] for e in client.created] == [f"R{i}" for i in range(10)]
