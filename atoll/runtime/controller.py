"""The reconcile loop: N workers pull keys from a work queue and call a level-based reconciler.

controller-runtime's contract, in Python:

* a reconcile request is a key (``ObjectKey``), never an event; the reconciler reads current
  state from informer caches and converges it, so it must be idempotent;
* the four-way result switch: success → ``forget``; ``Result(requeue_after=s)`` → ``forget`` and
  ``add_after(s)``; ``TerminalError`` → log + count, no retry; any other exception → log + count +
  ``add_rate_limited`` (per-key exponential backoff, global token bucket);
* the queue guarantees one key is never reconciled by two workers at once;
* every reconcile gets an id that appears in its logs (``reconcile_id``) next to the controller
  name and key, so the lines of one attempt can be grepped together.

Workers run in one ``TaskGroup``. On cancellation the controller stops taking keys, lets in-flight
reconciles finish (bounded by ``drain_timeout``) and then returns. A stopped controller can be run
again (after re-gaining leadership): it gets a fresh queue and re-enqueues everything its informers
hold, which is what a level-based controller needs after any gap.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from atoll.runtime import metrics
from atoll.runtime.dispatch import SourceDispatch
from atoll.runtime.informer import Informer
from atoll.runtime.keys import own_key
from atoll.runtime.workqueue import WorkQueue

JSON = dict[str, Any]
K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)
log = logging.getLogger(__name__)

reconcile_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "reconcile_context", default=None
)
"""``{"controller", "key", "reconcile_id"}`` of the reconcile running in this task."""


@dataclass(frozen=True, slots=True)
class Result:
    requeue_after: float | None = None
    """Reconcile again after this many seconds (polling something outside the API)."""


class TerminalError(Exception):
    """A failure retrying cannot fix (bad spec): logged and counted, never retried."""


class Reconciler(Protocol[K_contra]):
    async def reconcile(self, key: K_contra) -> Result: ...


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the current reconcile's controller/key/id as ``extra`` fields and as ``k=v`` suffix."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        fields = reconcile_context.get()
        if fields:
            kwargs["extra"] = {**fields, **(kwargs.get("extra") or {})}
            msg = f"{msg} " + " ".join(f"{k}={v}" for k, v in fields.items())
        return msg, kwargs


def get_logger(name: str) -> ContextLogger:
    """A logger for reconciler code: each line carries the running reconcile's context."""
    return ContextLogger(logging.getLogger(name), {})


clog = get_logger(__name__)


def generation_changed(old: JSON, new: JSON) -> bool:
    """Update predicate: skip status-only writes (controller-runtime's GenerationChangedPredicate)."""
    return bool(
        (old.get("metadata") or {}).get("generation") != (new.get("metadata") or {}).get("generation")
        or (new.get("metadata") or {}).get("deletionTimestamp")
    )


class Controller(Generic[K]):
    """Feeds keys from watched informers through a work queue into ``reconciler``."""

    def __init__(
        self,
        name: str,
        reconciler: Reconciler[K],
        queue: WorkQueue[K] | None = None,
        *,
        workers: int = 1,
        drain_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.reconciler = reconciler
        self.queue: WorkQueue[K] = queue if queue is not None else WorkQueue(name)  # an empty queue is falsy
        self.workers = workers
        self.drain_timeout = drain_timeout
        self._sources: list[tuple[Informer, Callable[[JSON], Iterable[K]]]] = []
        self._stopping = False
        metrics.init_controller(name)
        self._total = {r: metrics.reconcile_total.labels(name, r) for r in metrics.RECONCILE_RESULTS}
        self._errors = metrics.reconcile_errors_total.labels(name)
        self._time = metrics.reconcile_time_seconds.labels(name)

    def watch(
        self,
        informer: Informer,
        mapper: Callable[[JSON], Iterable[K]] | None = None,
        *,
        update_predicate: Callable[[JSON, JSON], bool] | None = None,
    ) -> None:
        """Enqueue ``mapper(obj)`` for every add/update/delete of ``informer`` (default: the
        object's own key). On update both the old and new object are mapped, so a label change
        that moves an object between owners reaches both. The informer's one dispatcher
        (:mod:`atoll.runtime.dispatch`) calls every controller's sources; a gated mapper
        (:class:`~atoll.runtime.keys.Gated`) is skipped for objects its gate rejects, so
        ``update_predicate`` must be a pure function of ``(old, new)``."""
        mapped = mapper or cast(Callable[[JSON], Iterable[K]], own_key)
        self._sources.append((informer, mapped))
        SourceDispatch.of(informer).add(self, mapped, update_predicate)

    @property
    def informers(self) -> list[Informer]:
        return [informer for informer, _ in self._sources]

    async def run(self) -> None:
        """Wait for the informers to sync, then reconcile until cancelled."""
        if self.queue.shutting_down:
            old = self.queue
            self.queue = WorkQueue(old.name, rate_limiter=old.rate_limiter, metrics=old.metrics)
        self._stopping = False
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers))
        for informer, mapper in self._sources:
            for obj in informer.cache:
                for key in mapper(obj):
                    self.queue.add(key)
        log.info("controller %s: starting %d workers", self.name, self.workers, extra={"controller": self.name})
        workers = asyncio.create_task(self._run_workers(), name=f"controller/{self.name}")
        try:
            await asyncio.shield(workers)
        except asyncio.CancelledError:
            await self._stop(workers)
            raise

    async def _run_workers(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(self.workers):
                tg.create_task(self._worker(), name=f"controller/{self.name}/worker-{i}")

    async def _stop(self, workers: asyncio.Task[None]) -> None:
        self._stopping = True
        drain = asyncio.create_task(self.queue.shutdown(drain=True))
        done, _ = await asyncio.wait({workers}, timeout=self.drain_timeout)
        if not done:
            log.warning(
                "reconciles still running after %.0fs; cancelling",
                self.drain_timeout,
                extra={"controller": self.name},
            )
            workers.cancel()
            await asyncio.wait({workers})
        drain.cancel()
        log.info("stopped", extra={"controller": self.name})

    async def _worker(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                if not self._stopping:
                    await self._reconcile(key)
            finally:
                self.queue.done(key)

    async def _reconcile(self, key: K) -> None:
        fields = {"controller": self.name, "key": str(key), "reconcile_id": uuid.uuid4().hex[:12]}
        token = reconcile_context.set(fields)
        started = time.monotonic()
        try:
            result = await self.reconciler.reconcile(key)
        except TerminalError as exc:
            self.queue.forget(key)
            self._errors.inc()
            self._total["terminal_error"].inc()
            clog.error("reconcile failed permanently: %s", exc)
        except Exception as exc:
            self.queue.add_rate_limited(key)
            self._errors.inc()
            self._total["error"].inc()
            clog.exception("reconcile failed (retry %d): %s", self.queue.num_requeues(key), exc)
        else:
            self.queue.forget(key)
            if result.requeue_after:
                self.queue.add_after(key, result.requeue_after)
                self._total["requeue_after"].inc()
            else:
                self._total["success"].inc()
        finally:
            self._time.observe(time.monotonic() - started)
            reconcile_context.reset(token)
