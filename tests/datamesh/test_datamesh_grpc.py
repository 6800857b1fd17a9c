"""DataMesh over gRPC, checked with an independent protobuf implementation: the test builds the
messages it needs (Kuscia's field numbers) with ``google.protobuf`` descriptors and talks to the
real endpoint with ``grpc.aio``; results must match the HTTP endpoint's."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.datamesh.conftest import Mesh, call

pytestmark = pytest.mark.slow
PACKAGE = "kuscia.proto.api.v1alpha1.datamesh"
F = descriptor_pb2.FieldDescriptorProto
STRING, BOOL, INT32, MESSAGE, ENUM = F.TYPE_STRING, F.TYPE_BOOL, F.TYPE_INT32, F.TYPE_MESSAGE, F.TYPE_ENUM
REPEATED = F.LABEL_REPEATED

# message → [(number, name, type, type_name or "", repeated)]
SPEC: dict[str, list[tuple[int, str, int, str, bool]]] = {
    "Status": [(1, "code", INT32, "", False), (2, "message", STRING, "", False)],
    "DataColumn": [(1, "name", STRING, "", False), (2, "type", STRING, "", False), (3, "comment", STRING, "", False),
                   (4, "not_nullable", BOOL, "", False)],
    "CreateDomainDataRequest": [(2, "domaindata_id", STRING, "", False), (4, "type", STRING, "", False),
                                (5, "relative_uri", STRING, "", False), (7, "attributes", MESSAGE, "map", True),
                                (9, "columns", MESSAGE, "DataColumn", True), (11, "file_format", ENUM, "FileFormat",
                                                                             False)],
    "CreateDomainDataResponseData": [(1, "domaindata_id", STRING, "", False)],
    "CreateDomainDataResponse": [(1, "status", MESSAGE, "Status", False),
                                 (2, "data", MESSAGE, "CreateDomainDataResponseData", False)],
    "QueryDomainDataRequest": [(2, "domaindata_id", STRING, "", False)],
    "DomainData": [(1, "domaindata_id", STRING, "", False), (3, "type", STRING, "", False),
                   (4, "relative_uri", STRING, "", False), (5, "datasource_id", STRING, "", False),
                   (6, "attributes", MESSAGE, "map", True), (8, "columns", MESSAGE, "DataColumn", True),
                   (9, "vendor", STRING, "", False), (10, "file_format", ENUM, "FileFormat", False),
                   (11, "author", STRING, "", False)],
    "QueryDomainDataResponse": [(1, "status", MESSAGE, "Status", False), (2, "data", MESSAGE, "DomainData", False)],
    "LocalDataSourceInfo": [(1, "path", STRING, "", False)],
    "DataSourceInfo": [(1, "localfs", MESSAGE, "LocalDataSourceInfo", False)],
    "QueryDomainDataSourceRequest": [(2, "datasource_id", STRING, "", False)],
    "DomainDataSource": [(1, "datasource_id", STRING, "", False), (3, "type", STRING, "", False),
                         (4, "status", STRING, "", False), (5, "info", MESSAGE, "DataSourceInfo", False),
                         (7, "access_directly", BOOL, "", False)],
    "QueryDomainDataSourceResponse": [(1, "status", MESSAGE, "Status", False),
                                      (2, "data", MESSAGE, "DomainDataSource", False)],
}


def build_messages() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(name="atoll_datamesh_test.proto", package="t", syntax="proto3")
    enum = fdp.enum_type.add(name="FileFormat")
    for number, name in enumerate(("UNKNOWN", "CSV", "BINARY")):
        enum.value.add(name=name, number=number)
    for message, fields in SPEC.items():
        desc = fdp.message_type.add(name=message)
        for number, name, kind, type_name, repeated in fields:
            field = desc.field.add(name=name, number=number, type=kind,  # type: ignore[arg-type]
                                   label=REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name == "map":
                entry = desc.nested_type.add(name=f"{name.capitalize()}Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=STRING, label=F.LABEL_OPTIONAL)
                entry.field.add(name="value", number=2, type=STRING, label=F.LABEL_OPTIONAL)
                field.type_name = f".t.{message}.{entry.name}"
            elif type_name:
                field.type_name = f".t.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"t.{name}")) for name in SPEC}


MESSAGES = build_messages()


async def rpc(mesh: Mesh, service: str, method: str, request: Any, response: str) -> Any:
    async with grpc.aio.insecure_channel(mesh.server.grpc_addr) as channel:
        stub = channel.unary_unary(f"/{PACKAGE}.{service}/{method}", request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=MESSAGES[response].FromString)
        return await stub(request, timeout=10)


async def test_domaindata_over_grpc_matches_http(meshes: dict[str, Mesh]) -> None:
    alice = meshes["alice"]
    req = MESSAGES["CreateDomainDataRequest"](
        domaindata_id="grpc-table", type="table", relative_uri="g.csv", attributes={"k": "v"},
        columns=[MESSAGES["DataColumn"](name="id", type="str", not_nullable=True)], file_format=1)
    created = await rpc(alice, "DomainDataService", "CreateDomainData", req, "CreateDomainDataResponse")
    assert created.status.code == 0 and created.data.domaindata_id == "grpc-table", created

    got = await rpc(alice, "DomainDataService", "QueryDomainData",
                    MESSAGES["QueryDomainDataRequest"](domaindata_id="grpc-table"), "QueryDomainDataResponse")
    over_http = (await call(alice, "domaindata/query", {"domaindata_id": "grpc-table"}))["data"]
    data = got.data
    assert (data.domaindata_id, data.type, data.relative_uri, data.datasource_id, data.vendor, data.author) == (
        over_http["domaindata_id"], "table", "g.csv", over_http["datasource_id"], "manual", "alice")
    assert dict(data.attributes) == {"k": "v"} == over_http["attributes"]
    assert [(c.name, c.type, c.not_nullable) for c in data.columns] == [("id", "str", True)]
    assert data.file_format == 1 and over_http["file_format"] == "CSV"

    missing = await rpc(meshes["bob"], "DomainDataService", "QueryDomainData",
                        MESSAGES["QueryDomainDataRequest"](domaindata_id="grpc-table"), "QueryDomainDataResponse")
    assert missing.status.code == 12201 and "domain bob" in missing.status.message  # scoped like HTTP


async def test_datasource_over_grpc(meshes: dict[str, Mesh]) -> None:
    alice = meshes["alice"]
    got = await rpc(alice, "DomainDataSourceService", "QueryDomainDataSource",
                    MESSAGES["QueryDomainDataSourceRequest"](datasource_id="default-data-source"),
                    "QueryDomainDataSourceResponse")
    assert got.status.code == 0 and got.data.type == "localfs" and got.data.access_directly
    assert got.data.info.localfs.path == str(alice.data_root)


async def test_garbage_is_invalid_argument(meshes: dict[str, Mesh]) -> None:
    async with grpc.aio.insecure_channel(meshes["alice"].server.grpc_addr) as channel:
        stub = channel.unary_unary(f"/{PACKAGE}.DomainDataService/QueryDomainData",
                                   request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub(b"\x12\xff\xff", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "truncated" in str(err.value.details())
