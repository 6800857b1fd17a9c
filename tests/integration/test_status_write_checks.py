"""The update path's shortcuts (schema check of what changed only, memoised date-times, size and
depth bounded from the stored size, the writer's managedFields entry kept when nothing new is owned)
refuse exactly what the whole-object checks refuse, with the same Status: a status write through
``pods/status`` and a PUT of the main resource, on a real in-process server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.apiserver.admission.limits import MAX_DEPTH, MAX_OBJECT_BYTES
from atoll.apiserver.app import APIServer
from atoll.apiserver.registry.storage import WriteOptions
from tests.integration.inprocess import in_process_server

JSON = dict[str, Any]
PODS = next(r for r in BUILTINS if r.plural == "pods" and r.group == "")
CONDITIONS = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:01Z"}
              for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]


def _opts(manager: str = "agent") -> WriteOptions:
    return WriteOptions(field_manager=manager, field_validation="Strict", owned=True)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    async with in_process_server(tmp_path) as srv:
        await srv.objects.create(PODS, "ns", {"metadata": {"name": "p"}, "spec": {
            "nodeName": "n", "containers": [{"name": "main", "image": "i:1"}]}}, _opts("creator"))
        await _status(srv, {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "conditions": CONDITIONS})
        yield srv


async def _status(srv: APIServer, status: JSON) -> JSON:
    body = {"metadata": {"name": "p", "namespace": "ns"}, "status": status}
    return await srv.objects.update(PODS, "ns", "p", body, _opts(), subresource="status")


async def _refusal(srv: APIServer, status: JSON | None = None, spec: JSON | None = None) -> JSON:
    """The Status a status write (or, with ``spec``, a PUT of the pod) is refused with."""
    stored = srv.objects.get(PODS, "ns", "p").obj
    with pytest.raises(errors.APIError) as caught:
        if spec is None:
            await _status(srv, status or {})
        else:
            await srv.objects.update(PODS, "ns", "p", {**stored, "spec": spec}, _opts("kubectl"))
    assert srv.objects.get(PODS, "ns", "p").obj is stored  # nothing written
    return caught.value.status()


def _invalid(causes: list[JSON]) -> JSON:
    message = 'Pod "p" is invalid: ' + ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Invalid", "details": {"name": "p", "group": "", "kind": "Pod", "causes": causes}, "code": 422}


def _changed_condition(**item: Any) -> list[JSON]:
    conditions = [dict(c) for c in CONDITIONS]
    conditions[1].update(item)
    return conditions


async def test_a_wrong_type_in_a_changed_condition_is_refused(server: APIServer) -> None:
    status = {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "conditions": _changed_condition(status=True)}
    assert await _refusal(server, status) == _invalid([{
        "reason": "FieldValueTypeInvalid", "field": "status.conditions[1].status",
        "message": 'Invalid value: "boolean": status.conditions[1].status in body must be of type string'}])


async def test_a_bad_date_time_is_refused_after_the_same_field_was_valid(server: APIServer) -> None:
    status = {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
              "conditions": _changed_condition(lastTransitionTime="yesterday")}
    assert await _refusal(server, status) == _invalid([{
        "reason": "FieldValueInvalid", "field": "status.conditions[1].lastTransitionTime",
        "message": 'Invalid value: "yesterday": must be an RFC 3339 date-time'}])
    status = {"phase": "Succeeded", "startTime": "2026-01-01T00:00:00", "conditions": CONDITIONS}
    assert await _refusal(server, status) == _invalid([{
        "reason": "FieldValueInvalid", "field": "status.startTime",
        "message": 'Invalid value: "2026-01-01T00:00:00": must be an RFC 3339 date-time'}])


async def test_an_unknown_status_field_is_refused_in_strict_mode(server: APIServer) -> None:
    status = {"phase": "Succeeded", "startTime": "2026-01-01T00:00:00Z", "conditions": CONDITIONS, "bogus": 1}
    refused = await _refusal(server, status)
    assert refused["code"] == 400
    assert refused["message"] == 'strict decoding error: unknown field "status.bogus"'


async def test_a_status_write_past_the_limits_is_refused(server: APIServer) -> None:
    status = {"phase": "Running", "message": "x" * MAX_OBJECT_BYTES}
    refused = await _refusal(server, status)
    assert refused["code"] == 413
    assert refused["message"].startswith("Request entity too large: the Pod would be ")
    assert refused["message"].endswith(f" bytes; the limit is {MAX_OBJECT_BYTES} bytes")
    deep: JSON = {}
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node["x"] = {}
        node = node["x"]
    assert await _refusal(server, {"phase": "Running", "deep": deep}) == _invalid([{
        "reason": "FieldValueInvalid", "field": "<object>",
        "message": f"Invalid value: the object is nested more than {MAX_DEPTH} levels deep"}])


async def test_an_invalid_spec_change_through_put_is_refused(server: APIServer) -> None:
    stored = server.objects.get(PODS, "ns", "p").obj
    spec = {**stored["spec"], "nodeName": {"a": 1}}
    assert await _refusal(server, spec=spec) == _invalid([{
        "reason": "FieldValueTypeInvalid", "field": "spec.nodeName",
        "message": 'Invalid value: "object": spec.nodeName in body must be of type string'}])
    containers = [{**stored["spec"]["containers"][0], "ports": [{"containerPort": "80"}]}]
    assert await _refusal(server, spec={**stored["spec"], "containers": containers}) == _invalid([{
        "reason": "FieldValueTypeInvalid", "field": "spec.containers[0].ports[0].containerPort",
        "message": 'Invalid value: "string": spec.containers[0].ports[0].containerPort in body must be of type '
                   "integer"}])


async def test_valid_status_writes_still_record_their_fields(server: APIServer) -> None:
    done = await _status(server, {"phase": "Succeeded", "startTime": "2026-01-01T00:00:00Z",
                                  "conditions": _changed_condition(status="False")})
    again = await _status(server, {"phase": "Failed", "startTime": "2026-01-01T00:00:00Z",
                                   "conditions": _changed_condition(status="True")})
    assert done["status"]["phase"] == "Succeeded" and again["status"]["phase"] == "Failed"
    entries = {e["manager"]: e for e in again["metadata"]["managedFields"]}
    mine = {e["manager"]: e for e in done["metadata"]["managedFields"]}["agent"]
    assert entries["agent"]["fieldsV1"] is mine["fieldsV1"]  # owned already: kept as stored
    assert entries["agent"]["time"] >= mine["time"]
    assert set(entries["agent"]["fieldsV1"]["f:status"]) == {"f:phase", "f:startTime", "f:conditions"}
