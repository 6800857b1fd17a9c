"""The read path's view of Pull clusters: the objects their agents applied, as the agents report
them in the Works' status — the management plane never calls a Pull member (it has no
credentials for it), so this is the only way it can know what is there.

An object of a Pull cluster is the Work's manifest as the agent applies it (with the
``work.karmada.io/namespace``/``name`` labels and manifest-hash annotation the executor adds) plus
the status the agent reflected into ``manifestStatuses`` — present only once the agent reported the
manifest applied (an entry with its ordinal). Server-set fields the agent does not report (the
member's ``uid``, ``resourceVersion``, ``creationTimestamp``) are absent. The index is kept by the
instance's Work informer events (built once per Work change, never per search request); a Work
whose new spec the agent has not applied yet (its ``Applied`` condition's ``observedGeneration``
is older) keeps its previous objects, since the member still holds those. The source's freshness is
the agent's last lease renewal (``lastSyncTime``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from atoll.api.registry import ResourceDef
from atoll.fleet.karmada.execution import labelled
from atoll.fleet.karmada.names import cluster_of

JSON = dict[str, Any]
KindKey = tuple[str, str, str, str, bool]  # group, version, kind, resource, namespaced
ObjKey = tuple[str, str]  # namespace, name


@dataclass(slots=True)
class ReportedKind:
    """One kind's reported objects in one cluster (the search's ``Listing``)."""

    rd: ResourceDef
    objects: dict[tuple[str, str, ObjKey], JSON] = field(default_factory=dict)  # (work ns, work name, obj key)
    has_synced: bool = True

    @property
    def cache(self) -> Iterator[JSON]:
        return iter(self.objects.values())


def _kind_key(identifier: JSON) -> KindKey:
    return (
        str(identifier.get("group") or ""),
        str(identifier.get("version") or ""),
        str(identifier.get("kind") or ""),
        str(identifier.get("resource") or ""),
        bool(identifier.get("namespace")),
    )


def reported_objects(work: JSON) -> Iterator[tuple[KindKey, ObjKey, JSON]]:
    """The objects a Work's status says its agent applied, as the member holds them."""
    manifests = ((work.get("spec") or {}).get("workload") or {}).get("manifests") or ()
    for entry in (work.get("status") or {}).get("manifestStatuses") or ():
        identifier = entry.get("identifier") or {}
        ordinal = identifier.get("ordinal")
        if not isinstance(ordinal, int) or not 0 <= ordinal < len(manifests):
            continue
        applied = labelled(work, manifests[ordinal])
        mmd = applied["metadata"]
        if entry.get("status") is not None:
            applied["status"] = entry["status"]
        namespace = str(identifier.get("namespace") or "")
        yield _kind_key(identifier), (namespace, str(identifier.get("name") or mmd.get("name"))), applied


def _caught_up(work: JSON) -> bool:
    """The agent's last report (``Applied`` True) speaks for the Work's current generation (an
    ``Applied`` without ``observedGeneration`` is trusted)."""
    conditions = (work.get("status") or {}).get("conditions") or ()
    applied = next((x for x in conditions if x.get("type") == "Applied"), None)
    if applied is None or applied.get("status") != "True":
        return False
    observed = applied.get("observedGeneration")
    return observed is None or bool(observed == work["metadata"].get("generation"))


class ReportedIndex:
    """Per cluster and kind, the objects the Works' status reports (fed by Work informer events)."""

    def __init__(self) -> None:
        self.clusters: dict[str, dict[KindKey, ReportedKind]] = {}
        self._by_work: dict[tuple[str, str], list[tuple[KindKey, tuple[str, str, ObjKey]]]] = {}

    def on_add(self, work: JSON) -> None:
        self.on_delete(work)
        md = work["metadata"]
        work_key = (str(md["namespace"]), str(md["name"]))
        kinds = self.clusters.setdefault(cluster_of(work_key[0]), {})
        entries = []
        for kind_key, obj_key, obj in reported_objects(work):
            listing = kinds.get(kind_key)
            if listing is None:
                group, version, kind, plural, namespaced = kind_key
                rd = ResourceDef(group, version, kind, plural, kind.lower(), namespaced)
                listing = kinds[kind_key] = ReportedKind(rd)
            key = (*work_key, obj_key)
            listing.objects[key] = obj
            entries.append((kind_key, key))
        if entries:
            self._by_work[work_key] = entries

    def on_update(self, _old: JSON, new: JSON) -> None:
        if not _caught_up(new):
            return  # a new spec the agent has not applied yet: the member still holds the last one
        self.on_add(new)

    def on_delete(self, work: JSON) -> None:
        md = work["metadata"]
        work_key = (str(md["namespace"]), str(md["name"]))
        kinds = self.clusters.get(cluster_of(work_key[0]), {})
        for kind_key, key in self._by_work.pop(work_key, ()):
            listing = kinds.get(kind_key)
            if listing is not None:
                listing.objects.pop(key, None)

    def listings(self, cluster: str) -> tuple[ReportedKind, ...]:
        return tuple(self.clusters.get(cluster, {}).values())
