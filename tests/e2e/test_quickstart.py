"""The README's main job: ``atoll quickstart`` brings up master + two registered lites as three
processes, routes alice↔bob, runs a task in each domain, and stops everything (twice in a row)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
QUICKSTART = [sys.executable, "-m", "atoll.cli.main", "quickstart"]


def _processes_under(path: Path) -> list[str]:
    """Command lines of live processes mentioning ``path`` (nodes and task processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


def test_quickstart_brings_up_the_network_and_stops_it(tmp_path: Path) -> None:
    data = tmp_path / "qs"
    for _ in range(2):  # running it twice works
        result = subprocess.run([*QUICKSTART, "--data-dir", str(data)], capture_output=True, text=True, timeout=180,
                                cwd=REPO)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        out = result.stdout
        for domain in ("alice", "bob"):
            assert f"✓ lite {domain}: registered with its deploy token; node {domain}-node Ready" in out
            assert f"Succeeded; log: hello from {domain}, pod hello-" in out
        assert "clusterdomainroute.kuscia.secretflow/alice-bob created" in out
        assert "clusterdomainroute.kuscia.secretflow/bob-alice created" in out
        assert "✓ KusciaJob quickstart-hello: Succeeded (both parties)" in out
        assert _processes_under(data) == []


def test_quickstart_keep_prints_the_kubeconfig_and_stops_on_sigint(tmp_path: Path) -> None:
    data = tmp_path / "keep"
    proc = subprocess.Popen([*QUICKSTART, "--data-dir", str(data), "--keep"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "press Ctrl-C" in line:
            break
    kubeconfig_lines = [ln for ln in lines if "kubeconfig" in ln]
    assert kubeconfig_lines, "".join(lines)
    assert str((data / "admin.kubeconfig").resolve()) in kubeconfig_lines[0]
    assert _processes_under(data), "the network should be running"
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    assert _processes_under(data) == []


def test_a_killed_quickstart_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    data = tmp_path / "killed"
    proc = subprocess.Popen([*QUICKSTART, "--data-dir", str(data), "--keep"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "press Ctrl-C" in line:
            break
    proc.kill()  # no chance to clean up: its three nodes keep running
    proc.wait()
    assert len(_processes_under(data)) >= 3
    result = subprocess.run([*QUICKSTART, "--data-dir", str(data)], capture_output=True, text=True, timeout=180,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _processes_under(data) == []


def test_quickstart_refuses_a_foreign_data_dir(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    result = subprocess.run([*QUICKSTART, "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
                            cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: --data-dir")
    assert "Traceback" not in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "precious"
