"""A GET through the general chain (``ResourceHandlers.dispatch``, not ``fastget``) answers a large
object (``entries.LARGE_OBJECT``) from the cache's encoded bytes without decoding it: plain JSON,
a media type that asks for neither a Table nor metadata, and ``PartialObjectMetadata`` (whose
encoding is kept per revision, so it is decoded once, not per request). A Table reads the object's
fields and still decodes it. Each answer is the same as before."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from atoll.apiserver.cache import entries
from tests.conftest import RunningServer
from tests.integration.test_authz import call

pytestmark = pytest.mark.controllers()  # API server semantics only

PATH = "/api/v1/namespaces/default/configmaps/big"
META = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


class CountingJSON:
    """``orjson`` as the cache entries module sees it, counting decodes of one object's bytes."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.decodes = 0

    def loads(self, raw: bytes | str) -> Any:
        if isinstance(raw, bytes) and self.marker in raw:
            self.decodes += 1
        return orjson.loads(raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(orjson, name)


async def _get(server: RunningServer, accept: str | None = None, query: str = "?resourceVersion=0") -> bytes:
    headers = {"Authorization": f"Bearer {server.token}"}
    if accept is not None:
        headers["Accept"] = accept
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + PATH + query, headers=headers, ssl=server.ssl_context()) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def test_large_object_get_is_answered_from_its_bytes(
    api_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "big-value-" + "x" * (4 * entries.LARGE_OBJECT)
    status, created = await call(
        api_server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        body={"metadata": {"name": "big", "labels": {"a": "b"}}, "data": {"k": value}},
    )
    assert status == 201, created
    counting = CountingJSON(b"big-value-")
    monkeypatch.setattr(entries, "orjson", counting)
    # the write's object was kept decoded; a server that loaded it at start, or evicted it, holds only its bytes
    monkeypatch.setattr(entries, "_decoded", entries._DecodedCache(entries.DECODED_BYTES))

    for accept, query in (
        (None, "?resourceVersion=0"),
        (None, ""),
        ("application/json", ""),
        ("application/json;as=Unknown;g=meta.k8s.io;v=v1,application/json", ""),  # (the unserved range passed over)
    ):
        body = orjson.loads(await _get(api_server, accept, query))
        assert body["data"]["k"] == value and body["metadata"]["uid"] == created["metadata"]["uid"]
    assert counting.decodes == 0, "a GET answered from the cached bytes decoded the object"

    for _ in range(2):
        meta = orjson.loads(await _get(api_server, META))
        assert meta["kind"] == "PartialObjectMetadata" and meta["metadata"] == created["metadata"]
    assert counting.decodes <= 1, "PartialObjectMetadata of one revision decoded once at most"

    table = orjson.loads(await _get(api_server, TABLE))
    assert table["kind"] == "Table" and table["rows"][0]["cells"][0] == "big"
    assert table["rows"][0]["object"]["metadata"]["name"] == "big"
