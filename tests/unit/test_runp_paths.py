"""A node started as a RunP pod finds its absolute paths in the pod's mount view, and a missing
working directory is created inside the pod (never on the host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.agent.runp.launch import working_dir
from atoll.node.config import in_sandbox


def test_a_mounted_data_dir_is_found_in_the_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view, volume = tmp_path / "root", tmp_path / "volumes" / "var"
    volume.mkdir(parents=True)
    (view / "home" / "atoll").mkdir(parents=True)
    (view / "home" / "atoll" / "var").symlink_to(volume)
    monkeypatch.setenv("ATOLL_SANDBOX_ROOT", str(view))
    assert in_sandbox(Path("/home/atoll/var")).resolve() == volume
    assert in_sandbox(Path("/home/atoll/var/sub")).resolve() == volume / "sub"
    assert in_sandbox(Path("/srv/elsewhere")) == Path("/srv/elsewhere")  # not in the view: unchanged
    assert in_sandbox(Path("relative")) == Path("relative")


def test_outside_a_pod_paths_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOLL_SANDBOX_ROOT", raising=False)
    assert in_sandbox(Path("/home/atoll/var")) == Path("/home/atoll/var")


def test_a_missing_working_dir_is_created_in_the_view(tmp_path: Path) -> None:
    view = tmp_path / "root"
    missing = f"/atoll-test-missing-{tmp_path.name}/work"
    assert working_dir(missing, view) == str(view / missing.lstrip("/"))
    assert (view / missing.lstrip("/")).is_dir() and not Path(missing).exists()
    assert working_dir(str(tmp_path), view) == str(tmp_path)  # present on the host (or rewritten): as is
    assert working_dir("", view) == ""
