"""Admission for pods created by users and workload controllers.

- ``Priority`` (kube-apiserver's plugin of that name): a pod naming ``priorityClassName`` gets that
  PriorityClass's ``value`` as ``spec.priority`` (and its ``preemptionPolicy``); an unknown class is
  refused (403, upstream's wording); a pod naming none gets the ``globalDefault`` class, if any.
  A PriorityClass's value above one billion is reserved for ``system-`` classes (422).
- ``DomainPlacement`` (Atoll): a pod created in a Domain's namespace (labelled
  ``kuscia.secretflow/domain-name``) without a node, node selector or affinity selects that
  domain's nodes and tolerates the agent taint, so ``kubectl create deployment`` in ``alice`` runs
  on alice's lite, and a domain's workloads never land on another domain's nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atoll.api import errors
from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.api.registry import ResourceDef
from atoll.api.workload_kinds import PRIORITY_CLASSES
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]
DOMAIN_LABEL = "kuscia.secretflow/domain-name"
AGENT_TOLERATION = {"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}
HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_CLASSES = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}


def _is_pods(rd: ResourceDef) -> bool:
    return rd.group == "" and rd.kind == "Pod"


def _is_pod_create(attrs: Attributes) -> bool:
    return (attrs.operation == "CREATE" and not attrs.subresource and attrs.rd.group == ""
            and attrs.rd.kind == "Pod" and attrs.obj is not None)


class PriorityAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return (rd.group == PRIORITY_CLASSES.group and rd.kind == PRIORITY_CLASSES.kind) or _is_pods(rd)

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        if subresource:
            return False
        return operation == "CREATE" or (operation == "UPDATE" and not _is_pods(rd))

    async def admit(self, attrs: Attributes) -> None:
        if attrs.rd.group == PRIORITY_CLASSES.group and attrs.rd.kind == PRIORITY_CLASSES.kind:
            self._check_class(attrs)
        if not _is_pod_create(attrs):
            return
        assert attrs.obj is not None
        spec = attrs.obj.setdefault("spec", {})
        name = spec.get("priorityClassName")
        if name:
            value, policy = self._lookup(str(name))
            if value is None:
                raise errors.Forbidden(f'pods "{attrs.name}" is forbidden: no PriorityClass with name {name} '
                                       "was found")
        else:
            default = self._global_default()
            if default is None:
                return
            spec["priorityClassName"] = default["metadata"]["name"]
            value, policy = int(default.get("value") or 0), default.get("preemptionPolicy")
        spec["priority"] = value
        if policy:
            spec["preemptionPolicy"] = policy

    def _lookup(self, name: str) -> tuple[int | None, str | None]:
        if name in SYSTEM_CLASSES:
            return SYSTEM_CLASSES[name], "PreemptLowerPriority"
        cached = self.cache.get(PRIORITY_CLASSES.key(None, name))
        if cached is None:
            return None, None
        return int(cached.obj.get("value") or 0), cached.obj.get("preemptionPolicy")

    def _global_default(self) -> JSON | None:
        defaults = [c.obj for c in self.cache.list(PRIORITY_CLASSES.key_prefix()) if c.obj.get("globalDefault")]
        return min(defaults, key=lambda c: int(c.get("value") or 0)) if defaults else None

    @staticmethod
    def _check_class(attrs: Attributes) -> None:
        if attrs.obj is None or attrs.operation not in ("CREATE", "UPDATE") or attrs.subresource:
            return
        obj = attrs.obj
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
        value = obj.get("value")
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.invalid("PriorityClass", "scheduling.k8s.io", attrs.name, [errors.cause(
                "FieldValueRequired", "value", "Required value")])
        if value > HIGHEST_USER_PRIORITY and not attrs.name.startswith("system-"):
            raise errors.invalid("PriorityClass", "scheduling.k8s.io", attrs.name, [errors.cause(
                "FieldValueForbidden", "value", f"Forbidden: maximum allowed value of a user defined priority "
                f"is {HIGHEST_USER_PRIORITY}")])


class DomainPlacement:
    def __init__(self, namespace: Callable[[str], JSON | None]) -> None:
        self.namespace = namespace

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return _is_pods(rd)

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return operation == "CREATE" and not subresource

    async def admit(self, attrs: Attributes) -> None:
        if not _is_pod_create(attrs) or attrs.namespace is None:
            return
        ns = self.namespace(attrs.namespace)
        domain = (((ns or {}).get("metadata") or {}).get("labels") or {}).get(DOMAIN_LABEL)
        assert attrs.obj is not None
        spec = attrs.obj.setdefault("spec", {})
        if not domain or spec.get("nodeName") or spec.get("nodeSelector") or spec.get("affinity"):
            return
        spec["nodeSelector"] = {LABEL_NODE_NAMESPACE: domain}
        tolerations = list(spec.get("tolerations") or [])
        if not any(t.get("key") == AGENT_TOLERATION["key"] for t in tolerations if isinstance(t, dict)):
            tolerations.append(dict(AGENT_TOLERATION))
        spec["tolerations"] = tolerations
