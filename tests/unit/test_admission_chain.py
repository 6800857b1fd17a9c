"""The admission chain calls a plugin only for resources its ``applies_to`` accepts (all when it
has none), in registration order, and re-decides when a plugin is added."""

from __future__ import annotations

from atoll.api.builtins import BUILTINS
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import AdmissionChain, Attributes

CONFIGMAPS = next(rd for rd in BUILTINS if rd.group == "" and rd.plural == "configmaps")
PODS = next(rd for rd in BUILTINS if rd.group == "" and rd.plural == "pods")


class Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    async def admit(self, attrs: Attributes) -> None:
        self.calls.append(f"{self.name}:{attrs.rd.plural}")


class PodsOnly(Recorder):
    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return rd.plural == "pods"


def _attrs(rd: ResourceDef) -> Attributes:
    return Attributes("CREATE", rd, "ns", "x", {"metadata": {"name": "x"}}, None)


async def test_plugins_run_only_for_resources_they_apply_to() -> None:
    calls: list[str] = []
    chain = AdmissionChain()
    chain.add(Recorder("all", calls))
    chain.add(PodsOnly("pods", calls))
    await chain.admit(_attrs(CONFIGMAPS))
    await chain.admit(_attrs(PODS))
    await chain.admit(_attrs(CONFIGMAPS))
    assert calls == ["all:configmaps", "all:pods", "pods:pods", "all:configmaps"]
    chain.add(Recorder("late", calls))  # added after the per-resource lists were built
    calls.clear()
    await chain.admit(_attrs(CONFIGMAPS))
    assert calls == ["all:configmaps", "late:configmaps"]


class CreatesOnly(Recorder):
    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return operation == "CREATE" and not subresource


async def test_plugins_run_only_for_requests_they_handle() -> None:
    calls: list[str] = []
    chain = AdmissionChain()
    chain.add(Recorder("all", calls))
    chain.add(CreatesOnly("creates", calls))
    status = Attributes("UPDATE", PODS, "ns", "x", {"metadata": {"name": "x"}}, None, subresource="status")
    await chain.admit(status)
    await chain.admit(_attrs(PODS))
    await chain.admit(Attributes("DELETE", PODS, "ns", "x", None, {"metadata": {"name": "x"}}))
    assert calls == ["all:pods", "all:pods", "creates:pods", "all:pods"]


async def test_a_crd_recreated_with_another_scope_gets_the_namespace_check() -> None:
    """Same group, plural and kind, once cluster-scoped, then namespaced: NamespaceLifecycle (which
    handles only namespaced creates) must run for the second."""
    import dataclasses

    from atoll.api import errors
    from atoll.apiserver.admission.chain import NamespaceLifecycle

    def missing(_namespace: str) -> dict[str, object] | None:
        return None  # no such namespace

    chain = AdmissionChain()
    chain.add(NamespaceLifecycle(missing))
    widgets = ResourceDef("example.com", "v1", "Widget", "widgets", "widget", False, builtin=False)
    await chain.admit(Attributes("CREATE", widgets, None, "w", {"metadata": {"name": "w"}}, None))
    namespaced = dataclasses.replace(widgets, namespaced=True)
    try:
        await chain.admit(Attributes("CREATE", namespaced, "gone", "w", {"metadata": {"name": "w"}}, None))
    except errors.APIError:
        return
    raise AssertionError("a create in a missing namespace was admitted")
