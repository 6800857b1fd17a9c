"""RunK: pods bound to this node run as pods in ``runk.namespace`` of the institution's cluster.

The mapping itself is the pod-mirroring core shared with compute pooling
(:class:`atoll.mirror.podsync.PodSync`, :class:`atoll.mirror.objects.DependencyMirror`): target
names ``name[:30]-md5(namespace/name)`` never clash between lites sharing one namespace (their
domains differ), every step is checkpointed in the source pod's annotations (a restarted agent
adopts what exists, never creates a pod twice), status is mirrored back, a target pod deleted
behind our back fails the source pod with ``PhysicalPodLost``, deletion goes both ways.

Informers: this node's pods on the master (``spec.nodeName=<node>``), the domain's ConfigMaps,
Secrets and PersistentVolumeClaims (dependencies), and the target pods labelled
``atoll.io/runk-node=<node>``. One controller reconciles per source pod. Copied ConfigMaps/Secrets
no pod of this node uses any more are released after each deletion; a claim's copy lives as long
as the claim (:mod:`atoll.agent.runk.claims`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.agent.runk import permissions
from atoll.agent.runk.claims import ClaimReleaser
from atoll.agent.runk.podspec import NODE_LABEL, customize
from atoll.agent.runk.settings import RunKSettings
from atoll.api import kinds
from atoll.api.errors import APIError, Forbidden, NotFound
from atoll.client import Client, ClientError
from atoll.mirror import keys
from atoll.mirror.deps import dependencies
from atoll.mirror.objects import PVCS, DependencyMirror
from atoll.mirror.podspec import Placement
from atoll.mirror.podsync import NameConflict, PodSync
from atoll.runtime import Controller, Informer, ObjectKey, Result
from atoll.runtime.events import EventRecorder

JSON = dict[str, Any]
log = logging.getLogger(__name__)
PERMISSION_RECHECK = 60.0


class RunK:
    def __init__(self, client: Client, target: Client, config: AgentConfig, settings: RunKSettings) -> None:
        self.client = client
        self.target = target
        self.config = config
        self.settings = settings
        node = config.name
        self.informer = Informer(client, kinds.PODS, field_selector=f"spec.nodeName={node}")
        self.configmaps = Informer(client, kinds.CONFIGMAPS, config.domain)
        self.secrets = Informer(client, kinds.SECRETS, config.domain)
        self.claims = Informer(client, PVCS, config.domain)
        self.target_pods = Informer(target, kinds.PODS, settings.namespace, label_selector=f"{NODE_LABEL}={node}")
        self.deps = DependencyMirror(client, target, settings.namespace, f"runk-{node}")
        self.recorder = EventRecorder(client, "runk", node)
        self.sync = PodSync(
            client, target, self.deps, target_pod=self._target_pod, source_object=self._source_object,
            recorder=self.recorder, unschedulable_timeout=settings.unschedulable_timeout,
            customize=lambda _pod, body: customize(body, settings, node, config.pod_env),
        )
        self.placement = Placement(namespace=settings.namespace, node_name="", virtual_node=node)
        self.controller: Controller[ObjectKey] = Controller(f"runk-{node}", self, workers=4)
        self.controller.watch(self.informer)
        self.controller.watch(self.target_pods, _source_key)
        self.claim_releaser = ClaimReleaser(self.claims, self.informer, self.deps, f"runk-{node}-claims")
        self.condition: JSON = permissions.condition(settings.namespace, [])
        self._recheck = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for informer in (self.informer, self.configmaps, self.secrets, self.claims, self.target_pods):
                tg.create_task(informer.run(), name=f"runk/{self.config.name}/{informer.rd.plural}")
            tg.create_task(self.controller.run(), name=f"runk/{self.config.name}/controller")
            tg.create_task(self.claim_releaser.controller.run(), name=f"runk/{self.config.name}/claims")
            tg.create_task(self._permission_loop(), name=f"runk/{self.config.name}/permissions")

    # -- lookups ---------------------------------------------------------------------------

    async def _target_pod(self, name: str) -> JSON | None:
        cached = self.target_pods.cache.get(name, self.settings.namespace)
        if cached is not None:
            return cached
        try:
            pod: JSON = await self.target.get(kinds.PODS, name, self.settings.namespace)
        except NotFound:
            return None
        return pod

    def _source_object(self, kind: str, namespace: str, name: str) -> JSON | None:
        if kind == "ConfigMap":
            return self.configmaps.cache.get(name, namespace)
        if kind == "Secret":
            return self.secrets.cache.get(name, namespace)
        if kind == "PersistentVolumeClaim":
            return self.claims.cache.get(name, namespace)
        return None

    # -- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> Result:
        assert key.namespace is not None
        try:
            return await self._reconcile(key.namespace, key.name)
        except Forbidden as exc:
            self._recheck.set()
            pod = self.informer.cache.get(key.name, key.namespace)
            if pod is not None:
                await self.recorder.record(pod, "Warning", "RunKForbidden", exc.message)
            raise
        except NameConflict as exc:
            pod = self.informer.cache.get(key.name, key.namespace)
            if pod is not None:
                await self.recorder.record(pod, "Warning", "RunKNameConflict", str(exc))
            raise

    async def _reconcile(self, namespace: str, name: str) -> Result:
        if not self.config.runs_namespace(namespace):
            return Result()  # another domain's pod is never forwarded (domain isolation, as RunP)
        pod = self.informer.cache.get(name, namespace)
        if pod is None:
            await self.sync.delete_orphan(namespace, name)
            await self.release_unused()
            return Result()
        if pod["metadata"].get("deletionTimestamp"):
            if await self.sync.delete(pod):
                await self.release_unused()
            return Result()
        again = await self.sync.sync(pod, self.placement)
        return Result(requeue_after=again) if again is not None else Result()

    async def release_unused(self) -> None:
        """Release copied ConfigMaps/Secrets no live pod of this node uses any more."""
        used: set[tuple[str, str, str]] = set()
        for pod in self.informer.cache:
            if not pod["metadata"].get("deletionTimestamp"):
                ns = str(pod["metadata"]["namespace"])
                used.update((kind, ns, dep) for kind, dep in dependencies(pod).items())
        for kind, informer in (("ConfigMap", self.configmaps), ("Secret", self.secrets)):
            for obj in list(informer.cache):
                md = obj["metadata"]
                mine = (md.get("labels") or {}).get(self.deps.label) or self.deps.finalizer in (
                    md.get("finalizers") or ())
                if mine and (kind, md["namespace"], md["name"]) not in used:
                    try:
                        await self.deps.release(kind, md["namespace"], md["name"], obj)
                    except NotFound:
                        pass

    # -- permissions -----------------------------------------------------------------------

    async def check_permissions(self) -> JSON:
        namespace = self.settings.namespace
        try:
            lacking = await permissions.missing(self.target, namespace)
            self.condition = permissions.condition(namespace, lacking)
        except (APIError, ClientError) as exc:
            self.condition = permissions.condition(namespace, [], str(exc))
        if self.condition["status"] != "True":
            log.warning("%s", self.condition["message"])
        return self.condition

    async def _permission_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._recheck.wait(), PERMISSION_RECHECK)
            except TimeoutError:
                pass
            self._recheck.clear()
            await self.check_permissions()


def _source_key(target: JSON) -> list[ObjectKey]:
    annotations = target["metadata"].get("annotations") or {}
    namespace, name = annotations.get(keys.VIRTUAL_POD_NAMESPACE), annotations.get(keys.VIRTUAL_POD_NAME)
    return [ObjectKey(str(namespace), str(name))] if namespace and name else []
