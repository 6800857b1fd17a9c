"""Fixtures shared by the kubectl end-to-end modules: one real ``atoll start`` process per module,
and a ``Kubectl`` runner per client version with its own HOME and discovery cache."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, kubectl_binary, kubectl_environ, running_master

KUBECTL_TIMEOUT = 30

# The Domain of the Kuscia documentation's kubectl session (``podMaxCount`` filled in per step).
ALICE = """apiVersion: kuscia.secretflow/v1alpha1
kind: Domain
metadata:
  name: alice
spec:
  role: partner
  cert: base64<certificate>
  resourceQuota:
    podMaxCount: {pods}
"""


class Kubectl:
    """One kubectl binary, one kubeconfig, one isolated HOME/KUBECACHEDIR; every call has a timeout."""

    def __init__(self, binary: str, kubeconfig: Path, env: dict[str, str], workdir: Path, version: str = "") -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.env = env
        self.workdir = workdir
        self.version = version
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def tag(self) -> str:
        """A DNS-label suffix naming this client version (``132``), for per-version object names."""
        return re.sub(r"\D", "", self.version) or "x"

    def args(self, *args: str) -> list[str]:
        return [self.binary, "--kubeconfig", str(self.kubeconfig), *args]

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = KUBECTL_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.args(*args),
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,  # never prompt on the test's terminal
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
            cwd=self.workdir,
        )
        if check:
            assert proc.returncode == 0, (
                f"kubectl {' '.join(args)} -> rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def out(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout.strip()

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.args(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env, cwd=self.workdir,
        )

    def popen_watching(self, *args: str) -> tuple[subprocess.Popen[str], str]:
        """``popen`` of a command that watches (``wait``, ``get -w``), returned once its watch is
        open on the server (kubectl ``-v=6`` logs the request when the response starts, and the
        server registers a watch before it answers); also the log read so far. Changes made after
        this reach the command as watch events (none can happen before kubectl looked)."""
        proc = subprocess.Popen(
            self.args("-v=6", *args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=self.env, cwd=self.workdir,
        )
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # ends when kubectl exits (its own --timeout bounds it)
            seen.append(line)
            if "watch=true" in line and " 200 OK" in line:
                break
        return proc, "".join(seen)

    def apply(self, text: str, name: str, *extra: str) -> str:
        path = self.workdir / name
        path.write_text(text)
        return self.out("apply", "-f", str(path), *extra)

    def with_kubeconfig(self, kubeconfig: Path) -> Kubectl:
        return Kubectl(self.binary, kubeconfig, self.env, self.workdir, self.version)


def table(stdout: str) -> list[list[str]]:
    """kubectl's human output split into cells (columns are separated by two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.strip().splitlines()]


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One ``atoll start`` master shared by every test of a module."""
    with running_master(tmp_path_factory.mktemp("master")) as server:
        yield server


def make_kubectl(version: str, server: RunningServer, base: Path) -> Kubectl:
    env = kubectl_environ(base)
    env.pop("KUBECONFIG", None)
    return Kubectl(kubectl_binary(version), server.kubeconfig, env, base / "work", version)
