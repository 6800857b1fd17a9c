"""The scheduler's DomainIsolation filter: a domain's pods never fit another domain's nodes."""

from __future__ import annotations

from atoll.scheduler.framework import Code, CycleState
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.plugins import DomainIsolation, default_plugins


def _node(name: str, domain: str | None) -> NodeInfo:
    labels = {"kuscia.secretflow/namespace": domain} if domain else {}
    return NodeInfo({"metadata": {"name": name, "labels": labels}})


def _pod(namespace: str) -> dict[str, object]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": {}}


DOMAINS = {"alice": "alice", "bob": "bob"}


def test_domain_pods_fit_only_their_own_and_shared_nodes() -> None:
    plugin = DomainIsolation(DOMAINS.get)
    state = CycleState()
    assert plugin.filter(state, _pod("alice"), _node("a", "alice")).ok
    assert plugin.filter(state, _pod("alice"), _node("s", None)).ok
    refused = plugin.filter(state, _pod("alice"), _node("b", "bob"))
    assert refused.code is Code.UNRESOLVABLE and "another domain" in refused.message


def test_pods_of_non_domain_namespaces_fit_any_node() -> None:
    plugin = DomainIsolation(DOMAINS.get)
    assert plugin.filter(CycleState(), _pod("default"), _node("b", "bob")).ok


def test_default_plugins_filter_domains_first() -> None:
    assert isinstance(default_plugins(DOMAINS.get)[0], DomainIsolation)
