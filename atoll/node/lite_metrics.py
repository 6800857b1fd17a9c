"""A lite node's own ``/metrics`` and ``/readyz``: the process's Prometheus registry and its named
health checks on a plain 127.0.0.1 port.

The master serves the registry on its API server's ``/metrics``; a lite has no API server, so its
gateway's Envoy statistics (:mod:`atoll.gateway.stats`) and the runtime's metrics would otherwise
be visible to nobody. Configured in the lite config::

    metrics:
      port: 9091        # absent or 0: not served here (still on the agent's HTTPS /metrics)

Bound to 127.0.0.1 only (like Envoy's admin): a scraper on the machine reads it without
credentials, nothing off the machine can. Off-machine scrapes go through the agent's
kubelet-style HTTPS server (``/metrics``, same mutual-TLS rule as logs, see atoll.agent.logserver).

The same port answers ``/healthz``, ``/livez`` and ``/readyz`` as the master's API server does
(:mod:`atoll.apiserver.http.health`: ``?verbose``, ``?exclude=``, ``/readyz/<name>``); a lite with
a gateway has the ``gateway`` check (:mod:`atoll.gateway.readiness`), which gates ``/readyz``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from atoll.apiserver.http.health import HealthChecks
from atoll.node.config import ConfigError
from atoll.runtime.metrics import REGISTRY

log = logging.getLogger(__name__)
METRICS_HOST = "127.0.0.1"


def metrics_port(extra: dict[str, Any]) -> int:
    """``metrics.port`` of the lite config; 0 when absent (not served on a plain port)."""
    block = extra.get("metrics") or {}
    if not isinstance(block, dict):
        raise ConfigError("metrics: must be a mapping")
    port = block.get("port", 0)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"metrics.port: must be an integer port 0-65535 (got {port!r})")
    return port


async def serve_registry(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def health_routes(app: web.Application, health: HealthChecks) -> None:
    """``/healthz``, ``/livez``, ``/readyz`` and ``/<head>/<check>`` answered by ``health``."""

    async def answer(request: web.Request) -> web.Response:
        return health.respond(request, request.path.strip("/").split("/"), True)

    for head in ("healthz", "livez", "readyz"):
        app.router.add_get(f"/{head}", answer)
        app.router.add_get(f"/{head}/{{check:.+}}", answer)


@contextlib.asynccontextmanager
async def metrics_endpoint(port: int, domain: str, health: HealthChecks | None = None) -> AsyncIterator[None]:
    """Serve ``GET /metrics`` (and ``health``'s checks) on ``127.0.0.1:port`` while the block runs
    (nothing when ``port`` is 0)."""
    if not port:
        yield
        return
    app = web.Application()
    app.router.add_get("/metrics", serve_registry)
    health_routes(app, health or HealthChecks())
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, METRICS_HOST, port).start()
        log.info("lite %s: metrics on http://%s:%d/metrics", domain, METRICS_HOST, port)
        yield
    finally:
        await runner.cleanup()
