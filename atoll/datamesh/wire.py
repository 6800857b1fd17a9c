"""Protobuf wire format of Kuscia's DataMesh messages, for the gRPC endpoint (no generated code).

Each message is a table of ``field number → (name, kind)`` transcribed from the field numbers of
Kuscia's ``proto/api/v1alpha1/datamesh/*.proto`` and ``common.proto``; :func:`decode` turns bytes
into the same proto-name dicts the HTTP endpoint reads, :func:`encode` turns the services'
response dicts into bytes. Kinds: ``string``, ``bool``, ``int32``, ``FileFormat`` (enum by name),
``map`` (map<string,string>), a message name, or ``[name]`` for a repeated message. Unknown fields
are skipped, as protobuf parsers do.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
Kind = str | list[str]
Schema = dict[int, tuple[str, Kind]]

FILE_FORMAT = ("UNKNOWN", "CSV", "BINARY")
_S = "string"

_DOMAINDATA_FIELDS: Schema = {
    1: ("header", "RequestHeader"), 2: ("domaindata_id", _S), 3: ("name", _S), 4: ("type", _S),
    5: ("relative_uri", _S), 6: ("datasource_id", _S), 7: ("attributes", "map"), 8: ("partition", "Partition"),
    9: ("columns", ["DataColumn"]), 10: ("vendor", _S), 11: ("file_format", "FileFormat"),
}
_DATASOURCE_FIELDS: Schema = {
    1: ("header", "RequestHeader"), 2: ("datasource_id", _S), 3: ("name", _S), 4: ("type", _S),
    5: ("info", "DataSourceInfo"), 6: ("info_key", _S), 7: ("access_directly", "bool"),
}
_ID_REQUEST = {1: ("header", "RequestHeader")}
_STATUS_ONLY: Schema = {1: ("status", "Status")}

SCHEMAS: dict[str, Schema] = {
    "RequestHeader": {1: ("custom_headers", "map")},
    "Status": {1: ("code", "int32"), 2: ("message", _S)},  # details (repeated Any) is never sent
    "DataColumn": {1: ("name", _S), 2: ("type", _S), 3: ("comment", _S), 4: ("not_nullable", "bool")},
    "Partition": {1: ("type", _S), 2: ("fields", ["DataColumn"])},
    "DomainData": {
        1: ("domaindata_id", _S), 2: ("name", _S), 3: ("type", _S), 4: ("relative_uri", _S),
        5: ("datasource_id", _S), 6: ("attributes", "map"), 7: ("partition", "Partition"),
        8: ("columns", ["DataColumn"]), 9: ("vendor", _S), 10: ("file_format", "FileFormat"), 11: ("author", _S),
    },
    "CreateDomainDataRequest": _DOMAINDATA_FIELDS,
    "UpdateDomainDataRequest": _DOMAINDATA_FIELDS,
    "QueryDomainDataRequest": {**_ID_REQUEST, 2: ("domaindata_id", _S)},
    "DeleteDomainDataRequest": {**_ID_REQUEST, 2: ("domaindata_id", _S)},
    "CreateDomainDataResponseData": {1: ("domaindata_id", _S)},
    "CreateDomainDataResponse": {1: ("status", "Status"), 2: ("data", "CreateDomainDataResponseData")},
    "QueryDomainDataResponse": {1: ("status", "Status"), 2: ("data", "DomainData")},
    "UpdateDomainDataResponse": _STATUS_ONLY,
    "DeleteDomainDataResponse": _STATUS_ONLY,
    "LocalDataSourceInfo": {1: ("path", _S)},
    "OssDataSourceInfo": {
        1: ("endpoint", _S), 2: ("bucket", _S), 3: ("prefix", _S), 4: ("access_key_id", _S),
        5: ("access_key_secret", _S), 6: ("virtualhost", "bool"), 7: ("version", _S), 8: ("storage_type", _S),
    },
    "DatabaseDataSourceInfo": {1: ("endpoint", _S), 2: ("user", _S), 3: ("password", _S), 4: ("database", _S)},
    "OdpsDataSourceInfo": {1: ("endpoint", _S), 2: ("project", _S), 3: ("access_key_id", _S),
                           4: ("access_key_secret", _S)},
    "DataSourceInfo": {1: ("localfs", "LocalDataSourceInfo"), 2: ("oss", "OssDataSourceInfo"),
                       3: ("database", "DatabaseDataSourceInfo"), 4: ("odps", "OdpsDataSourceInfo")},
    "DomainDataSource": {
        1: ("datasource_id", _S), 2: ("name", _S), 3: ("type", _S), 4: ("status", _S),
        5: ("info", "DataSourceInfo"), 6: ("info_key", _S), 7: ("access_directly", "bool"),
    },
    "CreateDomainDataSourceRequest": _DATASOURCE_FIELDS,
    "UpdateDomainDataSourceRequest": _DATASOURCE_FIELDS,
    "QueryDomainDataSourceRequest": {**_ID_REQUEST, 2: ("datasource_id", _S)},
    "DeleteDomainDataSourceRequest": {**_ID_REQUEST, 2: ("datasource_id", _S)},
    "CreateDomainDataSourceResponseData": {1: ("datasource_id", _S)},
    "CreateDomainDataSourceResponse": {1: ("status", "Status"), 2: ("data", "CreateDomainDataSourceResponseData")},
    "QueryDomainDataSourceResponse": {1: ("status", "Status"), 2: ("data", "DomainDataSource")},
    "UpdateDomainDataSourceResponse": _STATUS_ONLY,
    "DeleteDomainDataSourceResponse": _STATUS_ONLY,
}


class WireError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


# -- primitives --------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 are sent as 10-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


# -- encode ------------------------------------------------------------------------------------


def encode(message: str, value: JSON) -> bytes:
    out = bytearray()
    for number, (name, kind) in SCHEMAS[message].items():
        item = value.get(name)
        if item is None or item in ("", 0) or item == [] or item == {}:  # proto3 defaults are not sent
            continue
        out += _encode_field(number, kind, item)
    return bytes(out)


def _encode_field(number: int, kind: Kind, item: Any) -> bytes:
    if isinstance(kind, list):
        return b"".join(_bytes_field(number, encode(kind[0], v)) for v in item)
    if kind == "string":
        return _bytes_field(number, str(item).encode())
    if kind == "bool":
        return _tag(number, 0) + _varint(1 if item else 0)
    if kind == "int32":
        return _tag(number, 0) + _varint(int(item))
    if kind == "FileFormat":
        index = FILE_FORMAT.index(item) if item in FILE_FORMAT else 0
        return _tag(number, 0) + _varint(index) if index else b""
    if kind == "map":
        return b"".join(
            _bytes_field(number, _bytes_field(1, str(k).encode()) + _bytes_field(2, str(v).encode()))
            for k, v in item.items()
        )
    return _bytes_field(number, encode(kind, item))


# -- decode ------------------------------------------------------------------------------------


def decode(message: str, data: bytes) -> JSON:
    schema, pos = SCHEMAS[message], 0
    out: JSON = {}
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            raw_int, pos = _read_varint(data, pos)
            payload: bytes | int = raw_int
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise WireError(f"{message}: field {number} runs past the end")
            payload, pos = data[pos : pos + length], pos + length
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
            continue
        else:
            raise WireError(f"{message}: unsupported wire type {wire_type}")
        if number in schema:
            _decode_field(out, schema[number], payload, message)
    return out


def _decode_field(out: JSON, field: tuple[str, Kind], payload: bytes | int, message: str) -> None:
    name, kind = field
    if isinstance(kind, list):
        out.setdefault(name, []).append(decode(kind[0], _need_bytes(payload, message, name)))
    elif kind == "string":
        out[name] = _need_bytes(payload, message, name).decode("utf-8", "replace")
    elif kind == "bool":
        out[name] = bool(payload)
    elif kind == "int32":
        value = int(payload) & 0xFFFFFFFF
        out[name] = value - (1 << 32) if value >= 1 << 31 else value
    elif kind == "FileFormat":
        out[name] = FILE_FORMAT[int(payload)] if isinstance(payload, int) and payload < len(FILE_FORMAT) else "UNKNOWN"
    elif kind == "map":
        entry = decode_map_entry(_need_bytes(payload, message, name))
        out.setdefault(name, {}).update([entry])
    else:
        out[name] = decode(kind, _need_bytes(payload, message, name))


def decode_map_entry(data: bytes) -> tuple[str, str]:
    entry = decode("_MapEntry", data)
    return str(entry.get("key", "")), str(entry.get("value", ""))


SCHEMAS["_MapEntry"] = {1: ("key", _S), 2: ("value", _S)}


def _need_bytes(payload: bytes | int, message: str, name: str) -> bytes:
    if not isinstance(payload, bytes):
        raise WireError(f"{message}.{name}: expected a length-delimited field")
    return payload
