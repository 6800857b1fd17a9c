"""Sandbox saves split into a snapshot (taken on the loop) and a write (any thread): a stale
snapshot never overwrites a newer one, and nothing is written after the sandbox was removed."""

from __future__ import annotations

from pathlib import Path

from atoll.agent.runp.sandbox import ContainerRecord, Sandbox, SandboxState


def state(reason: str) -> SandboxState:
    return SandboxState(uid="u1", namespace="ns", name="p", containers={"c": ContainerRecord("c", reason=reason)})


def test_an_older_snapshot_written_late_is_dropped(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, "u1")
    old = box.encode(state("first"))
    new = box.encode(state("second"))
    box.write(new)
    box.write(old)  # a slower thread finishing after the newer snapshot's write
    loaded = box.load()
    assert loaded is not None and loaded.containers["c"].reason == "second"


def test_save_after_a_snapshot_in_flight_wins(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, "u1")
    in_flight = box.encode(state("before"))
    box.save(state("after"))  # the durable save on the loop while the thread has not written yet
    box.write(in_flight)
    loaded = box.load()
    assert loaded is not None and loaded.containers["c"].reason == "after"


def test_nothing_is_written_after_remove(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, "u1")
    box.save(state("running"))
    late = box.encode(state("late"))
    box.remove()
    box.write(late)
    assert not box.dir.exists()
