"""The README's main job: ``atoll quickstart`` brings up master + two lite nodes and runs a pod in each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_quickstart_runs_a_pod_in_each_domain(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "atoll.cli.main", "quickstart", "--data-dir", str(tmp_path / "qs"),
                             "--exit"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "domain alice: namespace alice, quota pods: 0/100" in out
    assert "domain bob: namespace bob, quota pods: 0/100" in out
    for domain in ("alice", "bob"):
        assert f"Succeeded; log: hello from {domain}, pod hello-" in out
    assert f"export KUBECONFIG={(tmp_path / 'qs' / 'admin.kubeconfig').resolve()}" in out
    # a second run reuses the data directory
    again = subprocess.run([sys.executable, "-m", "atoll.cli.main", "quickstart", "--data-dir", str(tmp_path / "qs"),
                            "--exit"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("Succeeded; log: hello from") == 2
