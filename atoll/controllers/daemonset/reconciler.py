"""Reconcile one DaemonSet: one pod per eligible node, bound directly to it (``spec.nodeName``).

A node is eligible when it carries the template's ``nodeSelector`` labels and every
``NoSchedule``/``NoExecute`` taint is tolerated by the template. In a Domain's namespace a template
without a node selector selects that domain's nodes only (``kuscia.secretflow/namespace``) and
tolerates the agent taint — a domain's DaemonSet never lands on another domain's node. A template
change rolls the pods node by node, at most ``rollingUpdate.maxUnavailable`` (default 1) down at a
time (pods carry ``controller-revision-hash``). Status: desired/current/misscheduled/ready/updated/
available counts and ``observedGeneration``. Every template is kept as a ControllerRevision
``<name>-<hash>`` (:mod:`atoll.runtime.history`), so ``kubectl rollout history|undo ds`` work.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.api.errors import NotFound
from atoll.api.kinds import DAEMONSETS
from atoll.api.podtemplates import controller_of, is_active, is_ready, pod_from_template, random_suffix, safe_encode
from atoll.client import Client
from atoll.runtime import Cache, ObjectKey, Result, history
from atoll.runtime.podcontrol import PodControl
from atoll.scheduler.plugins.tainttoleration import FILTERED_EFFECTS, tolerated

JSON = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
DOMAIN_LABEL = "kuscia.secretflow/domain-name"
AGENT_TOLERATION = {"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}
DAEMON_TOLERATIONS = [  # what upstream adds to every daemon pod
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def revision_hash(template: JSON) -> str:
    return safe_encode(hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).digest(), 10)


class DaemonSetReconciler:
    def __init__(self, client: Client, *, daemonsets: Cache, pods: Cache, nodes: Cache, namespaces: Cache,
                 control: PodControl, revisions: Cache) -> None:
        self.client, self.daemonsets, self.pods, self.nodes = client, daemonsets, pods, nodes
        self.namespaces, self.control, self.revisions = namespaces, control, revisions

    def placed_template(self, ds: JSON) -> JSON:
        """The pod template as this namespace places it (a Domain's nodes when it selects none)."""
        template = dict((ds.get("spec") or {}).get("template") or {})
        spec = dict(template.get("spec") or {})
        ns = self.namespaces.get(ds["metadata"]["namespace"])
        domain = (((ns or {}).get("metadata") or {}).get("labels") or {}).get(DOMAIN_LABEL)
        if domain and not spec.get("nodeSelector") and not spec.get("affinity"):
            spec["nodeSelector"] = {LABEL_NODE_NAMESPACE: domain}
            spec["tolerations"] = [*(spec.get("tolerations") or []), AGENT_TOLERATION]
        spec["tolerations"] = [*(spec.get("tolerations") or []), *DAEMON_TOLERATIONS]
        return {**template, "spec": spec}

    @staticmethod
    def eligible(template: JSON, node: JSON) -> bool:
        spec = template.get("spec") or {}
        labels = (node.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            return False
        tolerations = list(spec.get("tolerations") or [])
        return all(tolerated(tolerations, t) for t in (node.get("spec") or {}).get("taints") or []
                   if t.get("effect") in FILTERED_EFFECTS)

    async def reconcile(self, key: ObjectKey) -> Result:
        ds = self.daemonsets.get_key(key)
        if ds is None or key.namespace is None or ds["metadata"].get("deletionTimestamp"):
            self.control.expect.forget(key)
            return Result()
        template = self.placed_template(ds)
        current = revision_hash((ds.get("spec") or {}).get("template") or {})
        uid = ds["metadata"]["uid"]
        by_node: dict[str, list[JSON]] = {}
        for pod in self.pods.list(key.namespace):
            if (controller_of(pod) or {}).get("uid") == uid and is_active(pod):
                by_node.setdefault(str((pod.get("spec") or {}).get("nodeName") or ""), []).append(pod)
        wanted = {n["metadata"]["name"] for n in self.nodes.list() if self.eligible(template, n)}
        creating = self.control.expect.pending_creates(key, {p["metadata"]["name"] for p in self.pods.list(
            key.namespace)})
        create, delete = [], []
        for node in sorted(wanted):
            pods = by_node.get(node, [])
            if not pods and not any(name.startswith(f"{ds['metadata']['name']}-{node}-") for name in creating):
                create.append(self._pod(ds, template, node, current))
            delete.extend(pods[1:])
        for node, pods in by_node.items():
            if node not in wanted:
                delete.extend(pods)
        delete.extend(self._outdated(ds, by_node, wanted, current))
        await self._history(ds, current, by_node)
        if create:
            await self.control.create_many(key, ds, create)
        if delete:
            await self.control.delete_many(key, ds, delete)
        await self._status(ds, by_node, wanted, current)
        return Result()

    async def _history(self, ds: JSON, current: str, by_node: dict[str, list[JSON]]) -> None:
        """The current template as a ControllerRevision (``kubectl rollout history|undo ds``)."""
        name = ds["metadata"]["name"]
        await history.ensure_revision(self.client, self.revisions, ds, f"{name}-{current}", current)
        live = {f"{name}-{current}"} | {f"{name}-{(p['metadata'].get('labels') or {}).get(HASH_LABEL)}"
                                        for pods in by_node.values() for p in pods}
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        await history.truncate(self.client, self.revisions, ds, live, limit)

    def _pod(self, ds: JSON, template: JSON, node: str, current: str) -> JSON:
        pod = pod_from_template(template, ds, f"{ds['metadata']['name']}-{node}-{random_suffix()}",
                                extra_labels={HASH_LABEL: current})
        pod["spec"] = {**pod["spec"], "nodeName": node}
        return pod

    def _outdated(self, ds: JSON, by_node: dict[str, list[JSON]], wanted: set[str], current: str) -> list[JSON]:
        """Old-template pods to replace now, keeping at most ``maxUnavailable`` nodes down."""
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {})
        if rolling.get("type") == "OnDelete":
            return []
        budget = int((rolling.get("rollingUpdate") or {}).get("maxUnavailable") or 1) if isinstance(
            (rolling.get("rollingUpdate") or {}).get("maxUnavailable", 1), int) else 1
        down = sum(1 for n in wanted if not any(is_ready(p) for p in by_node.get(n, [])))
        out = []
        for node in sorted(wanted):
            pods = by_node.get(node, [])
            if pods and (pods[0]["metadata"].get("labels") or {}).get(HASH_LABEL) != current:
                if not is_ready(pods[0]):
                    out.append(pods[0])
                elif down < budget:
                    out.append(pods[0])
                    down += 1
        return out

    async def _status(self, ds: JSON, by_node: dict[str, list[JSON]], wanted: set[str], current: str) -> None:
        on_wanted = [by_node[n][0] for n in wanted if by_node.get(n)]
        status = {
            **(ds.get("status") or {}),
            "desiredNumberScheduled": len(wanted),
            "currentNumberScheduled": len(on_wanted),
            "numberMisscheduled": sum(1 for n in by_node if n not in wanted),
            "numberReady": sum(1 for p in on_wanted if is_ready(p)),
            "updatedNumberScheduled": sum(1 for p in on_wanted
                                          if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current),
            "numberAvailable": sum(1 for p in on_wanted if is_ready(p)),
            "observedGeneration": int(ds["metadata"].get("generation") or 1),
        }
        status["numberUnavailable"] = len(wanted) - status["numberAvailable"]
        if status != (ds.get("status") or {}):
            md = ds["metadata"]
            try:
                await self.client.patch(DAEMONSETS, md["name"], {"status": status}, md["namespace"],
                                        subresource="status")
            except NotFound:
                pass
