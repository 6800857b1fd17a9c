"""Finding 12: a damaged database gives one clear line (which file, what is wrong, what to do), and
``atoll store check`` names the objects the API server skips."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from atoll.store.endpoint import open_store
from tests.conftest import ATOLL, REPO

pytestmark = pytest.mark.slow


def _init(data: Path) -> Path:
    config = data.parent / f"{data.name}.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "master", "--domain", "kuscia-system", "--data-dir", str(data),
                    "--api-port", "0", "--no-gateway", "-o", str(config)], check=True, capture_output=True, cwd=REPO)
    return config


def test_corrupted_database_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "master"
    config = _init(data)
    data.mkdir(parents=True, exist_ok=True)
    (data / "state.db").write_bytes(b"this is not a database" * 100)
    for args in (["start", "-c", str(config)], ["store", "check", "-c", str(config)]):
        proc = subprocess.run([*ATOLL, *args], capture_output=True, text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        line = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(line) == 1, proc.stderr
        assert str(data / "state.db") in line[0] and "backup" in line[0] and "atoll store check" in line[0]


def test_store_check_names_malformed_objects(tmp_path: Path) -> None:
    data = tmp_path / "master"
    config = _init(data)
    data.mkdir(parents=True, exist_ok=True)

    async def poison() -> None:
        store = open_store(None, data)
        await store.start()
        await store.create("/core/configmaps/default/good", b'{"metadata":{"name":"good"}}')
        await store.create("/core/configmaps/default/list", b"[1,2]")
        await store.create("/core/configmaps/default/text", b"{nope")
        await store.close()

    asyncio.run(poison())
    proc = subprocess.run([*ATOLL, "store", "check", "-c", str(config)], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "malformed: /core/configmaps/default/list" in proc.stdout
    assert "malformed: /core/configmaps/default/text" in proc.stdout
    assert "/default/good" not in proc.stdout
    assert "3 objects" in proc.stdout
