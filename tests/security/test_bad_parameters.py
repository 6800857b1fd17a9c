"""Finding 11: every bad parameter or body is a 4xx Status naming it — never a 500, never accepted."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from tests.security.conftest import Network, Reply, pod

pytestmark = pytest.mark.slow
NS = "/api/v1/namespaces/alice"


def _status(reply: Reply, code: int, *words: str) -> None:
    assert reply.status == code, (reply.status, reply.body)
    assert isinstance(reply.body, dict) and reply.body.get("kind") == "Status", reply.body
    text = orjson.dumps(reply.body).decode()
    for word in words:
        assert word in text, (word, reply.body)


@pytest.fixture(scope="module", autouse=True)
def objects(network: Network) -> None:
    import asyncio

    async def create() -> None:
        for name in ("p1", "p2", "p3"):
            await network.call("POST", NS + "/pods", as_="alice", body=pod(name, "alice"))
        await network.call("POST", NS + "/configmaps", as_="alice", body={"metadata": {"name": "keep"}})

    asyncio.run(create())


YAML = "application/yaml"


async def test_yaml_non_string_keys_and_binary_are_4xx(network: Network) -> None:
    doc = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ykeys\ndata:\n  1: 2\n"
    _status(await network.call("POST", NS + "/configmaps", as_="alice", raw=doc, content_type=YAML), 422, "data.1")
    doc = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ybin\ndata:\n  k: !!binary aGVsbG8=\n"
    reply = await network.call("POST", NS + "/configmaps", as_="alice", raw=doc, content_type=YAML)
    assert 400 <= reply.status < 500 and reply.body["kind"] == "Status", reply.body


async def test_continue_tokens_with_huge_or_future_revisions_are_4xx(network: Network) -> None:
    for rv in (10**30, 10**12):
        raw = b'{"rv":%d,"start":"/core/pods/alice/p1"}' % rv
        token = base64.urlsafe_b64encode(raw).decode()
        reply = await network.call("GET", NS + f"/pods?limit=1&continue={token}", as_="alice")
        assert 400 <= reply.status < 500, reply.body
        _status(reply, reply.status, "continue")
    _status(await network.call("GET", NS + "/pods?limit=1&continue=garbage!!", as_="alice"), 400, "continue")


async def test_list_with_garbage_resource_version_is_400(network: Network) -> None:
    _status(await network.call("GET", NS + "/pods?resourceVersion=garbage", as_="alice"), 400, "resourceVersion")
    _status(await network.call("GET", NS + "/pods?limit=abc", as_="alice"), 400, "limit")


@pytest.mark.parametrize("param", ["tailLines=abc", "sinceSeconds=xyz", "limitBytes=abc", "tailLines=-1",
                                   "sinceTime=yesterday", "previous=maybe"])
async def test_pod_log_parameters_are_400(network: Network, param: str) -> None:
    name = param.split("=")[0]
    _status(await network.call("GET", NS + f"/pods/p1/log?{param}", as_="alice"), 400, name)


async def test_binding_with_a_non_object_target_is_4xx(network: Network) -> None:
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"}, "target": "x"}
    reply = await network.call("POST", NS + "/pods/p1/binding", body=binding)
    _status(reply, reply.status, "target")
    assert 400 <= reply.status < 500


async def test_access_reviews_with_a_non_object_spec_are_4xx(network: Network) -> None:
    for plural in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "X", "spec": "x"}
        reply = await network.call("POST", f"/apis/authorization.k8s.io/v1/{plural}", as_="alice", body=body)
        assert 400 <= reply.status < 500, (plural, reply.body)
        _status(reply, reply.status, "spec")


async def test_namespace_finalize_with_a_list_spec_is_4xx(network: Network) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alice"}, "spec": ["kubernetes"]}
    reply = await network.call("PUT", "/api/v1/namespaces/alice/finalize", body=body)
    assert 400 <= reply.status < 500, reply.body
    _status(reply, reply.status, "spec")


async def test_non_string_name_is_422(network: Network) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}
    _status(await network.call("POST", NS + "/configmaps", as_="alice", body=body), 422, "metadata.name")


BAD_DELETES = [
    ("dryRun=Bogus", "dryRun"),
    ("gracePeriodSeconds=abc", "gracePeriodSeconds"),
    ("propagationPolicy=Bogus", "propagationPolicy"),
    ("gracePeriodSeconds=-5x", "gracePeriodSeconds"),
]


@pytest.mark.parametrize(("query", "name"), BAD_DELETES)
async def test_bad_delete_options_are_refused_and_delete_nothing(network: Network, query: str, name: str) -> None:
    reply = await network.call("DELETE", NS + f"/configmaps/keep?{query}", as_="alice")
    assert 400 <= reply.status < 500, reply.body
    _status(reply, reply.status, name)
    assert (await network.call("GET", NS + "/configmaps/keep", as_="alice")).status == 200


async def test_bogus_dry_run_on_create_is_refused(network: Network) -> None:
    reply = await network.call("POST", NS + "/configmaps?dryRun=Bogus", as_="alice", body={"metadata": {"name": "d"}})
    _status(reply, 400, "dryRun")
    assert (await network.call("GET", NS + "/configmaps/d", as_="alice")).status == 404


async def test_overlong_url_is_a_status(network: Network) -> None:
    reply = await network.call("GET", NS + "/configmaps?labelSelector=" + "a" * 9000, as_="alice")
    assert reply.status == 414, reply.body
    assert isinstance(reply.body, dict) and reply.body.get("kind") == "Status", reply.body


async def test_list_options_are_validated(network: Network) -> None:
    _status(await network.call("GET", NS + "/pods?limit=-1", as_="alice"), 400, "limit")
    _status(await network.call("GET", NS + "/pods?resourceVersionMatch=Bogus&resourceVersion=1", as_="alice"),
            422, "resourceVersionMatch")
    _status(await network.call("GET", NS + "/pods?resourceVersionMatch=Exact", as_="alice"), 422,
            "resourceVersionMatch")
    started = time.monotonic()
    _status(await network.call("GET", NS + "/pods?resourceVersion=999999999999", as_="alice"), 504,
            "Too large resource version")
    assert time.monotonic() - started < 10


async def test_list_and_watch_option_combinations_are_422_naming_the_field(network: Network) -> None:
    """kube-apiserver's ValidateListOptions: each forbidden combination is a 422 ListOptions naming it."""
    cases = {
        "/pods?sendInitialEvents=true": ["sendInitialEvents is forbidden for list"],
        "/pods?sendInitialEvents=": ["sendInitialEvents is forbidden for list"],
        "/pods?resourceVersion=1&resourceVersionMatch=NotOlderThan&continue=abc":
            ["resourceVersionMatch is forbidden when continue is provided"],
        "/pods?resourceVersion=0&resourceVersionMatch=Exact": ['resourceVersionMatch \\"exact\\" is forbidden'],
        "/pods?watch=true&sendInitialEvents=true": ["sendInitialEvents requires setting resourceVersionMatch"],
        "/pods?watch=true&resourceVersionMatch=NotOlderThan":
            ["resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"],
        "/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=Exact":
            ["sendInitialEvents requires setting", 'Unsupported value: \\"Exact\\"'],
    }
    for path, words in cases.items():
        reply = await network.call("GET", NS + path, as_="alice")
        _status(reply, 422, "ListOptions.meta.k8s.io", *words)
    ok = await network.call("GET", NS + "/pods?resourceVersion=0&resourceVersionMatch=NotOlderThan", as_="alice")
    assert ok.status == 200, ok.body


async def test_get_at_a_resource_version_not_reached_is_504_and_a_bad_one_400(network: Network) -> None:
    """A GET's resourceVersion means "not older than": one the server has not reached waits, then 504."""
    started = time.monotonic()
    _status(await network.call("GET", NS + "/configmaps/keep?resourceVersion=999999999999", as_="alice"), 504,
            "Too large resource version")
    assert time.monotonic() - started < 10
    _status(await network.call("GET", NS + "/configmaps/keep?resourceVersion=abc", as_="alice"), 400, "resourceVersion")
    current = await network.call("GET", NS + "/configmaps/keep", as_="alice")
    rv = current.body["metadata"]["resourceVersion"]
    for value in (rv, "0", ""):
        reply = await network.call("GET", NS + f"/configmaps/keep?resourceVersion={value}", as_="alice")
        assert reply.status == 200 and reply.body["metadata"]["name"] == "keep", reply.body


async def test_overlong_field_manager_is_422(network: Network) -> None:
    reply = await network.call("POST", NS + "/configmaps?fieldManager=" + "m" * 200, as_="alice",
                               body={"metadata": {"name": "fm"}})
    _status(reply, 422, "fieldManager")
