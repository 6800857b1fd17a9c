"""``atoll quickstart`` (what ``make quickstart`` runs): master + two registered lites as three
processes, routes alice↔bob Ready, Kuscia's example PSI job with the known overlap, and nothing left
running afterwards — after a normal run, ``--keep`` + SIGINT, SIGINT mid-run, or a killed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
QUICKSTART = [sys.executable, "-m", "atoll.cli.main", "quickstart"]


def _processes_under(path: Path) -> list[str]:
    """Command lines of live processes mentioning ``path`` (nodes, Envoys and task processes)."""
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


def _start(data: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*QUICKSTART, "--data-dir", str(data), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def _read_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed:\n{''.join(lines)}\n{proc.stderr.read() if proc.stderr else ''}")


def test_keep_then_a_second_run_with_the_psi_result(tmp_path: Path) -> None:
    data = tmp_path / "qs"
    keep = _start(data, "--keep")
    lines = _read_until(keep, "press Ctrl-C")
    kubeconfig_lines = [ln for ln in lines if "kubeconfig" in ln]
    assert kubeconfig_lines and str((data / "admin.kubeconfig").resolve()) in kubeconfig_lines[0]
    assert _processes_under(data), "the network should be running"
    os.kill(keep.pid, signal.SIGINT)
    assert keep.wait(timeout=60) == 0
    assert _processes_under(data) == []
    # running it again works (a fresh network in the same directory)
    result = subprocess.run([*QUICKSTART, "--data-dir", str(data)], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for domain in ("alice", "bob"):
        assert f"✓ lite {domain}: registered with its deploy token; node {domain}-node Ready" in out
        assert f"Succeeded; log: hello from {domain}, pod hello-" in out
        assert f"✓ {domain}: DomainData psi-output" in out and "25,000 rows = the known overlap ✓" in out
    assert "✓ routes Ready: alice-bob, bob-alice, alice-kuscia-system, bob-kuscia-system" in out
    assert "100,000 IDs each (25,000 in common)" in out
    assert "Succeeded; task psi-" in out  # live progress of job, task and parties
    assert _processes_under(data) == []


def test_sigint_mid_run_stops_every_node(tmp_path: Path) -> None:
    data = tmp_path / "interrupted"
    proc = _start(data)
    _read_until(proc, "✓ lite bob")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 1
    assert proc.stderr is not None and proc.stderr.read().strip().endswith("error: interrupted; every node was stopped")
    assert _processes_under(data) == []


def test_a_killed_quickstart_is_cleaned_up_by_the_next_run(tmp_path: Path) -> None:
    data = tmp_path / "killed"
    proc = _start(data)
    _read_until(proc, "✓ lite bob")
    proc.kill()  # no chance to clean up: its three nodes (and Envoys) keep running
    proc.wait()
    assert len(_processes_under(data)) >= 3
    again = _start(data)
    _read_until(again, "✓ master kuscia-system")
    os.kill(again.pid, signal.SIGINT)
    again.wait(timeout=60)
    assert _processes_under(data) == []


def test_quickstart_refuses_a_foreign_data_dir(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    result = subprocess.run([*QUICKSTART, "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
                            cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: --data-dir")
    assert "Traceback" not in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "precious"
