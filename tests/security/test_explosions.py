"""Finding 4: tiny requests cannot explode — YAML aliases, copy-patch bombs, post-patch size, depth."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.security.conftest import Network

pytestmark = pytest.mark.slow
CMS = "/api/v1/namespaces/alice/configmaps"
BOMB = b"""apiVersion: v1
kind: ConfigMap
metadata:
  name: lol
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


async def test_yaml_alias_bomb_is_refused_at_once(network: Network) -> None:
    started = time.monotonic()
    for ctype, method, path in (("application/yaml", "POST", CMS),
                                ("application/apply-patch+yaml", "PATCH", CMS + "/lol?fieldManager=t")):
        reply = await network.call(method, path, as_="alice", raw=BOMB, content_type=ctype)
        assert reply.status == 400 and "aliases" in reply.body["message"], reply.body
    assert time.monotonic() - started < 5
    assert (await network.call("GET", CMS + "/lol", as_="alice")).status == 404


async def test_copy_patch_bomb_is_bounded(network: Network) -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed"}, "data": {"x": "y" * 1000}}
    assert (await network.call("POST", CMS, as_="alice", body=base)).status == 201
    ops = [{"op": "copy", "from": "/data", "path": "/metadata/annotations"}]
    ops += [{"op": "copy", "from": "/metadata", "path": f"/metadata/annotations/{i}"} for i in range(20)]
    started = time.monotonic()
    reply = await network.call("PATCH", CMS + "/seed", as_="alice", body=ops,
                               content_type="application/json-patch+json")
    assert reply.status in (413, 422), reply.body
    assert time.monotonic() - started < 5
    many = [{"op": "test", "path": "/data/x", "value": "y" * 1000}] * 10_001
    reply = await network.call("PATCH", CMS + "/seed", as_="alice", body=many,
                               content_type="application/json-patch+json")
    assert reply.status == 413, reply.body


async def test_objects_are_size_checked_after_patching(network: Network) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x" * 2_000_000}}
    assert (await network.call("POST", CMS, as_="alice", body=big)).status == 201
    reply = await network.call("PATCH", CMS + "/big", as_="alice", body={"data": {"b": "x" * 2_000_000}},
                               content_type="application/merge-patch+json")
    assert reply.status == 413, reply.body
    stored = await network.call("GET", CMS + "/big", as_="alice")
    assert set(stored.body["data"]) == {"a"}


async def test_deep_nesting_is_refused_and_lists_keep_working(network: Network) -> None:
    deep: object = "leaf"
    for _ in range(240):
        deep = {"a": deep}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep", "annotations": {}},
            "data": {"k": "v"}, "extra": deep}
    reply = await network.call("POST", CMS, as_="alice", raw=orjson.dumps(body))
    assert reply.status == 400 and "nested" in reply.body["message"], reply.body
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shallow"}, "data": {"k": "v"}}
    assert (await network.call("POST", CMS, as_="alice", body=cm)).status == 201
    nest: object = "leaf"
    for _ in range(60):
        nest = {"a": nest}
    patch = [{"op": "add", "path": "/metadata/managedFields", "value": [{"manager": "m", "fieldsV1": nest}]}]
    for _ in range(2):
        reply = await network.call("PATCH", CMS + "/shallow", as_="alice", body=patch,
                                   content_type="application/json-patch+json")
    assert (await network.call("GET", "/api/v1/configmaps")).status == 200
