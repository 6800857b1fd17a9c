"""What a plain pod update may change (kube-apiserver's ``ValidatePodUpdate``): images,
``activeDeadlineSeconds`` (set or lowered), added tolerations, removed scheduling gates; anything
else in ``spec`` — ``nodeName`` above all, which only the binding subresource sets — is a 422
naming the fields, and the stored pod is unchanged. An update that leaves out the spec's defaults
means them (as upstream decodes it with defaults)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.kube_http import Api, assert_status, create, pod

pytestmark = pytest.mark.controllers()  # API server semantics only

PODS = "/api/v1/namespaces/default/pods"
JSON = dict[str, Any]


async def put_spec(api: Api, name: str, **changes: Any) -> Any:
    current = (await api.get(f"{PODS}/{name}")).json
    return await api.put(f"{PODS}/{name}", {**current, "spec": {**current["spec"], **changes}})


@pytest.mark.parametrize(("field", "value"), [
    ("nodeName", "other-node"),
    ("restartPolicy", "Never"),
    ("containers", [{"name": "main", "image": "busybox:1", "command": ["sh", "-c", "evil"]}]),
    ("activeDeadlineSeconds", None),  # set below first, then removed
])
async def test_a_change_upstream_forbids_is_a_422_naming_the_field(api: Api, field: str, value: Any) -> None:
    name = f"fixed-{field.lower()}"
    await create(api, PODS, {**pod(name, node="n1"), "spec": {**pod(name, node="n1")["spec"],
                                                               "activeDeadlineSeconds": 60}})
    before = (await api.get(f"{PODS}/{name}")).json
    reply = await put_spec(api, name, **{field: value})
    status = assert_status(reply, 422, "Invalid")
    assert "pod updates may not change fields other than" in status["message"]
    assert f"spec.{field}" in status["message"]
    assert status["details"]["causes"][0]["field"] == "spec"
    after = (await api.get(f"{PODS}/{name}")).json
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_the_changes_upstream_allows_are_stored(api: Api) -> None:
    spec = {**pod("open", node="n1")["spec"], "activeDeadlineSeconds": 60,
            "tolerations": [{"key": "a", "operator": "Exists"}]}
    await create(api, PODS, {**pod("open"), "spec": spec})
    changed = {"containers": [{**(await api.get(f"{PODS}/open")).json["spec"]["containers"][0], "image": "busybox:2"}],
               "activeDeadlineSeconds": 30,
               "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]}
    reply = await put_spec(api, "open", **changed)
    assert reply.status == 200, reply.json
    stored = (await api.get(f"{PODS}/open")).json["spec"]
    assert stored["containers"][0]["image"] == "busybox:2"
    assert stored["activeDeadlineSeconds"] == 30 and len(stored["tolerations"]) == 2
    assert_status(await put_spec(api, "open", activeDeadlineSeconds=90), 422, "Invalid")  # raised
    assert_status(await put_spec(api, "open", tolerations=[]), 422, "Invalid")  # removed


async def test_an_update_without_the_defaults_means_them(api: Api) -> None:
    await create(api, PODS, pod("bare", node="n1"))
    current = (await api.get(f"{PODS}/bare")).json
    labelled = {**current["metadata"], "labels": {"x": "y"}}
    bare = {**current, "metadata": labelled, "spec": pod("bare", node="n1")["spec"]}
    reply = await api.put(f"{PODS}/bare", bare)
    assert reply.status == 200, reply.json
    assert reply.json["spec"] == current["spec"] and reply.json["metadata"]["labels"] == {"x": "y"}
