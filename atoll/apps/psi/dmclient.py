"""The app's DataMesh calls (``DATAMESH_ADDR``): what any Kuscia app does to find and register data.

* ``QueryDomainData(id)`` → relative URI, data source id, columns;
* ``QueryDomainDataSource(id)`` → ``info.localfs.path`` (the absolute root on this host);
* ``CreateDomainData(...)`` registers an output.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import aiohttp

JSON = dict[str, Any]


class DataMeshError(RuntimeError):
    """DataMesh refused a call (its status message) or cannot be reached."""


class DataMeshClient:
    def __init__(self, addr: str, session: aiohttp.ClientSession) -> None:
        if not addr:
            raise DataMeshError("DATAMESH_ADDR: not set (the lite hands it to every task process)")
        self.base = addr if addr.startswith("http") else f"http://{addr}"
        self.session = session

    async def call(self, path: str, body: JSON) -> JSON:
        url = f"{self.base}/api/v1/datamesh/{path}"
        try:
            async with self.session.post(url, json=body) as resp:
                reply = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            raise DataMeshError(f"DataMesh {url}: {exc}") from None
        status = (reply or {}).get("status") or {}
        if status.get("code") != 0:
            raise DataMeshError(f"DataMesh {path}: {status.get('message') or reply}")
        return dict(reply.get("data") or {})

    async def domaindata(self, data_id: str) -> JSON:
        return await self.call("domaindata/query", {"domaindata_id": data_id})

    async def localfs_root(self, source_id: str) -> Path:
        source = await self.call("domaindatasource/query", {"datasource_id": source_id})
        path = ((source.get("info") or {}).get("localfs") or {}).get("path")
        if source.get("type") != "localfs" or not path:
            raise DataMeshError(f"datasource {source_id}: atoll-psi reads localfs sources only "
                                f"(type {source.get('type')!r})")
        return Path(path)

    async def table_path(self, data: JSON) -> Path:
        rel = str(data.get("relative_uri") or "")
        if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            raise DataMeshError(f"domaindata {data.get('domaindata_id')}: relative_uri {rel!r} leaves its source")
        return await self.localfs_root(str(data.get("datasource_id") or "")) / rel
