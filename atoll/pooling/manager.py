"""The pooling manager: ClusterBinding lifecycle on the computing cluster (leader-elected).

Per binding (Kubeocean's ClusterBindingReconciler, with the syncer hosted in-process instead of
rendered as a Deployment): add ``kubeocean.io/clusterbinding-manager``; empty phase →
``Pending`` (``Ready=False/Initializing``); validate (→ ``Failed``, ``Ready=False/
ValidationFailed`` naming the field); read the kubeconfig Secret and reach the worker API within
``connect_timeout`` (→ ``Failed``, ``Ready=False`` and ``Connected=False/ConnectivityFailed``);
start the supervised syncer (:mod:`atoll.pooling.supervisor`) and its proxier; then ``Ready``
with ``Ready``, ``Connected``, ``SyncerReady`` and ``ProxierReady`` True. A syncer that keeps
failing shows ``SyncerReady=False/SyncerFailed`` with the error, and recovers by itself.

Two-phase teardown: on deletion the syncer keeps running until it has drained the worker and
released ``kubeocean.io/clusterbinding-syncer``; then the manager stops it and releases its own
finalizer. With ``external_syncers`` the manager never starts syncers: ``atoll pool-syncer``
processes run them (Kubeocean's one-Deployment-per-cluster isolation).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, Conflict, NotFound
from atoll.api.timestamps import format_time
from atoll.client import Client, ClientError, ConfigError
from atoll.pooling import constants as c
from atoll.pooling import metrics
from atoll.pooling.conditions import same_conditions, set_condition
from atoll.pooling.context import SyncContext, SyncerSettings
from atoll.pooling.health import binding_checks
from atoll.pooling.kinds import CLUSTERBINDINGS
from atoll.pooling.proxier import ProxierTLS
from atoll.pooling.supervisor import SyncerPool
from atoll.pooling.syncer import Syncer
from atoll.pooling.validation import binding_problem
from atoll.runtime import Cache, Controller, InformerFactory, ObjectKey, Result
from atoll.runtime.events import EventRecorder
from atoll.runtime.leader import LeaderElector

JSON = dict[str, Any]
log = logging.getLogger(__name__)
PHASES = ("Pending", "Ready", "Failed", "Deleting")
STATUS_ATTEMPTS = 5
"""Status writes of one reconcile that may meet a Conflict before it gives up (``_status``)."""


class ConnectivityError(Exception):
    """The worker cluster cannot be reached with the binding's kubeconfig Secret."""


@dataclass(slots=True)
class ManagerSettings:
    syncer: SyncerSettings = field(default_factory=SyncerSettings)
    connect_timeout: float = 30.0
    retry_failed: float = 30.0
    """A binding that failed its connectivity check is checked again after this many seconds."""
    external_syncers: bool = False
    tls: ProxierTLS | None = None
    proxier_host: str = "127.0.0.1"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    renew_period: float = 4.0
    """The leader's pause between renewals (one PUT each; a failed one is retried every
    ``retry_period`` until ``renew_deadline``): half as often as client-go's default, which neither
    failover (lease duration + standby polls) nor safety (renew deadline < lease) depends on."""


def kubeconfig_of(secret: JSON) -> JSON:
    raw = (secret.get("data") or {}).get(c.KUBECONFIG_KEY)
    text = base64.b64decode(raw).decode() if raw else (secret.get("stringData") or {}).get(c.KUBECONFIG_KEY)
    if not text:
        raise ConnectivityError(f"Secret has no key {c.KUBECONFIG_KEY!r}")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # its message quotes the offending line: it may hold a token
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConnectivityError(f"key {c.KUBECONFIG_KEY!r} is not valid YAML{where}") from None
    if not isinstance(doc, dict):
        raise ConnectivityError(f"key {c.KUBECONFIG_KEY!r} is not a kubeconfig")
    return doc


