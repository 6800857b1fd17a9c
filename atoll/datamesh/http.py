"""DataMesh over HTTP: Kuscia's routes, ``POST /api/v1/datamesh/<resource>/<verb>`` with a JSON body.

Like Kuscia's DataMesh, a business failure is HTTP 200 with a non-zero ``status.code``; a body
that is not a JSON object is HTTP 400 with code 12100 (``DataMeshErrRequestInvalidate``).
``/healthZ`` answers ``{"status": {"code": 0, ...}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from atoll.datamesh import constants as c
from atoll.datamesh import messages as m
from atoll.datamesh.service import DataMeshError, DomainDataService, DomainDataSourceService, Scope

JSON = dict[str, Any]
Method = Callable[[JSON], Awaitable[JSON]]
log = logging.getLogger(__name__)
PREFIX = "/api/v1/datamesh"
MAX_BODY = 4 * 2**20


def routes(scope: Scope) -> dict[str, Method]:
    """Path → service method, for every DataMesh metadata method."""
    data, sources = DomainDataService(scope), DomainDataSourceService(scope)
    return {
        f"{PREFIX}/domaindata/create": data.CreateDomainData,
        f"{PREFIX}/domaindata/query": data.QueryDomainData,
        f"{PREFIX}/domaindata/update": data.UpdateDomainData,
        f"{PREFIX}/domaindata/delete": data.DeleteDomainData,
        f"{PREFIX}/domaindatasource/create": sources.CreateDomainDataSource,
        f"{PREFIX}/domaindatasource/query": sources.QueryDomainDataSource,
        f"{PREFIX}/domaindatasource/update": sources.UpdateDomainDataSource,
        f"{PREFIX}/domaindatasource/delete": sources.DeleteDomainDataSource,
    }


def _reply(body: JSON, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _handler(method: Method) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            req = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _reply({"status": m.status(c.ERR_REQUEST_INVALIDATE, f"body: not JSON ({exc})")}, 400)
        if not isinstance(req, dict):
            return _reply({"status": m.status(c.ERR_REQUEST_INVALIDATE, "body: must be a JSON object")}, 400)
        try:
            return _reply(await method(m.normalize(req)))
        except DataMeshError as exc:
            log.info("%s: %s", request.path, exc.message)
            return _reply({"status": m.status(exc.code, exc.message)})
        except Exception as exc:  # an API outage, a bug: one answer, logged with its trace
            log.exception("%s failed", request.path)
            return _reply({"status": m.status(c.ERR_UNEXPECTED, f"unexpected error: {type(exc).__name__}: {exc}")})

    return handle


async def _health(_request: web.Request) -> web.Response:
    return _reply({"status": m.status()})


def make_app(scope: Scope) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    for path, method in routes(scope).items():
        app.router.add_post(path, _handler(method))
    app.router.add_route("*", "/healthZ", _health)
    return app
