"""Job controller (kube-controller-manager's ``job``): completions, parallelism, Indexed mode,
backoffLimit with exponential backoff, activeDeadlineSeconds, suspend and
ttlSecondsAfterFinished, on the injected clock; see :mod:`.reconciler` and :mod:`.plan`."""

from __future__ import annotations

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.kinds import JOBS, PODS
from atoll.controllers import ControllerContext
from atoll.controllers.job.plan import BACKOFF_BASE
from atoll.controllers.job.reconciler import JobReconciler
from atoll.runtime import Controller, Manager, ObjectKey, owner_mapper
from atoll.runtime.expectations import Expectations
from atoll.runtime.podcontrol import PodControl
from atoll.runtime.wakeups import Wakeups

NAME = "job"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK,
          backoff_base: float = BACKOFF_BASE) -> None:
    jobs = manager.informer(JOBS)
    pods = manager.informer(PODS)
    wakeups: Wakeups[ObjectKey] = Wakeups(clock)
    control = PodControl(ctx.client, "job-controller", Expectations(clock=clock))
    reconciler = JobReconciler(ctx.client, jobs=jobs.cache, pods=pods.cache, control=control, clock=clock,
                               wakeups=wakeups, backoff_base=backoff_base)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    wakeups.enqueue = controller.queue.add
    controller.watch(jobs)
    controller.watch(pods, owner_mapper("Job", "batch/v1"))
    manager.add(controller)
