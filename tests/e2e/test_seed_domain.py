"""Seed 001 verbatim: the Kuscia Domain session with the real kubectl 1.32 against ``atoll start``.

Create alice (``podMaxCount: 100``) → its Namespace and ResourceQuota ``resource-limitation``
appear; re-apply with 200 → the quota follows; ``kubectl delete domain alice`` → the Domain is
gone but its namespace and quota stay, the namespace labelled ``kuscia.secretflow/deleted=true``.
Plus seed 003's deploy-token jsonpath command, run through a shell exactly as printed. The
controllers run in the master process, so steps that wait for them poll with short sleeps.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import RunningServer, eventually
from tests.e2e.conftest import ALICE, Kubectl, make_kubectl, table

pytestmark = pytest.mark.slow
T = TypeVar("T")

AGE = r"\d+s"
SEED_003_TOKEN = (  # one shell line, as printed in the seed
    """kubectl get domain alice -o=jsonpath='{.status.deployTokenStatuses[?(@.state=="unused")].token}'"""
    " && echo"
)


@pytest.fixture
def kubectl(master_process: RunningServer, tmp_path: Path) -> Kubectl:
    return make_kubectl("1.32", master_process, tmp_path)


def shell(kubectl: Kubectl, command: str) -> subprocess.CompletedProcess[str]:
    """Run a documented command line through bash, with ``kubectl`` meaning our 1.32 binary."""
    bindir = kubectl.workdir / "bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "kubectl"
    if not link.exists():
        link.symlink_to(kubectl.binary)
    env = {**kubectl.env, "PATH": f"{bindir}:{kubectl.env.get('PATH', '')}", "KUBECONFIG": str(kubectl.kubeconfig)}
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, cwd=kubectl.workdir, timeout=30
    )


def quota_row(kubectl: Kubectl, pods: int) -> None:
    rows = table(kubectl.out("get", "resourcequota", "-n", "alice"))
    assert rows[0] == ["NAME", "AGE", "REQUEST", "LIMIT"], rows
    assert len(rows) == 2 and rows[1][0] == "resource-limitation", rows
    assert re.fullmatch(AGE, rows[1][1]) and rows[1][2] == f"pods: 0/{pods}", rows


async def test_seed_001_domain_session(kubectl: Kubectl) -> None:
    # 创建 Domain
    out = kubectl.apply(ALICE.format(pods=100), "alice-domain.yaml")
    assert out == "domain.kuscia.secretflow/alice created"
    rows = table(kubectl.out("get", "domain", "alice"))
    assert rows[0] == ["NAME", "AGE"] and rows[1][0] == "alice" and re.fullmatch(AGE, rows[1][1]), rows

    def namespace_active() -> None:
        rows = table(kubectl.out("get", "namespace", "alice", check=False) or "x")
        assert rows[0] == ["NAME", "STATUS", "AGE"] and rows[1][:2] == ["alice", "Active"], rows

    await eventually(namespace_active, every=0.1)
    await eventually(lambda: quota_row(kubectl, 100), every=0.1)

    # seed 003: the unused deploy token, exactly as documented
    def token() -> str:
        proc = shell(kubectl, SEED_003_TOKEN)
        assert proc.returncode == 0, proc.stderr
        assert re.fullmatch(r"[A-Za-z]{32}\n", proc.stdout), proc.stdout
        return proc.stdout.strip()

    await eventually(token, every=0.1)

    # 更新 Domain
    out = kubectl.apply(ALICE.format(pods=200), "alice-domain.yaml")
    assert out == "domain.kuscia.secretflow/alice configured"
    await eventually(lambda: quota_row(kubectl, 200), every=0.1)

    # 清理 Domain
    assert kubectl.out("delete", "domain", "alice") == 'domain.kuscia.secretflow "alice" deleted'
    proc = kubectl.run("get", "domain", "alice", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'Error from server (NotFound): domains.kuscia.secretflow "alice" not found'
    rows = table(kubectl.out("get", "namespace", "alice"))
    assert rows[1][:2] == ["alice", "Active"], rows
    quota_row(kubectl, 200)

    def marked_deleted() -> None:
        rows = table(kubectl.out("get", "namespace", "alice", "-L", "kuscia.secretflow/deleted"))
        assert rows[0] == ["NAME", "STATUS", "AGE", "DELETED"], rows
        assert rows[1][:2] == ["alice", "Active"] and re.fullmatch(AGE, rows[1][2]) and rows[1][3] == "true", rows

    await eventually(marked_deleted, every=0.1)
