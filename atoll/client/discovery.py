"""Legacy discovery (``/api/v1``, ``/apis/<group>/<version>``) → :class:`ResourceDef`, cached.

Callers that hold objects read from YAML know only ``apiVersion`` and ``kind``; the REST path
needs the plural and the scope. One ``APIResourceList`` per group-version is fetched once and
cached; a kind missing from a cached document triggers exactly one refetch (a CRD may have been
installed since), so a cache never makes a new kind invisible. The legacy documents are used, not
aggregated discovery v2, because every Kubernetes version and Atoll's server serve them.

``preferred_resources`` (the garbage collector every 30 s, the namespace controller per deletion)
asks for aggregated discovery v2 first, as client-go does: two requests (``/api``, ``/apis``)
instead of two plus one per group-version (19 on a master); a server that answers the legacy
documents instead (Kubernetes < 1.30 without the beta) gets the legacy walk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from atoll.api.errors import NotFound, ServiceUnavailable
from atoll.api.registry import ResourceDef

JSON = dict[str, Any]
AGGREGATED_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` → ``("apps", "v1")``; ``"v1"`` → ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def group_version_path(api_version: str) -> str:
    group, version = split_api_version(api_version)
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def resource_defs(document: JSON) -> list[ResourceDef]:
    """The top-level resources of one ``APIResourceList``, with their subresources folded in."""
    group, version = split_api_version(str(document.get("groupVersion") or "v1"))
    entries: list[JSON] = list(document.get("resources") or ())
    subresources: dict[str, list[str]] = {}
    for entry in entries:
        parent, slash, sub = str(entry.get("name", "")).partition("/")
        if slash:
            subresources.setdefault(parent, []).append(sub)
    out = []
    for entry in entries:
        name = str(entry.get("name", ""))
        if not name or "/" in name:
            continue
        out.append(
            ResourceDef(
                group=str(entry.get("group") or group),
                version=str(entry.get("version") or version),
                kind=str(entry["kind"]),
                plural=name,
                singular=str(entry.get("singularName") or str(entry["kind"]).lower()),
                namespaced=bool(entry.get("namespaced")),
                short_names=tuple(entry.get("shortNames") or ()),
                categories=tuple(entry.get("categories") or ()),
                verbs=tuple(entry.get("verbs") or ()),
                subresources=tuple(subresources.get(name, ())),
                builtin=False,
            )
        )
    return out


def aggregated_resource_defs(group: str, version: str, entries: Any) -> list[ResourceDef]:
    """The resources of one version of an aggregated ``APIGroupDiscovery`` item, as
    :func:`resource_defs` reads them from the legacy ``APIResourceList``."""
    out = []
    for entry in entries or ():
        kind = str((entry.get("responseKind") or {}).get("kind") or "")
        name = str(entry.get("resource") or "")
        if not kind or not name:
            continue
        out.append(
            ResourceDef(
                group=group,
                version=version,
                kind=kind,
                plural=name,
                singular=str(entry.get("singularResource") or kind.lower()),
                namespaced=entry.get("scope") == "Namespaced",
                short_names=tuple(entry.get("shortNames") or ()),
                categories=tuple(entry.get("categories") or ()),
                verbs=tuple(entry.get("verbs") or ()),
                subresources=tuple(str(sub.get("subresource")) for sub in entry.get("subresources") or ()),
                builtin=False,
            )
        )
    return out


class Discovery:
    """A per-client cache of group-version resource lists."""

    def __init__(
        self, fetch: Callable[[str], Awaitable[JSON]], aggregated: Callable[[str], Awaitable[JSON]] | None = None
    ) -> None:
        """``fetch`` GETs a path; ``aggregated`` GETs it with :data:`AGGREGATED_ACCEPT`."""
        self._fetch = fetch
        self._aggregated = aggregated
        self._by_gv: dict[str, dict[str, ResourceDef]] = {}

    async def resources(self, api_version: str, *, refresh: bool = False) -> dict[str, ResourceDef]:
        """Kind → ResourceDef for one group-version."""
        cached = self._by_gv.get(api_version)
        if cached is not None and not refresh:
            return cached
        document = await self._fetch(group_version_path(api_version))
        kinds = {rd.kind: rd for rd in resource_defs(document)}
        self._by_gv[api_version] = kinds
        return kinds

    async def resource(self, api_version: str, kind: str) -> ResourceDef:
        kinds = await self.resources(api_version)
        if kind not in kinds:
            kinds = await self.resources(api_version, refresh=True)
        try:
            return kinds[kind]
        except KeyError:
            raise NotFound(f'the server doesn\'t have a resource type "{kind}" in "{api_version}"') from None

    async def preferred_resources(self) -> tuple[list[ResourceDef], dict[str, Exception]]:
        """Every top-level resource of the server's preferred group-versions (``kubectl
        api-resources``), fetched afresh. Group-versions that fail are returned as errors next to
        the rest instead of failing the whole call, like client-go's ``ErrGroupDiscoveryFailed``:
        the namespace controller and the garbage collector still work on what they can see."""
        if self._aggregated is not None:
            found = await self._preferred_aggregated(self._aggregated)
            if found is not None:
                return found
        group_versions = [str(v) for v in (await self._fetch("/api")).get("versions") or ()]
        for group in (await self._fetch("/apis")).get("groups") or ():
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            versions = group.get("versions") or ()
            if not preferred and versions:
                preferred = versions[0].get("groupVersion")
            if preferred:
                group_versions.append(str(preferred))
        out: list[ResourceDef] = []
        failed: dict[str, Exception] = {}
        for gv in group_versions:
            try:
                out.extend((await self.resources(gv, refresh=True)).values())
            except Exception as exc:  # reported to the caller per group-version
                failed[gv] = exc
        return out, failed

    async def _preferred_aggregated(
        self, fetch: Callable[[str], Awaitable[JSON]]
    ) -> tuple[list[ResourceDef], dict[str, Exception]] | None:
        """From aggregated discovery v2 (the first version of each group is its preferred one; a
        ``Stale`` one failed); None when the server answered the legacy documents."""
        out: list[ResourceDef] = []
        failed: dict[str, Exception] = {}
        found: dict[str, dict[str, ResourceDef]] = {}
        for path in ("/api", "/apis"):
            document = await fetch(path)
            if document.get("kind") != "APIGroupDiscoveryList":
                return None
            for item in document.get("items") or ():
                group = str((item.get("metadata") or {}).get("name") or "")
                versions = item.get("versions") or ()
                if not versions:
                    continue
                version = str(versions[0].get("version") or "")
                gv = f"{group}/{version}" if group else version
                if versions[0].get("freshness") == "Stale":
                    failed[gv] = ServiceUnavailable(f"{gv}: the server's discovery of this group-version is stale")
                    continue
                defs = aggregated_resource_defs(group, version, versions[0].get("resources"))
                found[gv] = {rd.kind: rd for rd in defs}
                out.extend(defs)
        self._by_gv.update(found)
        return out, failed

    def invalidate(self) -> None:
        self._by_gv.clear()
