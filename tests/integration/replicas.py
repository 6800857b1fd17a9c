"""Two ``atoll start`` masters on one fresh PostgreSQL or MariaDB database, sharing credentials.

Both are initialised with one ``--shared-pki-key-file`` (A publishes the CA, admin and
ServiceAccount keys sealed in the datastore, B joins them) and B's serving certificate carries
an extra SAN (``--cert-san``). One pair per backend per test module (``pair``, module-scoped).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import RunningServer, start_master_process
from tests.integration.servers import fresh_datastore, reaped, session, wait_bootstrapped

B_SAN = "replica-b.example"


@dataclass
class Pair:
    backend: str
    endpoint: str
    base: Path
    key_file: Path
    a: RunningServer
    b: RunningServer
    a_http: aiohttp.ClientSession
    b_http: aiohttp.ClientSession


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["postgresql", "mysql"])
async def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    backend: str = request.param
    base = tmp_path_factory.mktemp(f"replicas-{backend}")
    key = base / "pki.key"
    async with fresh_datastore(backend) as endpoint:
        with reaped([]) as procs:
            shared = ("--shared-pki-key-file", str(key))
            proc_a, a = await asyncio.to_thread(start_master_process, base / "a", datastore=endpoint, init_args=shared)
            procs.append(proc_a)
            proc_b, b = await asyncio.to_thread(
                start_master_process, base / "b", datastore=endpoint, init_args=(*shared, "--cert-san", B_SAN)
            )
            procs.append(proc_b)
            async with session(a) as a_http, session(b) as b_http:
                await wait_bootstrapped(a_http)
                await wait_bootstrapped(b_http)
                yield Pair(backend, endpoint, base, key, a, b, a_http, b_http)
