"""KusciaJob controller (Kuscia §2.4): multi-party DAG jobs in namespace ``cross-domain``.

* :mod:`.dag` — default task IDs, validation, ready tasks; :mod:`.phases` — the Running decision;
* :mod:`.stages` — the ``job-stage`` commands; :mod:`.taskspec` — the KusciaTask of a task;
* :mod:`.reconciler` — the phase → handler table; :mod:`.actions` — writes to tasks and Events;
* :mod:`.gc` — deletion of finished jobs after ``kusciaJobGC.durationHours``.

Watches KusciaJobs and the KusciaTasks labelled ``controller=kuscia-job`` (mapped to their owner
job). Domains and AppImages are cached for validation (and to tell own parties from partners);
changes to them enqueue nothing, since only a new job is validated.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.constants import CROSS_DOMAIN_NAMESPACE
from atoll.controllers import ControllerContext
from atoll.controllers.kusciajob.constants import CONTROLLER_KUSCIA_JOB, LABEL_CONTROLLER
from atoll.controllers.kusciajob.gc import SCAN_PERIOD, JobGarbageCollector
from atoll.controllers.kusciajob.reconciler import Caches, JobReconciler
from atoll.runtime import Controller, Manager, ObjectKey, owner_mapper
from atoll.runtime.keys import JSON

NAME = "kusciajob"
GC_NAME = "kusciajob-gc"
KUSCIAJOBS = kinds.kind("kuscia.secretflow", "kusciajobs")
KUSCIATASKS = kinds.kind("kuscia.secretflow", "kusciatasks")
APPIMAGES = kinds.kind("kuscia.secretflow", "appimages")


def _nothing(_: JSON) -> Iterable[ObjectKey]:
    return ()


def setup(
    manager: Manager,
    ctx: ControllerContext,
    *,
    clock: Clock = SYSTEM_CLOCK,
    gc_scan_period: float = SCAN_PERIOD,
) -> None:
    jobs = manager.informer(KUSCIAJOBS, CROSS_DOMAIN_NAMESPACE)
    tasks = manager.informer(
        KUSCIATASKS, CROSS_DOMAIN_NAMESPACE, label_selector=f"{LABEL_CONTROLLER}={CONTROLLER_KUSCIA_JOB}"
    )
    domains = manager.informer(kinds.DOMAINS)
    appimages = manager.informer(APPIMAGES)
    caches = Caches(jobs=jobs.cache, tasks=tasks.cache, domains=domains.cache, appimages=appimages.cache)
    reconciler = JobReconciler(
        ctx.client, caches, enable_workload_approve=ctx.enable_workload_approve, clock=clock, name=NAME
    )
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(jobs)
    controller.watch(tasks, owner_mapper("KusciaJob"))
    controller.watch(domains, _nothing)  # synced before the first reconcile; no job re-validates
    controller.watch(appimages, _nothing)
    manager.add(controller)
    setup_gc(manager, ctx, clock=clock, scan_period=gc_scan_period)


def setup_gc(
    manager: Manager,
    ctx: ControllerContext,
    *,
    clock: Clock = SYSTEM_CLOCK,
    scan_period: float = SCAN_PERIOD,
    name: str = GC_NAME,
) -> None:
    """The job garbage collector alone (tests run it on their own manager with an injected clock)."""
    jobs = manager.informer(KUSCIAJOBS, CROSS_DOMAIN_NAMESPACE)
    collector = JobGarbageCollector(
        ctx.client,
        jobs.cache,
        duration_hours=ctx.job_gc_duration_hours,
        clock=clock,
        scan_period=scan_period,
        name=name,
    )
    controller: Controller[ObjectKey] = Controller(name, collector, workers=1)
    controller.watch(jobs)
    manager.add(controller)


__all__ = ["GC_NAME", "NAME", "JobGarbageCollector", "JobReconciler", "setup", "setup_gc"]
