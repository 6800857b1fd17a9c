"""The read path (Kairship's Clusterpedia-backed search): list and get across every instance and
its members' propagated objects, answered from the informer caches the instances' controllers
already keep current by watches — never by a LIST fanned out per request.

Sources: each instance (its Karmada objects and the resource templates its policies select) and
each member cluster of each instance (the objects the instance applied there: for a Push member the
executor's watches on it, for a Pull member what its agent reported in the Works' status,
:mod:`atoll.fleet.karmada.reported`). Query parameters:
``instance``, ``cluster`` (a member, or ``-`` for the instance itself), ``apiVersion``, ``kind``,
``namespace``, ``labelSelector``, ``fieldSelector`` (``metadata.name``, ``metadata.namespace``),
``fuzzyName`` (substring of the name), ``owner`` (owner UID), ``limit`` and ``continue``. The
answer is a ``List`` whose items carry the ``kairship.io/instance`` / ``kairship.io/cluster``
annotations, with ``metadata.remainingItemCount`` and ``continue``, plus ``sources``: per source
its ``lastSyncTime`` and whether it is ``synced``; a member that is not Ready is marked stale (its
items are as of its last sync) and named in ``warnings``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from atoll.api import errors
from atoll.api.field_selectors import parse_field_selector
from atoll.api.registry import ResourceDef
from atoll.api.selectors import parse_label_selector
from atoll.api.timestamps import format_time

JSON = dict[str, Any]
INSTANCE_ANNOTATION = "kairship.io/instance"
CLUSTER_ANNOTATION = "kairship.io/cluster"
CONTROL_PLANE = "-"


class Listing(Protocol):
    """One kind's objects in one source: an informer, or a Pull cluster's reported objects."""

    @property
    def rd(self) -> ResourceDef: ...

    @property
    def cache(self) -> Iterable[JSON]: ...

    @property
    def has_synced(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Source:
    instance: str
    cluster: str  # CONTROL_PLANE for the instance itself
    informers: tuple[Listing, ...]
    ready: bool
    since: str  # when it last became (not) ready, RFC 3339 ("" unknown)
    synced_at: str = ""
    """When its objects were last known current, if not "now while ready" (a Pull cluster: its
    agent's last lease renewal — the agent reports every change, and proves itself alive so)."""


class SourceView(Protocol):
    def search_sources(self, instance: str) -> list[Source]: ...


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        return int(text.removeprefix("o:"))
    except (ValueError, UnicodeDecodeError):
        raise errors.BadRequest("continue: invalid continue token") from None


class SearchIndex:
    """Answers searches over the sources of every running instance."""

    def __init__(self, instances: Mapping[str, SourceView]) -> None:
        self.instances = instances

    def sources(self, instance: str | None = None) -> list[Source]:
        names = [instance] if instance else sorted(self.instances)
        return [s for name in names if name in self.instances for s in self.instances[name].search_sources(name)]

    def _matching(self, query: Mapping[str, str], sources: list[Source]) -> Iterator[tuple[Source, ResourceDef, JSON]]:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""), ("metadata.name", "metadata.namespace"))
        fuzzy = query.get("fuzzyName", "").lower()
        owner = query.get("owner", "")
        namespace = query.get("namespace", "")
        api_version, kind = query.get("apiVersion", ""), query.get("kind", "")
        for source in sources:
            for informer in source.informers:
                rd = informer.rd
                if (api_version and rd.api_version != api_version) or (kind and rd.kind != kind):
                    continue
                for obj in informer.cache:
                    md = obj.get("metadata") or {}
                    if namespace and md.get("namespace") != namespace:
                        continue
                    if fuzzy and fuzzy not in str(md.get("name", "")).lower():
                        continue
                    if owner and not any(ref.get("uid") == owner for ref in md.get("ownerReferences") or ()):
                        continue
                    if not labels.matches(md.get("labels") or {}) or not fields.matches(obj):
                        continue
                    yield source, rd, obj

    def search(self, query: Mapping[str, str]) -> JSON:
        sources = self.sources(query.get("instance") or None)
        if query.get("cluster"):
            sources = [s for s in sources if s.cluster == query["cluster"]]
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise errors.BadRequest("limit: must be an integer") from None
        offset = _offset(query.get("continue", ""))
        matched = sorted(self._matching(query, sources), key=_sort_key)
        page = matched[offset : offset + limit] if limit > 0 else matched[offset:]
        remaining = max(0, len(matched) - offset - len(page))
        meta: JSON = {"resourceVersion": ""}
        if remaining:
            meta["remainingItemCount"] = remaining
            meta["continue"] = _token(offset + len(page))
        stale = [s for s in sources if not s.ready]
        now = format_time(time.time())
        return {
            "kind": "List",
            "apiVersion": "v1",
            "metadata": meta,
            "items": [_decorated(source, rd, obj) for source, rd, obj in page],
            "sources": [
                {
                    "instance": s.instance,
                    "cluster": s.cluster,
                    "synced": all(i.has_synced for i in s.informers),
                    "ready": s.ready,
                    "lastSyncTime": s.synced_at or (now if s.ready else s.since),
                }
                for s in sources
            ],
            "warnings": [
                f"cluster {s.cluster} of instance {s.instance} is not ready: its objects are as of "
                f"{s.since or 'its last sync'}"
                for s in stale
            ],
        }


def _sort_key(item: tuple[Source, ResourceDef, JSON]) -> tuple[str, ...]:
    source, rd, obj = item
    md = obj.get("metadata") or {}
    return (
        source.instance,
        source.cluster,
        rd.api_version,
        rd.kind,
        str(md.get("namespace") or ""),
        str(md.get("name") or ""),
    )


def _decorated(source: Source, rd: ResourceDef, obj: JSON) -> JSON:
    md = dict(obj.get("metadata") or {})
    md["annotations"] = {
        **(md.get("annotations") or {}),
        INSTANCE_ANNOTATION: source.instance,
        CLUSTER_ANNOTATION: source.cluster,
    }
    return {"apiVersion": rd.api_version, "kind": rd.kind, **obj, "metadata": md}
