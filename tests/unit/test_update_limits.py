"""ObjectLimits on an update bounds size and depth from the stored size and the changed top-level
values only, and answers exactly what the whole-object check answers (same status, same message)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.apiserver.admission import limits
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.admission.limits import MAX_DEPTH, MAX_OBJECT_BYTES, ObjectLimits

JSON = dict[str, Any]
CM = next(r for r in BUILTINS if r.plural == "configmaps" and r.group == "")
PODS = next(r for r in BUILTINS if r.plural == "pods" and r.group == "")


def _nested(levels: int) -> JSON:
    root: JSON = {}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


async def _outcome(obj: JSON, old: JSON, *, known_size: bool) -> tuple[int, JSON]:
    """(code, Status) of ObjectLimits on ``obj`` replacing ``old`` ((0, {}) when accepted)."""
    size = len(orjson.dumps(old)) if known_size else 0
    attrs = Attributes("UPDATE", CM, "ns", "c", obj, old, old_size=size)
    try:
        await ObjectLimits().admit(attrs)
    except errors.APIError as exc:
        return exc.code, exc.status()
    return 0, {}


def _cm(**data: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "5"}, "data": data}


def _status_write(stored: JSON, status: JSON) -> JSON:
    """What a ``status`` subresource write admits: the stored object, metadata copied, new status."""
    new = dict(stored)
    new["metadata"] = dict(stored["metadata"])
    new["status"] = status
    return new


CASES = {
    "status write": (
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "resourceVersion": "5"},
         "spec": {"containers": [{"name": "a", "image": "b"}]}, "status": {"phase": "Pending"}},
        lambda stored: _status_write(stored, {"phase": "Running", "conditions": [{"type": "Ready"}]}),
        0,
    ),
    "grows past the size limit": (
        _cm(a="x" * 2_000_000),
        lambda stored: {**stored, "data": {"a": "x" * 2_000_000, "b": "x" * 2_000_000}},
        413,
    ),
    "replaced by as much (the bound exceeds, the object does not)": (
        _cm(a="x" * 2_000_000),
        lambda stored: {**stored, "data": {"a": "y" * 2_000_000}},
        0,
    ),
    "a new member nests too deep": (
        _cm(a="b"),
        lambda stored: {**stored, "extra": _nested(MAX_DEPTH + 5)},
        422,
    ),
    "a changed member nests deep but within the limit": (
        _cm(a="b"),
        lambda stored: {**stored, "extra": _nested(MAX_DEPTH - 2)},
        0,
    ),
    "deep, but as stored": (
        {**_cm(a="b"), "extra": _nested(MAX_DEPTH + 5)},
        lambda stored: {**stored, "data": {"a": "c"}},
        0,
    ),
    "cannot be encoded": (
        _cm(a="b"),
        lambda stored: {**stored, "data": {"a": {1, 2}}},
        400,
    ),
    "a key that is not a string": (
        _cm(a="b"),
        lambda stored: {**stored, 7: "x"},
        400,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_update_bound_answers_as_the_whole_object_check(case: str) -> None:
    stored, change, code = CASES[case]
    whole = await _outcome(change(stored), copy.deepcopy(stored), known_size=False)
    bounded = await _outcome(change(stored), stored, known_size=True)
    assert whole[0] == code, whole
    assert bounded == whole


def test_a_status_write_encodes_only_the_status() -> None:
    stored, change, _ = CASES["status write"]
    new = change(stored)
    assert limits._update_within_limits(new, stored, len(orjson.dumps(stored)))
    grown = {**new, "spec": {"containers": [{"name": "a", "image": "b" * MAX_OBJECT_BYTES}]}}
    assert not limits._update_within_limits(grown, stored, len(orjson.dumps(stored)))
