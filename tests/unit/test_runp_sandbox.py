"""Sandbox records: the first save of a new sandbox creates ``state.json`` (``O_EXCL``, no rename), a
first save over an existing file renames a temporary file into place, later saves within one page
rewrite ``state.json`` in place (padded with JSON whitespace), larger ones rename again; every save
loads back exactly, whatever the previous content's length. A new pod's directories are made top
down, without failing ``mkdir`` calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from atoll.agent.runp import spread
from atoll.agent.runp.sandbox import PAGE, ContainerRecord, Sandbox, SandboxState


def state(message: str, containers: int = 1) -> SandboxState:
    recs = {f"c{i}": ContainerRecord(f"c{i}", message=message) for i in range(containers)}
    return SandboxState(uid="u1", namespace="ns", name="p", containers=recs)


def test_later_saves_rewrite_in_place_and_load_back(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, "u1")
    box.save(state("a long message " * 10))
    inode = os.stat(box.state_file).st_ino
    box.save(state("short"))  # shorter than the file: padded
    assert os.stat(box.state_file).st_ino == inode  # rewritten in place, no new file
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "short"
    box.save(state("longer than before " * 20))
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "longer than before " * 20
    assert os.stat(box.state_file).st_ino == inode
    assert not (box.dir / "state.json.tmp").exists()


def test_records_larger_than_a_page_are_renamed(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, "u1")
    box.save(state("x"))
    big = state("y" * 200, containers=30)
    box.save(big)
    assert os.path.getsize(box.state_file) > PAGE
    inode = os.stat(box.state_file).st_ino
    box.save(state("z"))  # the file is larger than a page now: renamed again
    assert os.stat(box.state_file).st_ino != inode
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "z" and len(loaded.containers) == 1


def test_a_new_sandbox_object_and_a_removed_sandbox_start_with_a_rename(tmp_path: Path) -> None:
    Sandbox(tmp_path, "u1").save(state("first agent"))
    box = Sandbox(tmp_path, "u1")  # a restarted agent: it does not know the file's length
    box.save(state("second"))
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "second"
    box.remove()
    box.save(state("again"))
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "again"


def test_the_first_save_of_a_new_sandbox_creates_the_file_without_a_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[Any] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: renames.append(a) or real_replace(*a))
    box = Sandbox(tmp_path, "u1")
    box.save(state("first"))
    assert renames == []
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "first"
    Sandbox(tmp_path, "u1").save(state("restarted"))  # the file is there: replaced atomically
    assert len(renames) == 1
    loaded = box.load()
    assert loaded is not None and loaded.containers["c0"].message == "restarted"


def test_an_empty_state_file_is_no_records(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, "u1")  # a kill between creating the file and writing it
    box.dir.mkdir(parents=True)
    box.state_file.write_bytes(b"")
    assert box.load() is None


def test_a_new_container_directory_is_made_top_down_and_reported_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real_mkdir = os.mkdir

    def mkdir(path: Any, *args: Any) -> None:
        try:
            real_mkdir(path, *args)
        except OSError as exc:
            calls.append((str(path), type(exc).__name__))
            raise
        calls.append((str(path), "made"))

    (tmp_path / "pods").mkdir()
    monkeypatch.setattr(spread.os, "mkdir", mkdir)
    box = Sandbox(tmp_path, "u1")
    assert box.make_container_dir("main")
    assert calls == [
        (str(box.dir), "made"),
        (str(box.dir / "containers"), "made"),
        (str(box.container_dir("main")), "made"),
    ]
    assert not box.make_container_dir("main")  # an attempt after a restart: may hold stale files
    assert box.make_container_dir("sidecar")
    assert Sandbox(tmp_path / "elsewhere", "u2").make_container_dir("main")  # no pods/ yet
