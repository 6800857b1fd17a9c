"""Finding 10: data dir 0700, database files 0600, key material written atomically under a lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from atoll.store.endpoint import open_store
from tests.conftest import REPO
from tests.security.conftest import Network

pytestmark = pytest.mark.slow


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_running_master_files_are_private(network: Network) -> None:
    data = network.server.data_dir
    assert mode(data) == 0o700
    assert mode(data / "pki") == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(data / name) == 0o600, name
    for key in ("ca.key", "apiserver.key", "admin.key", "admin.token", "sa.key"):
        if (data / "pki" / key).exists():
            assert mode(data / "pki" / key) == 0o600, key


async def test_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store(None, tmp_path)
        await store.start()
        await store.create("/core/secrets/default/s", b'{"metadata":{"name":"s"},"data":{"k":"dg=="}}')
        await store.close()
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            if (tmp_path / name).exists():
                (tmp_path / name).chmod(0o644)
        store = open_store(None, tmp_path)
        await store.start()
        await store.close()
    finally:
        os.umask(old)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        if (tmp_path / name).exists():
            assert mode(tmp_path / name) == 0o600, name


def test_fresh_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    import asyncio

    async def run() -> None:
        store = open_store(None, tmp_path / "fresh")
        await store.start()
        await store.close()

    old = os.umask(0o000)
    try:
        asyncio.run(run())
    finally:
        os.umask(old)
    assert mode(tmp_path / "fresh") == 0o700
    assert mode(tmp_path / "fresh" / "state.db") == 0o600


CONCURRENT = """
import sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from atoll.pki import ensure_pki
pki = ensure_pki(Path(sys.argv[1]))
x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
serialization.load_pem_private_key(pki.admin_key.read_bytes(), None)
print(pki.ca_cert.read_text().strip().splitlines()[1])
"""


def test_concurrent_pki_creation_is_safe(tmp_path: Path) -> None:
    target = tmp_path / "data" / "pki"
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(target)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(6)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-500:] for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1  # one CA, seen complete by everyone
    assert mode(tmp_path / "data") == 0o700 and mode(target) == 0o700
    assert not list(target.glob("*.tmp"))
