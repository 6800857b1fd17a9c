"""The DataMesh module of a lite: binds its HTTP and gRPC ports, serves until cancelled.

``DataMeshServer(client, domain, data_dir, settings, domain_key)``; ``await server.start()``
binds both (so the bound ports are known before the agent starts pods: ``addr`` and
``grpc_addr``), ``await server.run()`` serves until cancelled and then closes the listeners.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.client import Client
from atoll.datamesh.grpc_endpoint import GrpcEndpoint
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
        self.grpc = GrpcEndpoint(self.scope, settings.host, settings.grpc_port) if settings.grpc else None

    @property
    def addr(self) -> str:
        """``DATAMESH_ADDR``: ``host:port`` of the bound HTTP endpoint."""
        return self.settings.http_addr(self.http_port)

    @property
    def grpc_addr(self) -> str:
        """``DATAMESH_GRPC_ADDR``: ``host:port`` of the gRPC endpoint ("" when not served)."""
        return f"{self.settings.host}:{self.grpc.port}" if self.grpc is not None else ""

    def pod_env(self) -> dict[str, str]:
        """What the agent adds to every container of the domain (contract C2)."""
        env = {"DATAMESH_ADDR": self.addr}
        if self.grpc_addr:
            env["DATAMESH_GRPC_ADDR"] = self.grpc_addr
        return env

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
        if self.grpc is not None:
            try:
                await self.grpc.start()
            except OSError:
                await self.close()
                raise
        log.info("datamesh for domain %s serving HTTP on %s, gRPC on %s", self.scope.domain, self.addr,
                 self.grpc_addr or "-")

    async def run(self) -> None:
        if self._runner is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self.grpc is not None:
            await self.grpc.stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