async def worker_client(client: Client, binding: JSON) -> tuple[Client, str]:
    """A client of the binding's worker cluster and the Secret's resourceVersion."""
    ref = (binding.get("spec") or {}).get("secretRef") or {}
    try:
        secret = await client.get(kinds.SECRETS, ref["name"], ref["namespace"])
    except NotFound:
        raise ConnectivityError(f"spec.secretRef: Secret {ref['namespace']}/{ref['name']} not found") from None
    try:
        worker = Client.from_kubeconfig(kubeconfig_of(secret), timeout=30.0, user_agent="atoll-pool-syncer")
    except ConfigError as exc:
        where = f"{ref['namespace']}/{ref['name']}"
        raise ConnectivityError(f"spec.secretRef: kubeconfig in Secret {where}: {exc}") from None
    return worker, str(secret["metadata"].get("resourceVersion") or "")


class BindingReconciler:
    def __init__(self, client: Client, bindings: Cache, pool: SyncerPool, settings: ManagerSettings,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.bindings = bindings
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.recorder = EventRecorder(client, "kubeocean-manager")
        self._ids: dict[str, str] = {}
        """binding name → the clusterID it was first validated with (clusterID is immutable)."""
        self.contexts: dict[str, SyncContext] = {}
        """binding name → the context of its syncer running in this process."""

    async def reconcile(self, key: ObjectKey) -> Result:
        started = time.monotonic()
        metrics.manager_sync_total.labels(key.name).inc()
        try:
            return await self._reconcile(key.name)
        except Exception:
            metrics.manager_sync_errors.labels(key.name).inc()
            raise
        finally:
            metrics.manager_sync_duration.observe(time.monotonic() - started)
            self._count_phases()

    def _count_phases(self) -> None:
        counts = dict.fromkeys(PHASES, 0)
        for binding in self.bindings:
            phase = "Deleting" if binding["metadata"].get("deletionTimestamp") else (
                (binding.get("status") or {}).get("phase") or "Pending")
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            metrics.clusterbindings_total.labels(phase).set(count)

    async def _reconcile(self, name: str) -> Result:
        binding = self.bindings.get(name)
        if binding is None:
            self.pool.stop(name)
            self._ids.pop(name, None)
            return Result()
        md = binding["metadata"]
        finalizers = list(md.get("finalizers") or ())
        if md.get("deletionTimestamp"):
            return await self._deleting(binding, finalizers)
        if c.FINALIZER_MANAGER not in finalizers:
            await self._set_finalizers(binding, [*finalizers, c.FINALIZER_MANAGER])
            return Result()
        status = binding.get("status") or {}
        if not status.get("phase"):
            await self._status(binding, c.PHASE_PENDING, [(c.COND_READY, False, "Initializing", "")])
            return Result()
        problem = binding_problem(binding, self.bindings, self._ids.get(name))
        if problem:
            self.pool.stop(name)
            await self._status(binding, c.PHASE_FAILED, [(c.COND_READY, False, "ValidationFailed", problem)])
            await self.recorder.record(binding, "Warning", "ValidationFailed", problem)
            return Result()
        self._ids.setdefault(name, binding["spec"]["clusterID"])
        return await self._run_syncer(binding)

    async def _run_syncer(self, binding: JSON) -> Result:
        name = binding["metadata"]["name"]
        if self.settings.external_syncers:
            return await self._ready(binding, "external syncer (atoll pool-syncer)")
        try:
            worker, secret_rv = await worker_client(self.client, binding)
        except ConnectivityError as exc:
            return await self._unreachable(binding, str(exc))
        fingerprint = hashlib.sha256(repr((binding.get("spec"), secret_rv)).encode()).hexdigest()
        if self.pool.running(name, fingerprint):
            await worker.close()
            return await self._ready(binding, "")
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await worker.get_path("/version")
        except (TimeoutError, APIError, ClientError) as exc:
            await worker.close()
            return await self._unreachable(binding, f"worker API {worker.server}: {exc or 'timed out'}")
        await worker.close()
        self.pool.ensure(name, fingerprint, self._runner(binding))
        return await self._ready(binding, "")

    def _runner(self, binding: JSON) -> Callable[[Callable[[], None]], Any]:
        name = binding["metadata"]["name"]

        async def run(started: Callable[[], None]) -> None:
            current = self.bindings.get(name) or binding
            worker, _ = await worker_client(self.client, current)
            syncer = Syncer(name, self.client, worker, clock=self.clock, settings=self.settings.syncer,
                            tls=self.settings.tls, proxier_host=self.settings.proxier_host, on_started=started)
            self.contexts[name] = syncer.ctx
            try:
                await syncer.run()
            finally:
                if self.contexts.get(name) is syncer.ctx:
                    del self.contexts[name]
                await worker.close()

        return run

    async def report(self, name: str, healthy: bool, message: str) -> None:
        """The supervisor's report: a syncer came up, or failed (restarting with backoff)."""
        binding = self.bindings.get(name)
        if binding is None or binding["metadata"].get("deletionTimestamp"):
            return
        reason = "SyncerCreated" if healthy else "SyncerFailed"
        await self._status(binding, None, [(c.COND_SYNCER_READY, healthy, reason, message)])

    async def _ready(self, binding: JSON, message: str) -> Result:
        healthy = self.settings.external_syncers or self.pool.running(binding["metadata"]["name"])
        syncer = [] if (binding.get("status") or {}).get("phase") == c.PHASE_READY else [
            (c.COND_SYNCER_READY, healthy, "SyncerCreated", message)]
        await self._status(binding, c.PHASE_READY, [
            (c.COND_READY, True, "ValidationPassed", ""),
            (c.COND_CONNECTED, True, "ConnectivityPassed", ""),
            *syncer,
            (c.COND_PROXIER_READY, self.settings.tls is not None or self.settings.external_syncers,
             "ProxierCreated" if self.settings.tls is not None else "ProxierFailed",
             "" if self.settings.tls is not None else "no proxier certificate: logs unavailable"),
        ])
        return Result(requeue_after=self.settings.syncer.resync)

    async def _unreachable(self, binding: JSON, message: str) -> Result:
        self.pool.stop(binding["metadata"]["name"])
        await self._status(binding, c.PHASE_FAILED, [
            (c.COND_READY, False, "ConnectivityFailed", message),
            (c.COND_CONNECTED, False, "ConnectivityFailed", message),
        ])
        await self.recorder.record(binding, "Warning", "ConnectivityFailed", message)
        return Result(requeue_after=self.settings.retry_failed)

    async def _deleting(self, binding: JSON, finalizers: list[str]) -> Result:
        name = binding["metadata"]["name"]
        if c.FINALIZER_SYNCER in finalizers:
            if not self.settings.external_syncers and not self.pool.running(name):
                with contextlib.suppress(ConnectivityError):
                    worker, _ = await worker_client(self.client, binding)
                    await worker.close()
                    self.pool.ensure(name, "teardown", self._runner(binding))
            return Result(requeue_after=self.settings.syncer.drain_poll)
        self.pool.stop(name)
        if c.FINALIZER_MANAGER in finalizers:
            await self._set_finalizers(binding, [f for f in finalizers if f != c.FINALIZER_MANAGER])
        self._ids.pop(name, None)
        return Result()

    async def _set_finalizers(self, binding: JSON, finalizers: list[str]) -> None:
        md = binding["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": md["resourceVersion"]}}
        with contextlib.suppress(NotFound):
            await self.client.patch(CLUSTERBINDINGS, md["name"], patch)

    async def _status(self, binding: JSON, phase: str | None, conditions: list[tuple[str, bool, str, str]]) -> None:
        """Set ``phase`` (None: keep the binding's) and ``conditions`` unless the status already says so.

        On a Conflict, again on the binding read afresh, at most ``STATUS_ATTEMPTS`` times in all
        (then logged: the change that conflicted is an event of the binding, whose reconcile sets it
        again) — but only while its ``generation`` is the one the conditions were worked out for: a
        newer spec is reconciled by its own event, and stamping these conditions with its
        ``observedGeneration`` would claim they hold for it."""
        name = binding["metadata"]["name"]
        generation = int(binding["metadata"].get("generation") or 0)
        for attempt in range(STATUS_ATTEMPTS):
            if attempt:  # the last one conflicted
                try:
                    binding = await self.client.get(CLUSTERBINDINGS, name)
                except NotFound:
                    return
                if int(binding["metadata"].get("generation") or 0) != generation:
                    return
            if await self._write_status(binding, phase, conditions, generation):
                return
        log.warning("status of ClusterBinding %s not set: %d conflicts in a row; the next reconcile retries",
                    name, STATUS_ATTEMPTS)

    async def _write_status(self, binding: JSON, phase: str | None, conditions: list[tuple[str, bool, str, str]],
                            generation: int) -> bool:
        """One status write; False on a Conflict (True when written, unchanged or gone)."""
        now = self.clock.now()
        old = binding.get("status") or {}
        phase = phase or old.get("phase") or c.PHASE_PENDING
        current = list(old.get("conditions") or [])
        for type_, ok, reason, message in conditions:
            current = set_condition(current, type_, ok, reason, message, now, generation)
        if old.get("phase") == phase and same_conditions(old.get("conditions") or [], current):
            return True
        status = {**old, "phase": phase, "conditions": current, "lastSyncTime": format_time(now)}
        try:
            await self.client.update(CLUSTERBINDINGS, {**binding, "status": status}, subresource="status")
        except NotFound:
            pass
        except Conflict:
            return False
        return True


