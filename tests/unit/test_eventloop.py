"""``ATOLL_EVENT_LOOP`` picks the node's event loop: asyncio by default, uvloop on request, and a
bad value is refused (the CLI prints it as one line)."""

from __future__ import annotations

import pytest
import uvloop

from atoll.cli.eventloop import loop_factory


def test_asyncio_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOLL_EVENT_LOOP", raising=False)
    assert loop_factory() is None
    monkeypatch.setenv("ATOLL_EVENT_LOOP", "asyncio")
    assert loop_factory() is None


def test_uvloop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOLL_EVENT_LOOP", " UVLoop ")
    assert loop_factory() is uvloop.new_event_loop


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOLL_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="ATOLL_EVENT_LOOP='trio': expected one of asyncio, uvloop"):
        loop_factory()
