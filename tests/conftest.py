"""Shared fixtures: a real Atoll master (store + API server over HTTPS) in this process or as a
subprocess, with an admin kubeconfig written to disk for kubectl and the Python clients."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from atoll.api import errors
from atoll.apiserver.cache import verify
from atoll.client import Client
from atoll.node.config import NodeConfig, load_config
from atoll.node.kubeconfig import admin_kubeconfig, dump
from atoll.node.master import MasterNode
from atoll.node.network import free_port as network_free_port

REPO = Path(__file__).resolve().parent.parent
# every master the tests start (in this process or as ``atoll start``, which inherit it) checks
# that no reader mutates its watch cache's shared objects; fixtures fail on the ERROR line it logs
os.environ.setdefault(verify.ENV, "1")
ATOLL = [sys.executable, "-m", "atoll.cli.main"]
T = TypeVar("T")


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    kubeconfig: Path
    token: str
    ca_file: Path
    node: MasterNode | None = None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> Client:
        """An Atoll client for this server, authenticated as the admin (use as ``async with``)."""
        return Client(self.url, ssl_context=self.ssl_context(), token=self.token)


async def eventually(check: Callable[[], T | Awaitable[T]], within: float = 10.0, *, every: float = 0.05) -> T:
    """The one polling helper of the suite: call ``check`` (sync or async) until it holds, and
    return its value. It does not hold yet while it raises ``AssertionError`` (or ``NotFound``: the
    object is not there yet) or returns ``False``; after ``within`` seconds the last failure
    propagates. Checks that ``assert`` report what was seen last; predicates may return a bool."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = check()
            value = await result if inspect.isawaitable(result) else result
            assert value is not False, "the condition did not hold"
            return value  # type: ignore[no-any-return]
        except (AssertionError, errors.NotFound):
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(every)


def free_port() -> int:
    """A free port outside the kernel's ephemeral range (see ``atoll.node.network.free_port``): a
    server restarted on it must find it still free."""
    return network_free_port()


def _write_kubeconfig(node_data: Path, url: str) -> tuple[Path, str, Path]:
    from atoll.pki import ensure_pki

    pki = ensure_pki(node_data / "pki")
    path = node_data / "admin.kubeconfig"
    path.write_text(dump(admin_kubeconfig(pki, url)))
    return path, pki.admin_token.read_text().strip(), pki.ca_cert


async def start_until_ready(
    run: Coroutine[Any, Any, None], ready: asyncio.Event, within: float, failure: str
) -> asyncio.Task[None]:
    """``run`` as a task, once ``ready`` is set: its error if it ends first, ``failure`` if neither in ``within`` s."""
    task = asyncio.create_task(run)
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, ready_wait}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready_wait in done, failure
    return task


@pytest.fixture
async def api_server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    """A master node running in this event loop on a free port, SQLite in tmp_path.

    ``@pytest.mark.controllers("namespace", "scheduler", ...)`` limits the controllers it runs
    (no arguments: none, for tests of the API server's own semantics)."""
    marker = request.node.get_closest_marker("controllers")
    controllers = tuple(marker.args) if marker is not None else None
    config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=tmp_path / "master", api_port=0,
                        controllers=controllers)
    node = MasterNode(config)
    task = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(config.data_dir, node.url)
    yield RunningServer(node.url, config.data_dir, kubeconfig, token, ca, node)
    assert node.server is not None
    mutated = verify.mutated_objects(node.server.cache)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    # the master's controllers read the cache's own dicts in-process (``atoll.client.local``)
    assert not mutated, f"objects of the watch cache were mutated in place by a reader: {mutated[:5]}"


def cache_mutations_logged(log: Path) -> list[str]:
    """The ``cache object mutated in place`` ERROR lines of a master's log (``ATOLL_VERIFY_CACHE``)."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if verify.MARK in line]


def assert_cache_intact(log: Path) -> None:
    """Fail if the master that wrote ``log`` found its watch cache's objects mutated in place."""
    found = cache_mutations_logged(log)
    assert not found, f"objects of the watch cache were mutated in place by a reader ({log}): {found[:5]}"


