"""The built-in kinds' schemas are compiled when the API server starts, not at their first write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atoll.api import builtin_validation, kinds
from atoll.api.builtins import BUILTINS
from atoll.apiserver.admission.builtin_schema import BuiltinSchemaAdmission


@pytest.fixture
def fresh_schemas() -> Iterator[None]:
    """No schema compiled yet (as in a fresh process); the caches are rebuilt lazily afterwards."""
    builtin_validation._roots.clear()
    builtin_validation._compiled.clear()
    yield
    builtin_validation._roots.clear()
    builtin_validation._compiled.clear()


@pytest.mark.usefixtures("fresh_schemas")
def test_the_admission_plugin_compiles_the_schemas_of_its_kinds() -> None:
    BuiltinSchemaAdmission(BUILTINS)
    for rd in (kinds.PODS, kinds.EVENTS, kinds.CONFIGMAPS):
        assert builtin_validation._roots.get((rd.group, rd.version, rd.kind)) is not None, rd.kind


@pytest.mark.usefixtures("fresh_schemas")
def test_precompiled_schemas_check_as_lazily_compiled_ones() -> None:
    def pod() -> dict[str, object]:  # a new one per check: unknown fields are pruned from it
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"nodeName": 7, "containers": [{"name": "c", "image": "i", "bogus": 1}]},
        }

    lazily = builtin_validation.check(pod(), "", "v1", "Pod")
    builtin_validation._roots.clear()
    builtin_validation._compiled.clear()
    BuiltinSchemaAdmission([kinds.PODS])
    assert builtin_validation.check(pod(), "", "v1", "Pod") == lazily
    assert lazily[0] == ["spec.containers[0].bogus"] and [c["field"] for c in lazily[1]] == ["spec.nodeName"]
