"""The DataMesh module of a lite: binds its HTTP port, serves until cancelled.

``DataMeshServer(client, domain, data_dir, settings, domain_key)``; ``await server.start()``
binds (so the bound port is known before the agent starts pods: ``addr``), ``await
server.run()`` serves until cancelled and then closes the listener.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.client import Client
from atoll.datamesh.http import make_app
from atoll.datamesh.service import Scope
from atoll.datamesh.settings import DataMeshSettings

log = logging.getLogger(__name__)


class DataMeshServer:
    def __init__(
        self,
        client: Client,
        domain: str,
        data_dir: Path,
        settings: DataMeshSettings,
        domain_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.settings = settings
        self.scope = Scope(client, domain, data_dir, domain_key)
        self._runner: web.AppRunner | None = None
        self.http_port = 0

    @property
    def addr(self) -> str:
        """``DATAMESH_ADDR``: ``host:port`` of the bound HTTP endpoint."""
        return self.settings.http_addr(self.http_port)

    async def start(self) -> None:
        runner = web.AppRunner(make_app(self.scope), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.http_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(f"datamesh.httpPort: cannot listen on {self.settings.http_addr()}: {exc.strerror}") from None
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.http_port = int(sockets[0].getsockname()[1]) if sockets else self.settings.http_port
        log.info("datamesh for domain %s serving HTTP on %s", self.scope.domain, self.addr)

    async def run(self) -> None:
        if self._runner is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
