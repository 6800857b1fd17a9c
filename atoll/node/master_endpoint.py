"""The master's public endpoint while no gateway runs: ``/register`` on ``gateway.externalPort``.

Kuscia's lites reach ``/register`` through the master's Envoy external listener (port 1080). When
Atoll's gateway module runs, it mounts :func:`atoll.node.registration_server.registration_routes`
on its handshake server and this endpoint is not started. Otherwise the master serves the same
routes here, over TLS when ``protocol`` is TLS/MTLS (with the API server's certificate) and plain
HTTP for NOTLS; every other path answers the gateway's ``401 unauthorized.``.
"""

from __future__ import annotations

import logging
import socket
import ssl

from aiohttp import web

from atoll.node.registration_server import Registrar, registration_routes
from atoll.pki import PKI

log = logging.getLogger(__name__)


async def _unauthorized(request: web.Request) -> web.Response:
    return web.Response(status=401, text="unauthorized.", headers={"Kuscia-Error-Message": "unauthorized."})


def tls_context(pki: PKI) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    return ctx


class MasterEndpoint:
    def __init__(self, registrar: Registrar, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.registrar = registrar
        self.host, self.port, self.tls = host, port, tls
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.add_routes(registration_routes(self.registrar))
        app.router.add_route("*", "/{tail:.*}", _unauthorized)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=self.tls).start()
        log.info("master endpoint (registration) on %s://%s:%d", "https" if self.tls else "http", self.host,
                 self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