class PoolingManager:
    """Runs the ClusterBinding controller and the syncers while holding ``kubeocean-manager-leader``."""

    def __init__(self, client: Client, settings: ManagerSettings | None = None, *, clock: Clock = SYSTEM_CLOCK,
                 identity: str | None = None) -> None:
        self.client = client
        self.settings = settings or ManagerSettings()
        self.clock = clock
        self.identity = identity
        self.informers = InformerFactory(client)
        self.bindings = self.informers.informer(CLUSTERBINDINGS)
        self.reconciler: BindingReconciler | None = None
        self.pool: SyncerPool | None = None
        self.leading = asyncio.Event()

    def health_checks(self) -> list[tuple[str, str | None]]:
        """One check per binding (``pooling/<name>``) for the node's ``/healthz`` and ``/readyz``."""
        contexts = self.reconciler.contexts if self.reconciler is not None and self.leading.is_set() else {}
        return binding_checks(self.bindings.cache, {name: ctx.worker_healthy for name, ctx in contexts.items()})

    async def run(self) -> None:
        with contextlib.suppress(AlreadyExists):
            await self.client.create(kinds.NAMESPACES, {"metadata": {"name": c.SYSTEM_NAMESPACE}})
        elector = LeaderElector(
            self.client, name=c.MANAGER_LEASE, namespace=c.SYSTEM_NAMESPACE, identity=self.identity,
            lease_duration=self.settings.lease_duration, renew_deadline=self.settings.renew_deadline,
            retry_period=self.settings.retry_period, renew_period=self.settings.renew_period,
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.informers.run(), name="pooling/informers")
            await elector.run(self._lead)

    async def _lead(self) -> None:
        reconciler: BindingReconciler
        pool = SyncerPool(lambda *args: reconciler.report(*args), clock=self.clock)
        reconciler = BindingReconciler(self.client, self.bindings.cache, pool, self.settings, self.clock)
        self.pool, self.reconciler = pool, reconciler
        controller: Controller[ObjectKey] = Controller("clusterbinding-manager", reconciler, workers=5)
        controller.watch(self.bindings)
        self.leading.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(pool.run(), name="pooling/syncers")
                tg.create_task(controller.run(), name="pooling/clusterbindings")
        finally:
            self.leading.clear()
