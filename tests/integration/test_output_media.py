"""The answer's media type from ``Accept``, as kube-apiserver negotiates it: JSON, YAML when the
client prefers it, JSON for a protobuf-accepting client, 406 (before any write) for none of them."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import RunningServer
from tests.integration.kube_http import JSON, Api, Reply, assert_status, configmap, create

CMS = "/api/v1/namespaces/default/configmaps"
YAML = {"Accept": "application/yaml"}
pytestmark = pytest.mark.controllers()


async def test_get_and_list_in_yaml_when_the_client_prefers_it(api: Api) -> None:
    await create(api, CMS, configmap("y1", {"k": "v: with colon"}))
    as_json = (await api.get(f"{CMS}/y1")).body
    for _ in range(2):  # the second GET of a learnt path (the fast path) negotiates too
        reply = await api.get(f"{CMS}/y1", headers=YAML)
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/yaml"), reply.headers
        assert yaml.safe_load(reply.raw) == as_json
    listed = await api.get(CMS, headers={"Accept": "application/json;q=0.5, application/yaml"})
    assert listed.headers["Content-Type"].startswith("application/yaml")
    doc = yaml.safe_load(listed.raw)
    assert doc["kind"] == "ConfigMapList" and "y1" in [i["metadata"]["name"] for i in doc["items"]]
    first = await api.get(f"{CMS}/y1", headers={"Accept": "application/json, application/yaml"})
    assert first.headers["Content-Type"].startswith("application/json") and first.body == as_json


async def test_yaml_is_utf8_text_not_escapes(api: Api) -> None:
    await create(api, CMS, configmap("u1", {"k": "é中 ✓"}))
    reply = await api.get(f"{CMS}/u1", headers=YAML)
    assert "k: é中 ✓".encode() in reply.raw, reply.raw  # as kube writes it; PyYAML's default escapes
    assert yaml.safe_load(reply.raw)["data"] == {"k": "é中 ✓"}


async def test_a_protobuf_client_reads_json(api: Api) -> None:
    await create(api, CMS, configmap("p1"))
    for _ in range(2):
        reply = await api.get(f"{CMS}/p1", headers={"Accept": "application/vnd.kubernetes.protobuf"})
        assert reply.status == 200 and reply.body["metadata"]["name"] == "p1"


async def test_no_served_type_is_406_before_anything_is_written(api: Api) -> None:
    await create(api, CMS, configmap("h1"))
    for _ in range(2):
        reply = await api.get(f"{CMS}/h1", headers={"Accept": "text/html"})
        status = assert_status(reply, 406, "NotAcceptable")
        assert "application/json, application/yaml" in status["message"]
    reply = await api.post(CMS, configmap("h2"), headers={"Accept": "text/html"})
    assert_status(reply, 406, "NotAcceptable")
    assert (await api.get(f"{CMS}/h2")).status == 404
    watch = await api.get(CMS, params={"watch": "true"}, headers=YAML)  # watches stream JSON only
    assert_status(watch, 406, "NotAcceptable")


def _yaml_status(reply: Reply, code: int, reason: str) -> JSON:
    """The reply is a ``Status`` in YAML (``Content-Type: application/yaml``) with this code and reason."""
    assert reply.headers["Content-Type"].startswith("application/yaml"), reply
    return assert_status(reply, code, reason)


async def test_errors_are_encoded_as_the_client_negotiates(api: Api, api_server: RunningServer) -> None:
    """Like kube-apiserver's ``ErrorNegotiated``: a client preferring YAML reads its refusals in
    YAML -- a missing object, a bad object, a watch it cannot have in YAML, no credentials, an
    unknown path -- and every other client in JSON."""
    missing = _yaml_status(await api.get(f"{CMS}/nope", headers=YAML), 404, "NotFound")
    assert missing["message"] == 'configmaps "nope" not found' and missing["details"]["name"] == "nope"
    bad = await api.post(CMS, configmap("Bad_Name"), headers={"Accept": "application/json;q=0.5, application/yaml"})
    assert "Bad_Name" in _yaml_status(bad, 422, "Invalid")["message"]
    _yaml_status(await api.get(CMS, params={"watch": "true"}, headers=YAML), 406, "NotAcceptable")
    _yaml_status(await api.get("/apis/nothing.example/v1/things", headers=YAML), 404, "NotFound")
    async with Api(api_server, token=None) as anonymous:
        _yaml_status(await anonymous.get(CMS, headers=YAML), 401, "Unauthorized")

    for accept in ("", "application/json", "application/json, application/yaml", "*/*",
                   "application/vnd.kubernetes.protobuf",
                   "application/yaml;as=Table;g=meta.k8s.io;v=v1"):  # a Status is never converted: JSON
        reply = await api.get(f"{CMS}/nope", headers={"Accept": accept} if accept else None)
        assert reply.headers["Content-Type"].startswith("application/json"), (accept, reply)
        assert_status(reply, 404, "NotFound", 'configmaps "nope" not found')
    # nothing acceptable: the 406 (decided first) is JSON, as kube-apiserver hides no error behind a 406
    refused = await api.get(f"{CMS}/nope", headers={"Accept": "text/html, application/yaml;q=0"})
    assert refused.headers["Content-Type"].startswith("application/json")
    assert_status(refused, 406, "NotAcceptable")