class _MutationRecords(logging.Handler):
    """The ``cache object mutated in place`` errors of the masters running in this process."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if verify.MARK in record.getMessage():
            self.lines.append(record.getMessage())


_mutations = _MutationRecords()
_process_logs: list[Path] = []  # logs of the ``atoll start`` masters of start_master_process
logging.getLogger(verify.__name__).addHandler(_mutations)


def _no_new_mutations(start: int, where: str) -> None:
    found = _mutations.lines[start:]
    assert not found, f"an in-process master found its watch cache mutated in place by a reader ({where}): {found[:5]}"


@pytest.fixture(autouse=True, scope="module")
def _cache_intact_in_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the module when a master of a module-scoped fixture logged a mutation (its last check
    runs as it stops, after the module's last test), or the log of a master process started by
    ``start_master_process`` during the module has the line."""
    start, logs = len(_mutations.lines), len(_process_logs)
    yield
    _no_new_mutations(start, request.node.name)
    for log in _process_logs[logs:]:  # masters the module's tests started (and stopped) themselves
        assert_cache_intact(log)


@pytest.fixture(autouse=True)
def _cache_intact(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test during which an in-process master (``ATOLL_VERIFY_CACHE``) logged a mutation
    (``@pytest.mark.mutates_cache``: a test that does it on purpose; its lines are dropped)."""
    start = len(_mutations.lines)
    yield
    if request.node.get_closest_marker("mutates_cache") is None:
        _no_new_mutations(start, request.node.name)
    else:
        del _mutations.lines[start:]


def start_master_process(
    data_dir: Path, *, port: int | None = None, datastore: str = "", log: Path | None = None,
    init_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], RunningServer]:
    """``atoll init`` (plus ``init_args``) + ``atoll start`` as a real process; waits until it answers /readyz."""
    config = data_dir / "atoll.yaml"
    if port is None and config.exists():  # a restart: the port the node was configured with
        port = load_config(config).api_port
    port = port or free_port()
    if not config.exists():
        args = [
            *ATOLL,
            "init",
            "--mode",
            "master",
            "--domain",
            "kuscia-system",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(port),
            "--no-gateway",  # the API server is what these tests exercise; no Envoy on port 1080
            "-o",
            str(config),
        ]
        if datastore:
            args += ["--datastore-endpoint", datastore]
        subprocess.run([*args, *init_args], check=True, capture_output=True, cwd=REPO)
    log = log or data_dir / "server.log"
    _process_logs.append(log)
    out = open(log, "ab")
    proc = subprocess.Popen([*ATOLL, "start", "-c", str(config)], stdout=out, stderr=out, cwd=REPO)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"atoll start exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
            import urllib.request

            with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("atoll start did not become ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(data_dir, url)
    return proc, RunningServer(url, data_dir, kubeconfig, token, ca)


@contextlib.contextmanager
def running_master(data_dir: Path) -> Iterator[RunningServer]:
    """A real ``atoll start`` process for the ``with`` block; terminated (killed after 15 s) on exit,
    then its log checked for watch-cache objects mutated in place (``ATOLL_VERIFY_CACHE``)."""
    proc, server = start_master_process(data_dir)
    try:
        yield server
    finally:  # also when the block raised: never leak the master process
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert_cache_intact(data_dir / "server.log")  # its last check ran as it stopped


@pytest.fixture
def master_process(tmp_path: Path) -> Iterator[RunningServer]:
    with running_master(tmp_path / "master") as server:
        yield server


def kubectl_environ(base: Path) -> dict[str, str]:
    """This process's environment with kubectl's HOME and discovery cache under ``base``."""
    env = dict(os.environ)
    env["HOME"] = str(base / "home")
    env["KUBECACHEDIR"] = str(base / "kubecache")
    return env


@pytest.fixture
def kubectl_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running kubectl with its own discovery cache."""
    return kubectl_environ(tmp_path)


def kubectl_binary(version: str = "1.32") -> str:
    candidate = f"/usr/lib/google-cloud-sdk/bin/kubectl.{version}"
    if os.path.exists(candidate):
        return candidate
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl is not installed on this machine")
    return found
