"""Informer views: a namespace- or label-selected informer fed by the process's informer of the
whole resource instead of its own watch.

Controllers ask a factory for what they need — all Pods, Pods labelled
``kuscia.secretflow/controller=kusciatask``, the Namespaces of Kuscia domains, KusciaTasks in
``cross-domain`` — and each distinct (resource, namespace, selectors) used to be its own list and
watch: the API server filtered and encoded every event once per watch, and this process read and
decoded it once per watch. When the factory also holds the informer of every object of that
resource (all namespaces, no selector), the selected informer becomes a *view* of it: it opens
no watch, and each event its source applies is offered to it, already decoded.

A view behaves as the watch it replaces (kube-apiserver's filtered watch): an object that starts
matching is added, one that changes while matching is updated, one that stops matching (a label
removed) is deleted with its last matching content at the change's resourceVersion (as the server
sends it, like kube-apiserver's cacher), a deleted object is deleted. A view
holds the same dicts as its source (no copies; informer caches are read-only), keeps its own
cache, indexes and handlers, and is synced once its source has listed. Field selectors are
resource-specific on the server, so a field-selected informer keeps its own watch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atoll.api.errors import APIError
from atoll.api.selectors import LabelSelector, parse_label_selector
from atoll.runtime.keys import ObjectKey

if TYPE_CHECKING:
    from atoll.runtime.informer import Informer

JSON = dict[str, Any]


class View:
    """The filter of one view: which objects of its source it holds."""

    __slots__ = ("informer", "namespace", "selector")

    def __init__(self, informer: Informer, selector: LabelSelector) -> None:
        self.informer = informer
        self.namespace = informer.namespace
        self.selector = selector

    def matches(self, obj: JSON) -> bool:
        md = obj["metadata"]
        if self.namespace is not None and md.get("namespace") != self.namespace:
            return False
        return self.selector.matches(md.get("labels"))

    def offer(self, key: ObjectKey, obj: JSON) -> None:
        """The source stored ``obj`` (added, changed or re-listed)."""
        informer = self.informer
        try:
            if self.matches(obj):
                informer.store(obj)
            else:
                last = informer.cache.remove(key)
                if last is not None:
                    informer.dispatch_delete(_departed(last, obj))
        except Exception as exc:  # as the informer's own _apply: skip this object, keep going
            informer.skip_malformed("MODIFIED", obj, exc)

    def deleted(self, key: ObjectKey, obj: JSON) -> None:
        """The source deleted ``obj`` (an event, or gone at a relist): handlers see ``obj``, as
        in the DELETED event of a watch."""
        if self.informer.cache.remove(key) is not None:
            self.informer.dispatch_delete(obj)


def _departed(last: JSON, now: JSON) -> JSON:
    """``last`` (the state that matched) at ``now``'s resourceVersion: a new dict, as both are
    shared read-only dicts."""
    return {**last, "metadata": {**last["metadata"], "resourceVersion": now["metadata"].get("resourceVersion")}}


def view_selector(informer: Informer) -> LabelSelector | None:
    """The label selector ``informer`` can be served by as a view, or None (field-selected, not
    parseable: it keeps its own watch, and the server judges the selector)."""
    if informer.field_selector:
        return None
    try:
        return parse_label_selector(informer.label_selector or "")
    except APIError:
        return None
