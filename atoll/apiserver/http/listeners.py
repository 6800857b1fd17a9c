"""Where the API server listens: HTTPS on TCP, and the loopback Unix socket for in-process clients.

The loopback socket (like kube-apiserver's loopback client) lets the master's own controllers
skip TLS: plain HTTP on a socket in a 0700 directory, the socket itself 0600, authentication
unchanged.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

MAX_UNIX_PATH = 100  # sun_path holds 108 bytes


async def start_tcp(runner: web.BaseRunner, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
    """Serve on ``host:port`` (0: a free port); return the bound port."""
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024, reuse_address=True)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port


async def start_loopback(runner: web.BaseRunner, path: Path) -> Path | None:
    """Serve the app on a Unix socket only its owner can reach; None (HTTPS only) when the path is
    too long for a socket address or cannot be bound."""
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        log.info("loopback socket path %s is too long; in-process clients use HTTPS", path)
        return None
    try:
        _prepare_socket_dir(path)
        await web.UnixSite(runner, str(path)).start()
        os.chmod(path, 0o600)
    except OSError as exc:
        log.warning("loopback socket %s: %s; in-process clients use HTTPS", path, exc)
        return None
    return path


def _prepare_socket_dir(path: Path) -> None:
    """A 0700 directory for the socket, without a socket left behind by an unclean exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)
