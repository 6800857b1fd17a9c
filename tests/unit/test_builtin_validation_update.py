"""Built-in schema checks on update walk only what changed; depth checks are bounded cheaply."""

from __future__ import annotations

import copy
from typing import Any

from atoll.api.builtin_validation import check
from atoll.apiserver.admission.limits import MAX_DEPTH, depth_exceeds

JSON = dict[str, Any]


def _pod() -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Pending"}}


def test_a_changed_subtree_is_checked_and_an_unchanged_one_is_not() -> None:
    stored = _pod()
    stored["spec"]["nodeName"] = {"not": "a string"}  # as if stored before the check existed
    new = copy.deepcopy(stored)
    new["status"] = {"phase": "Running", "podIP": 7}
    unknown, causes = check(new, "", "v1", "Pod", old=stored)
    assert unknown == []
    assert [c["field"] for c in causes] == ["status.podIP"]  # spec equals the stored spec: not walked
    _, causes = check(new, "", "v1", "Pod")
    assert sorted(c["field"] for c in causes) == ["spec.nodeName", "status.podIP"]


def test_unknown_fields_in_a_changed_subtree_are_found_and_pruned() -> None:
    stored = _pod()
    new = copy.deepcopy(stored)
    new["spec"]["containers"][0]["bogus"] = 1
    new["spec"]["extra"] = True
    unknown, causes = check(new, "", "v1", "Pod", old=stored)
    assert sorted(unknown) == ["spec.containers[0].bogus", "spec.extra"]
    assert causes == []
    assert "bogus" not in new["spec"]["containers"][0] and "extra" not in new["spec"]


def _nested(levels: int) -> JSON:
    root: JSON = {}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


def test_depth_walk_skips_subtrees_equal_to_the_stored_object_but_finds_new_depth() -> None:
    deep = _nested(MAX_DEPTH + 5)
    assert depth_exceeds(deep, MAX_DEPTH)
    assert not depth_exceeds(deep, MAX_DEPTH, old=copy.deepcopy(deep))  # unchanged: accepted when stored
    grown = {"a": _nested(MAX_DEPTH + 5), "b": {}}
    assert depth_exceeds(grown, MAX_DEPTH, old={"a": {}, "b": {}})


def test_date_times_seen_valid_are_remembered_within_a_bound() -> None:
    from atoll.api import builtin_validation as bv

    bv._VALID_TIMES.clear()
    pod = _pod()
    pod["status"]["startTime"] = "2026-01-01T00:00:00Z"
    assert check(pod, "", "v1", "Pod") == ([], [])
    assert "2026-01-01T00:00:00Z" in bv._VALID_TIMES
    assert check(pod, "", "v1", "Pod") == ([], [])  # remembered: accepted the same
    pod["status"]["startTime"] = "2026-01-01 00:00"
    assert [c["field"] for c in check(pod, "", "v1", "Pod")[1]] == ["status.startTime"]
    assert "2026-01-01 00:00" not in bv._VALID_TIMES
    for second in range(bv._VALID_TIMES_MAX + 5):
        pod["status"]["startTime"] = f"2026-01-01T00:{second // 60 % 60:02d}:{second % 60:02d}.{second}Z"
        assert check(pod, "", "v1", "Pod") == ([], [])
    assert len(bv._VALID_TIMES) <= bv._VALID_TIMES_MAX
