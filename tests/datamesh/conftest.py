"""Fixtures for the DataMesh tests: one real master process per module, Domains alice and bob,
and per test a real DataMesh HTTP service for each domain (free ports, own data dirs and keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.datamesh import DataMeshServer, DataMeshSettings
from atoll.datamesh.constants import DEFAULT_DATA_SOURCE_ID, DOMAINDATASOURCES
from atoll.datamesh.info import load_domain_key
from atoll.node.config import generate_domain_key
from tests.conftest import RunningServer, eventually, running_master

DOMAINS = ("alice", "bob")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_master(tmp_path_factory.mktemp("master")) as server:
        yield server


@dataclass
class Mesh:
    domain: str
    server: DataMeshServer
    data_dir: Path
    key_data: str

    @property
    def url(self) -> str:
        return f"http://{self.server.addr}"

    @property
    def data_root(self) -> Path:
        return self.data_dir / "var" / "storage" / "data"


async def call(mesh: Mesh, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a DataMesh request; the response JSON (asserting HTTP 200)."""
    async with aiohttp.ClientSession() as http, http.post(f"{mesh.url}/api/v1/datamesh/{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def ensure_domain(client: Client, name: str) -> None:
    body = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name},
            "spec": {"role": ""}}
    try:
        await client.create(kinds.DOMAINS, body)
    except errors.AlreadyExists:
        pass

    async def source_ready() -> None:
        await client.get(DOMAINDATASOURCES, DEFAULT_DATA_SOURCE_ID, name)

    await eventually(source_ready, 30)


@pytest.fixture
async def admin(master: RunningServer) -> AsyncIterator[Client]:
    async with master.client() as client:
        yield client


@pytest.fixture
async def meshes(admin: Client, master: RunningServer, tmp_path: Path) -> AsyncIterator[dict[str, Mesh]]:
    out: dict[str, Mesh] = {}
    for domain in DOMAINS:
        await ensure_domain(admin, domain)
        key_data = generate_domain_key()
        server = DataMeshServer(admin, domain, tmp_path / domain, DataMeshSettings(http_port=0),
                                load_domain_key(key_data))
        await server.start()
        out[domain] = Mesh(domain, server, tmp_path / domain, key_data)
    try:
        yield out
    finally:
        for mesh in out.values():
            await mesh.server.close()
