"""Kuscia's ``DomainDataService`` and ``DomainDataSourceService``, scoped to one domain's namespace.

Each method takes a request message (already :func:`~atoll.datamesh.messages.normalize`-d) and
returns the response message; failures are responses too (``status.code`` from Kuscia's
DataMesh error codes, ``status.message`` naming the field or the object). Behaviour follows
Kuscia's metaserver: ``CreateDomainData`` of an existing id updates it, empty update fields keep
their values, ids are generated when omitted. Unlike Kuscia, a ``relative_uri`` must stay inside
its data source, and the lite's credentials (RBAC) confine everything to its own namespace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors
from atoll.api.constants import domain_id_problem
from atoll.client import Client
from atoll.datamesh import constants as c
from atoll.datamesh import messages as m
from atoll.datamesh.info import InfoError, localfs_root, open_sealed, relative_uri_problem, seal

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class DataMeshError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _name_problem(value: str, field: str) -> str | None:
    problem = domain_id_problem(value) if len(value) <= 63 else f"must be at most 63 characters (got {len(value)})"
    return f"{field}: {problem}" if problem else None


@dataclass(slots=True)
class Scope:
    """Where a DataMesh works: its client, its domain (= namespace), its data dir and key."""

    client: Client
    domain: str
    data_dir: Path
    domain_key: rsa.RSAPrivateKey | None = None


class DomainDataService:
    def __init__(self, scope: Scope) -> None:
        self.s = scope

    # Method names are Kuscia's (DomainDataService in proto/api/v1alpha1/datamesh/domaindata.proto).
    async def CreateDomainData(self, req: JSON) -> JSON:
        data_id = str(req.get("domaindata_id") or "")
        if data_id:
            problem = _name_problem(data_id, "domaindata_id")
            if problem:
                raise DataMeshError(c.ERR_REQUEST_INVALIDATE, problem)
            try:
                await self.s.client.get(c.DOMAINDATAS, data_id, self.s.domain)
            except errors.NotFound:
                pass
            else:
                await self.UpdateDomainData(req)
                return {"status": m.status(), "data": {"domaindata_id": data_id}}
        req = self._normalize_create(req)
        source = await _source(self.s, req["datasource_id"], c.ERR_GET_DATASOURCE_FROM_KUBE)
        source_type = str((source.get("spec") or {}).get("type") or "")
        file_format = m.file_format_for(source_type, m.file_format_name(req.get("file_format")))
        body = {
            "apiVersion": "kuscia.secretflow/v1alpha1",
            "kind": "DomainData",
            "metadata": {"name": req["domaindata_id"], "labels": _data_labels(req)},
            "spec": m.domaindata_spec(req, author=self.s.domain, file_format=file_format),
        }
        try:
            await self.s.client.create(c.DOMAINDATAS, body, self.s.domain)
        except errors.APIError as exc:
            raise DataMeshError(c.ERR_CREATE_DOMAINDATA, f"create domaindata {req['domaindata_id']}: {exc}") from None
        return {"status": m.status(), "data": {"domaindata_id": req["domaindata_id"]}}

    async def QueryDomainData(self, req: JSON) -> JSON:
        obj = await _get(self.s, c.DOMAINDATAS, _required(req, "domaindata_id"), c.ERR_QUERY_DOMAINDATA, "domaindata")
        return {"status": m.status(), "data": m.domaindata_to_pb(obj)}

    async def UpdateDomainData(self, req: JSON) -> JSON:
        data_id = _required(req, "domaindata_id")
        original = await _get(self.s, c.DOMAINDATAS, data_id, c.ERR_GET_DOMAINDATA_FROM_KUBE, "domaindata")
        old = m.domaindata_to_pb(original)
        merged = {k: (req.get(k) or old[k]) for k in old if k not in ("domaindata_id", "author")}
        merged["domaindata_id"] = data_id
        _check_domaindata(merged)
        file_format = str((original.get("spec") or {}).get("fileFormat") or "")
        if merged["datasource_id"] != old["datasource_id"] or req.get("file_format"):
            source = await _source(self.s, merged["datasource_id"], c.ERR_GET_DATASOURCE_FROM_KUBE)
            source_type = str((source.get("spec") or {}).get("type") or "")
            file_format = m.file_format_for(source_type, m.file_format_name(merged["file_format"]))
        meta = original["metadata"]
        updated = {
            **original,
            "metadata": {**meta, "labels": {**(meta.get("labels") or {}), **_data_labels(merged)}},
            "spec": m.domaindata_spec(merged, author=self.s.domain, file_format=file_format),
        }
        try:
            await self.s.client.update(c.DOMAINDATAS, updated)
        except errors.APIError as exc:
            raise DataMeshError(c.ERR_PATCH_DOMAINDATA, f"update domaindata {data_id}: {exc}") from None
        return {"status": m.status()}

    async def DeleteDomainData(self, req: JSON) -> JSON:
        data_id = _required(req, "domaindata_id")
        log.warning("deleting domaindata %s/%s", self.s.domain, data_id)
        try:
            await self.s.client.delete(c.DOMAINDATAS, data_id, self.s.domain)
        except errors.APIError as exc:
            raise DataMeshError(c.ERR_DELETE_DOMAINDATA, f"delete domaindata {data_id}: {exc}") from None
        return {"status": m.status()}

    @staticmethod
    def _normalize_create(req: JSON) -> JSON:
        out = dict(req)
        uri = str(out.get("relative_uri") or "")
        out["relative_uri"] = uri
        out["name"] = str(out.get("name") or uri.rsplit("/", 1)[-1])
        out["domaindata_id"] = str(out.get("domaindata_id") or m.generate_id(out["name"]))
        out["datasource_id"] = str(out.get("datasource_id") or c.DEFAULT_DATA_SOURCE_ID)
        out["vendor"] = str(out.get("vendor") or c.DEFAULT_VENDOR)
        out["type"] = str(out.get("type") or "")
        _check_domaindata(out)
        return out


def _check_domaindata(req: JSON) -> None:
    problem = relative_uri_problem(str(req.get("relative_uri") or ""))
    if not problem and req.get("type") not in c.DOMAINDATA_TYPES:
        problem = f"type: must be one of {', '.join(c.DOMAINDATA_TYPES)} (got {req.get('type')!r})"
    if not problem and req.get("type") == "table" and not req.get("columns"):
        problem = "columns: required for a table"
    for col in req.get("columns") or []:
        if not problem and not (col.get("name") and col.get("type")):
            problem = f"columns: every column needs a name and a type (got {col!r})"
    if problem:
        raise DataMeshError(c.ERR_REQUEST_INVALIDATE, problem)


def _data_labels(req: JSON) -> dict[str, str]:
    return {
        c.LABEL_DOMAINDATA_TYPE: req["type"],
        c.LABEL_DOMAINDATA_VENDOR: req["vendor"],
        c.LABEL_INTERCONN_PROTOCOL_TYPE: "kuscia",
    }


def _required(req: JSON, field: str) -> str:
    value = str(req.get(field) or "")
    if not value:
        raise DataMeshError(c.ERR_REQUEST_INVALIDATE, f"{field}: required")
    return value


async def _get(scope: Scope, rd: Any, name: str, code: int, what: str) -> JSON:
    try:
        return await scope.client.get(rd, name, scope.domain)
    except errors.NotFound:
        raise DataMeshError(code, f"{what} {name!r} not found in domain {scope.domain}") from None
    except errors.APIError as exc:
        raise DataMeshError(code, f"{what} {name!r}: {exc}") from None


async def _source(scope: Scope, source_id: str, code: int) -> JSON:
    return await _get(scope, c.DOMAINDATASOURCES, source_id, code, "datasource")


class DomainDataSourceService:
    def __init__(self, scope: Scope) -> None:
        self.s = scope

    async def CreateDomainDataSource(self, req: JSON) -> JSON:
        source_type = str(req.get("type") or "")
        source_id = str(req.get("datasource_id") or m.generate_id(source_type))
        problem = _name_problem(source_id, "datasource_id")
        if problem:
            raise DataMeshError(c.ERR_REQUEST_INVALIDATE, problem)
        uri, sealed = self._seal(source_type, req)
        body = {
            "apiVersion": "kuscia.secretflow/v1alpha1",
            "kind": "DomainDataSource",
            "metadata": {"name": source_id, "labels": {c.LABEL_DATASOURCE_TYPE: source_type}},
            "spec": {
                "uri": uri,
                "name": str(req.get("name") or source_id),
                "type": source_type,
                "data": {c.ENCRYPTED_INFO: sealed},
                "accessDirectly": bool(req.get("access_directly", True)),
            },
        }
        try:
            await self.s.client.create(c.DOMAINDATASOURCES, body, self.s.domain)
        except errors.AlreadyExists:
            raise DataMeshError(c.ERR_DATASOURCE_EXISTS, f"datasource {source_id!r} already exists") from None
        except errors.APIError as exc:
            raise DataMeshError(c.ERR_CREATE_DATASOURCE, f"create datasource {source_id}: {exc}") from None
        return {"status": m.status(), "data": {"datasource_id": source_id}}

    async def QueryDomainDataSource(self, req: JSON) -> JSON:
        source_id = _required(req, "datasource_id")
        obj = await _get(self.s, c.DOMAINDATASOURCES, source_id, c.ERR_QUERY_DATASOURCE, "datasource")
        return {"status": m.status(), "data": m.datasource_to_pb(obj, self.info(obj))}

    async def UpdateDomainDataSource(self, req: JSON) -> JSON:
        source_id = _required(req, "datasource_id")
        original = await _get(self.s, c.DOMAINDATASOURCES, source_id, c.ERR_GET_DATASOURCE_FROM_KUBE, "datasource")
        spec = dict(original.get("spec") or {})
        source_type = str(req.get("type") or spec.get("type") or "")
        if req.get("info") or source_type != spec.get("type"):
            spec["uri"], sealed = self._seal(source_type, {**req, "info": req.get("info") or self.info(original)})
            spec["data"] = {**(spec.get("data") or {}), c.ENCRYPTED_INFO: sealed}
        spec["type"] = source_type
        spec["name"] = str(req.get("name") or spec.get("name") or source_id)
        if "access_directly" in req:
            spec["accessDirectly"] = bool(req["access_directly"])
        meta = original["metadata"]
        labels = {**(meta.get("labels") or {}), c.LABEL_DATASOURCE_TYPE: source_type}
        try:
            await self.s.client.update(c.DOMAINDATASOURCES, {**original, "metadata": {**meta, "labels": labels},
                                                             "spec": spec})
        except errors.APIError as exc:
            raise DataMeshError(c.ERR_PATCH_DATASOURCE, f"update datasource {source_id}: {exc}") from None
        return {"status": m.status()}

    async def DeleteDomainDataSource(self, req: JSON) -> JSON:
        source_id = _required(req, "datasource_id")
        log.warning("deleting datasource %s/%s", self.s.domain, source_id)
        try:
            await self.s.client.delete(c.DOMAINDATASOURCES, source_id, self.s.domain)
        except errors.NotFound:
            raise DataMeshError(c.ERR_DATASOURCE_NOT_EXISTS, f"datasource {source_id!r} not found") from None
        except errors.APIError as exc:
            raise DataMeshError(c.ERR_DELETE_DATASOURCE, f"delete datasource {source_id}: {exc}") from None
        return {"status": m.status()}

    # -- connection info --------------------------------------------------------------------

    def _seal(self, source_type: str, req: JSON) -> tuple[str, str]:
        if req.get("info_key"):
            raise DataMeshError(c.ERR_DECODE_DATASOURCE_INFO,
                                "info_key: not supported (Atoll has no ConfManager secret store); pass info")
        info = req.get("info") or {}
        try:
            uri = m.datasource_uri(source_type, info)
        except ValueError as exc:
            raise DataMeshError(c.ERR_PARSE_DATASOURCE, str(exc)) from None
        if self.s.domain_key is None:
            raise DataMeshError(c.ERR_ENCODE_DATASOURCE_INFO,
                                "this lite has no domainKeyData to seal the connection info with")
        stored = {k: v for k, v in info.items() if v}
        return uri, seal(self.s.domain_key.public_key(), stored)

    def info(self, obj: JSON) -> JSON:
        """The source's DataSourceInfo: opened from ``encryptedInfo``, else (localfs) from ``spec.uri``.
        A localfs path is returned absolute, as this lite's task processes must open it."""
        spec = obj.get("spec") or {}
        sealed = str((spec.get("data") or {}).get(c.ENCRYPTED_INFO) or "")
        if sealed:
            if self.s.domain_key is None:
                raise DataMeshError(c.ERR_QUERY_DATASOURCE, "this lite has no domainKeyData to open encryptedInfo")
            try:
                info = open_sealed(self.s.domain_key, sealed)
            except InfoError as exc:
                raise DataMeshError(c.ERR_DECODE_DATASOURCE_INFO, str(exc)) from None
        elif spec.get("type") == "localfs":
            info = {"localfs": {"path": str(spec.get("uri") or "")}}
        else:
            raise DataMeshError(c.ERR_QUERY_DATASOURCE, f"datasource {obj['metadata']['name']} has no encryptedInfo")
        local = info.get("localfs")
        if isinstance(local, dict) and local.get("path"):
            try:
                info["localfs"] = {"path": str(localfs_root(str(local["path"]), self.s.data_dir))}
            except InfoError as exc:
                raise DataMeshError(c.ERR_DECODE_DATASOURCE_INFO, str(exc)) from None
        return info
