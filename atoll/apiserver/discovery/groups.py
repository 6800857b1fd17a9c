"""API discovery: aggregated v2 (what kubectl 1.32 asks for) and the legacy documents.

Documents are built from the registry and cached until the registry changes (a CRD is created or
removed), so discovery costs one dictionary lookup per request.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api.registry import Registry, ResourceDef
from atoll.apiserver.registry.strategies import Strategies
from atoll.apiserver.registry.subresources import SAME_KIND

JSON = dict[str, Any]

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"



def _gvk(rd: ResourceDef) -> JSON:
    return {"group": rd.group, "version": rd.version, "kind": rd.kind}


def _subresource(strategies: Strategies, rd: ResourceDef, sub: str) -> tuple[list[str], JSON | None]:
    """A subresource's verbs and response kind (None for streams), as its handler declares them."""
    handler = strategies.for_resource(rd).subresource(sub)
    if handler is None:
        return ["get"], _gvk(rd)
    kind = handler.response_kind
    if kind is None:
        return list(handler.verbs), None
    if kind == SAME_KIND:
        return list(handler.verbs), _gvk(rd)
    return list(handler.verbs), {"group": kind[0], "version": kind[1], "kind": kind[2]}


def _aggregated_resource(strategies: Strategies, rd: ResourceDef) -> JSON:
    res: JSON = {
        "resource": rd.plural,
        "responseKind": _gvk(rd),
        "scope": "Namespaced" if rd.namespaced else "Cluster",
        "singularResource": rd.singular,
        "verbs": sorted(rd.verbs),
    }
    if rd.short_names:
        res["shortNames"] = list(rd.short_names)
    if rd.categories:
        res["categories"] = list(rd.categories)
    subs = []
    for sub in rd.subresources:
        verbs, response_kind = _subresource(strategies, rd, sub)
        entry: JSON = {"subresource": sub, "verbs": verbs}
        if response_kind is not None:
            entry["responseKind"] = response_kind
        subs.append(entry)
    if subs:
        res["subresources"] = subs
    return res


class Discovery:
    def __init__(self, registry: Registry, strategies: Strategies) -> None:
        self._registry = registry
        self._strategies = strategies
        self._cache: dict[str, bytes] = {}
        self._generation = -1

    def _cached(self, key: str, build: Any) -> bytes:
        if self._generation != self._registry.generation:
            self._cache.clear()
            self._generation = self._registry.generation
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = orjson.dumps(build())
        return value

    def _group_items(self, core: bool) -> list[JSON]:
        items = []
        for group, versions in sorted(self._registry.groups().items()):
            if (group == "") != core:
                continue
            items.append(
                {
                    "metadata": {"name": group, "creationTimestamp": None},
                    "versions": [
                        {
                            "version": v,
                            "freshness": "Current",
                            "resources": [
                                _aggregated_resource(self._strategies, rd)
                                for rd in sorted(self._registry.in_group_version(group, v), key=lambda r: r.plural)
                            ],
                        }
                        for v in versions
                    ],
                }
            )
        return items

    def aggregated(self, core: bool, version: str = "v2") -> bytes:
        api_version = f"apidiscovery.k8s.io/{version}"
        return self._cached(
            f"agg:{core}:{version}",
            lambda: {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": api_version,
                "metadata": {},
                "items": self._group_items(core),
            },
        )

    def api_versions(self, server_address: str) -> bytes:
        return self._cached(
            "api",
            lambda: {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
            },
        )

    def _api_group(self, group: str, versions: list[str]) -> JSON:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def api_group_list(self) -> bytes:
        return self._cached(
            "apis",
            lambda: {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._api_group(g, vs) for g, vs in sorted(self._registry.groups().items()) if g],
            },
        )

    def api_group(self, group: str) -> bytes | None:
        versions = self._registry.groups().get(group)
        if not versions or not group:
            return None
        return self._cached(
            f"group:{group}", lambda: {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(group, versions)}
        )

    def resource_list(self, group: str, version: str) -> bytes | None:
        rds = self._registry.in_group_version(group, version)
        if not rds:
            return None

        def build() -> JSON:
            resources: list[JSON] = []
            for rd in sorted(rds, key=lambda r: r.plural):
                entry: JSON = {
                    "name": rd.plural,
                    "singularName": rd.singular,
                    "namespaced": rd.namespaced,
                    "kind": rd.kind,
                    "verbs": sorted(rd.verbs),
                }
                if rd.short_names:
                    entry["shortNames"] = list(rd.short_names)
                if rd.categories:
                    entry["categories"] = list(rd.categories)
                resources.append(entry)
                for sub in rd.subresources:
                    verbs, response_kind = _subresource(self._strategies, rd, sub)
                    sub_entry: JSON = {"name": f"{rd.plural}/{sub}", "singularName": "",
                                       "namespaced": rd.namespaced}
                    if response_kind is not None and (response_kind["group"], response_kind["version"]) != (
                            rd.group, rd.version):  # pods/eviction is policy/v1, deployments/scale autoscaling/v1
                        sub_entry["group"], sub_entry["version"] = response_kind["group"], response_kind["version"]
                    sub_entry["kind"] = (response_kind or _gvk(rd))["kind"]
                    sub_entry["verbs"] = verbs
                    resources.append(sub_entry)
            gv = f"{group}/{version}" if group else version
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

        return self._cached(f"res:{group}/{version}", build)
