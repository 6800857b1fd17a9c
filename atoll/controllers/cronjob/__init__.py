"""CronJob controller (kube-controller-manager's ``cronjob``): Jobs on a cron schedule with time
zones, ``concurrencyPolicy``, ``startingDeadlineSeconds``, suspend and history limits, driven by
the injected clock; see :mod:`.reconciler` and :mod:`atoll.api.cron`."""

from __future__ import annotations

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.kinds import CRONJOBS, JOBS
from atoll.controllers import ControllerContext
from atoll.controllers.cronjob.reconciler import CronJobReconciler
from atoll.runtime import Controller, Manager, ObjectKey, owner_mapper
from atoll.runtime.wakeups import Wakeups

NAME = "cronjob"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    cronjobs = manager.informer(CRONJOBS)
    jobs = manager.informer(JOBS)
    wakeups: Wakeups[ObjectKey] = Wakeups(clock)
    reconciler = CronJobReconciler(ctx.client, cronjobs=cronjobs.cache, jobs=jobs.cache, clock=clock, wakeups=wakeups)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    wakeups.enqueue = controller.queue.add
    controller.watch(cronjobs)
    controller.watch(jobs, owner_mapper("CronJob", "batch/v1"))
    manager.add(controller)
