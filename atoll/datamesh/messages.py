"""Kuscia's DataMesh messages (protobuf JSON mapping) ↔ the DomainData / DomainDataSource objects.

Requests are read as protojson reads them: a field may be spelled with its proto name
(``domaindata_id``) or its JSON name (``domaindataId``); map fields (``attributes``,
``custom_headers``) keep their keys. Responses are written as Kuscia's DataMesh renders them:
proto names, every field present (``EmitUnpopulated``), enums by name.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from atoll.datamesh.constants import FILE_FORMATS, FS_TYPES

JSON = dict[str, Any]
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_MAPS = frozenset({"attributes", "custom_headers", "customHeaders"})
_ID_ALPHABET = string.ascii_lowercase + string.digits


def snake(name: str) -> str:
    return _CAMEL.sub(lambda m: "_" + m.group(1).lower(), name)


def normalize(message: Any) -> Any:
    """Every message key in proto-name form, recursively (map fields left as they are)."""
    if isinstance(message, list):
        return [normalize(v) for v in message]
    if not isinstance(message, dict):
        return message
    return {snake(k): (v if k in _MAPS else normalize(v)) for k, v in message.items()}


def generate_id(prefix: str) -> str:
    """Kuscia's ``GenDomainDataID``: a cleaned, ≤16-char lower-case prefix, ``-``, 16 random characters."""
    cleaned = re.sub(r"[^a-z0-9-]+", "", prefix.lower())
    cleaned = re.sub(r"^[0-9-]+", "", cleaned)[:16]
    if cleaned and not cleaned.endswith("-"):
        cleaned += "-"
    return cleaned + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


# -- columns, partitions, file formats ---------------------------------------------------------


def columns_to_kube(columns: list[JSON] | None) -> list[JSON]:
    out = []
    for col in columns or []:
        item: JSON = {"name": str(col.get("name") or ""), "type": str(col.get("type") or "")}
        if col.get("comment"):
            item["comment"] = str(col["comment"])
        if col.get("not_nullable"):
            item["notNullable"] = True
        out.append(item)
    return out


def columns_to_pb(columns: list[JSON] | None) -> list[JSON]:
    return [
        {
            "name": str(c.get("name") or ""),
            "type": str(c.get("type") or ""),
            "comment": str(c.get("comment") or ""),
            "not_nullable": bool(c.get("notNullable")),
        }
        for c in columns or []
    ]


def partition_to_kube(partition: JSON | None) -> JSON | None:
    if not partition:
        return None
    return {"type": str(partition.get("type") or ""), "fields": columns_to_kube(partition.get("fields"))}


def partition_to_pb(partition: JSON | None) -> JSON | None:
    if not partition:
        return None
    return {"type": str(partition.get("type") or ""), "fields": columns_to_pb(partition.get("fields"))}


def file_format_name(value: Any) -> str:
    """A request's ``file_format`` (enum name, number or CRD string) → the enum name."""
    if isinstance(value, int):
        return list(FILE_FORMATS)[value] if 0 <= value < len(FILE_FORMATS) else "UNKNOWN"
    text = str(value or "").upper()
    return text if text in FILE_FORMATS else "UNKNOWN"


def file_format_for(source_type: str, requested: str) -> str:
    """The CRD ``fileFormat``: only file-system sources have one (CSV when not given, as Kuscia documents)."""
    if source_type not in FS_TYPES:
        return FILE_FORMATS["UNKNOWN"]
    return FILE_FORMATS["CSV" if requested == "UNKNOWN" else requested]


# -- DomainData ------------------------------------------------------------------------------


def domaindata_to_pb(obj: JSON) -> JSON:
    spec = obj.get("spec") or {}
    return {
        "domaindata_id": obj["metadata"]["name"],
        "name": str(spec.get("name") or ""),
        "type": str(spec.get("type") or ""),
        "relative_uri": str(spec.get("relativeURI") or ""),
        "datasource_id": str(spec.get("dataSource") or ""),
        "attributes": dict(spec.get("attributes") or {}),
        "partition": partition_to_pb(spec.get("partitions")),
        "columns": columns_to_pb(spec.get("columns")),
        "vendor": str(spec.get("vendor") or ""),
        "file_format": file_format_name(spec.get("fileFormat")),
        "author": str(spec.get("author") or ""),
    }


def domaindata_spec(req: JSON, *, author: str, file_format: str) -> JSON:
    """The DomainData ``spec`` of a normalized Create/UpdateDomainDataRequest."""
    spec: JSON = {
        "relativeURI": req["relative_uri"],
        "name": req["name"],
        "type": req["type"],
        "dataSource": req["datasource_id"],
        "columns": columns_to_kube(req.get("columns")),
        "vendor": req["vendor"],
        "author": author,
        "fileFormat": file_format,
    }
    if req.get("attributes"):
        spec["attributes"] = {str(k): str(v) for k, v in req["attributes"].items()}
    partition = partition_to_kube(req.get("partition"))
    if partition:
        spec["partitions"] = partition
    return spec


# -- DomainDataSource --------------------------------------------------------------------------


def empty_info() -> JSON:
    return {"localfs": None, "oss": None, "database": None, "odps": None}


def datasource_uri(source_type: str, info: JSON) -> str:
    """Kuscia's ``parseDataSourceURI``: the summary kept in ``spec.uri`` (raises ValueError)."""
    if source_type == "localfs":
        path = str((info.get("localfs") or {}).get("path") or "")
        if not path:
            raise ValueError("info.localfs.path: required for a localfs data source")
        return path
    if source_type == "oss":
        oss = info.get("oss") or {}
        if not oss:
            raise ValueError("info.oss: required for an oss data source")
        return str(oss.get("bucket") or "").rstrip("/") + "/" + str(oss.get("prefix") or "").lstrip("/")
    if source_type in ("mysql", "postgresql", "hive", "dameng"):
        if not info.get("database"):
            raise ValueError(f"info.database: required for a {source_type} data source")
        return ""
    if source_type == "odps":
        odps = info.get("odps") or {}
        if not odps:
            raise ValueError("info.odps: required for an odps data source")
        return f"{odps.get('endpoint', '')}/{odps.get('project', '')}"
    raise ValueError(f"type: {source_type!r} is not supported (localfs, oss, mysql, postgresql, odps, hive, dameng)")


def datasource_to_pb(obj: JSON, info: JSON) -> JSON:
    spec = obj.get("spec") or {}
    return {
        "datasource_id": obj["metadata"]["name"],
        "name": str(spec.get("name") or ""),
        "type": str(spec.get("type") or ""),
        "status": str((obj.get("status") or {}).get("phase") or "Available"),
        "info": {**empty_info(), **info},
        "info_key": str(spec.get("infoKey") or ""),
        "access_directly": bool(spec.get("accessDirectly")),
    }


def status(code: int = 0, message: str = "success") -> JSON:
    return {"code": code, "message": message, "details": []}
