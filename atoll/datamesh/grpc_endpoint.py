"""DataMesh over gRPC (Kuscia's 8071): the same services as HTTP, Kuscia's service and method names.

``kuscia.proto.api.v1alpha1.datamesh.DomainDataService/{Create,Query,Update,Delete}DomainData`` and
``…DomainDataSourceService/{Create,Query,Update,Delete}DomainDataSource``, unary, served by
``grpc.aio`` with generic handlers whose (de)serializers are :mod:`atoll.datamesh.wire` — no
generated code. Business failures are responses with ``status.code`` set (as Kuscia's); bytes that
do not parse are ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from atoll.datamesh import constants as c
from atoll.datamesh import messages as m
from atoll.datamesh.service import DataMeshError, DomainDataService, DomainDataSourceService, Scope
from atoll.datamesh.wire import WireError, decode, encode

JSON = dict[str, Any]
log = logging.getLogger(__name__)
PACKAGE = "kuscia.proto.api.v1alpha1.datamesh"
_BAD = "\0wire-error"


def _handler(method: Callable[[JSON], Awaitable[JSON]], request: str, response: str) -> Any:
    async def call(req: JSON, context: grpc.aio.ServicerContext[Any, Any]) -> JSON:
        if _BAD in req:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{request}: {req[_BAD]}")
        try:
            return await method(req)
        except DataMeshError as exc:
            return {"status": m.status(exc.code, exc.message)}
        except Exception as exc:
            log.exception("%s failed", response)
            return {"status": m.status(c.ERR_UNEXPECTED, f"unexpected error: {type(exc).__name__}: {exc}")}

    def deserialize(data: bytes) -> JSON:
        try:
            return decode(request, data)
        except WireError as exc:  # answered INVALID_ARGUMENT by ``call`` (a raise here would be UNKNOWN)
            return {_BAD: str(exc)}

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=deserialize, response_serializer=lambda value: encode(response, value)
    )


def handlers(scope: Scope) -> list[Any]:
    data, sources = DomainDataService(scope), DomainDataSourceService(scope)
    data_methods = {
        verb: _handler(getattr(data, f"{verb}DomainData"), f"{verb}DomainDataRequest", f"{verb}DomainDataResponse")
        for verb in ("Create", "Query", "Update", "Delete")
    }
    source_methods = {
        verb: _handler(getattr(sources, f"{verb}DomainDataSource"), f"{verb}DomainDataSourceRequest",
                       f"{verb}DomainDataSourceResponse")
        for verb in ("Create", "Query", "Update", "Delete")
    }
    return [
        grpc.method_handlers_generic_handler(
            f"{PACKAGE}.DomainDataService", {f"{verb}DomainData": h for verb, h in data_methods.items()}
        ),
        grpc.method_handlers_generic_handler(
            f"{PACKAGE}.DomainDataSourceService", {f"{verb}DomainDataSource": h for verb, h in source_methods.items()}
        ),
    ]


class GrpcEndpoint:
    """The DataMesh gRPC server on ``host:port`` (0 = any free port; ``port`` is the bound one)."""

    def __init__(self, scope: Scope, host: str, port: int) -> None:
        self.scope, self.host, self.port = scope, host, port
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(handlers(self.scope))
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as exc:
            raise OSError(f"datamesh.grpcPort: cannot listen on {self.host}:{self.port}: {exc}") from None
        if not bound:
            raise OSError(f"datamesh.grpcPort: cannot listen on {self.host}:{self.port}")
        await server.start()
        self._server, self.port = server, bound

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop(grace=1.0)
