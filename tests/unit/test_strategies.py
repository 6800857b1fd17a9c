"""Per-kind behaviour comes from the strategy registered for the kind: defaults, name rules,
deletion, and subresources that discovery advertises without knowing the kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.api.registry import Registry, ResourceDef
from atoll.apiserver.discovery.groups import Discovery
from atoll.apiserver.registry.strategies import CustomResourceStrategy, KindStrategy, Strategies, builtin_strategies
from atoll.apiserver.registry.subresources import Reply, StatusReply, SubresourceCall

RD = {rd.kind: rd for rd in BUILTINS}
STRATEGIES = builtin_strategies(None)  # type: ignore[arg-type]
WIDGETS = ResourceDef("example.io", "v1", "Widget", "widgets", "widget", True, subresources=("status", "spin"))


@dataclass(frozen=True, slots=True)
class Spin:
    verbs: tuple[str, ...] = ("create",)
    response_kind: tuple[str, str, str] | None = ("example.io", "v1", "Spin")
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: Any, call: SubresourceCall) -> Reply:
        return StatusReply({"spun": call.name}, 201)


@dataclass(frozen=True)
class WidgetStrategy(KindStrategy):
    def defaults_on_create(self, rd: ResourceDef, obj: dict[str, Any]) -> None:
        obj.setdefault("spec", {}).setdefault("speed", 1)


def test_a_new_kind_is_one_registered_strategy() -> None:
    strategies = Strategies()
    strategies.register("example.io", "Widget", WidgetStrategy(subresources={"spin": Spin()}))
    strategy = strategies.for_resource(WIDGETS)
    widget: dict[str, Any] = {"metadata": {"name": "w"}}
    strategy.prepare_create(WIDGETS, widget)
    assert widget["spec"] == {"speed": 1}
    registry = Registry()
    registry.register(WIDGETS)
    doc = orjson.loads(Discovery(registry, strategies).aggregated(core=False))
    resource = doc["items"][0]["versions"][0]["resources"][0]
    subs = {s["subresource"]: s for s in resource["subresources"]}
    assert subs["spin"] == {"subresource": "spin", "verbs": ["create"],
                            "responseKind": {"group": "example.io", "version": "v1", "kind": "Spin"}}
    assert subs["status"]["verbs"] == ["get", "patch", "update"]


def test_builtin_rules_come_from_their_strategies() -> None:
    assert STRATEGIES.for_resource(RD["Namespace"]).name_problems("a.b")  # a DNS label
    assert not STRATEGIES.for_resource(RD["ConfigMap"]).name_problems("a.b")  # a DNS subdomain
    assert not STRATEGIES.for_resource(RD["ClusterRole"]).name_problems("system:basic-user")  # a path segment
    assert STRATEGIES.for_resource(RD["Pod"]).returns_deleted_object
    assert not STRATEGIES.for_resource(RD["ConfigMap"]).returns_deleted_object
    namespace = {"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}}
    assert STRATEGIES.for_resource(RD["Namespace"]).deletion_held(namespace)
    assert not STRATEGIES.for_resource(RD["ConfigMap"]).deletion_held(namespace)


def test_pod_grace_and_custom_resources() -> None:
    pods = STRATEGIES.for_resource(RD["Pod"])
    running = {"metadata": {"name": "p"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 7}}
    assert pods.deletion_grace(running, {}) == 7
    assert pods.deletion_grace(running, {"gracePeriodSeconds": 2}) == 2
    assert pods.deletion_grace({"metadata": {}, "spec": {}}, {}) == 0
    with pytest.raises(errors.BadRequest):
        pods.deletion_grace(running, {"gracePeriodSeconds": "soon"})
    custom = ResourceDef("x.io", "v1", "Thing", "things", "thing", True, subresources=("status",), builtin=False)
    assert isinstance(STRATEGIES.for_resource(custom), CustomResourceStrategy)
    thing = {"metadata": {"name": "t"}, "status": {"ready": True}}
    STRATEGIES.for_resource(custom).prepare_create(custom, thing)
    assert "status" not in thing  # only through /status
