"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's algorithm and defaults.

Clock skew (the reasoning from client-go's ``leaderelection.go``): remote timestamps in the Lease
(``acquireTime``, ``renewTime``) are written for humans and other tools but never trusted here. A
candidate records *its own* monotonic time whenever it observes the Lease's spec change; the
holder is considered gone only when the spec has not changed for ``lease_duration`` of local
time. The leader gives up unless it renews within ``renew_deadline`` (< ``lease_duration``), so
it stops working before any other candidate may start, as long as clocks *advance* at similar
rates (they need not agree). Writes use the Lease's ``resourceVersion``, so two candidates racing
for an expired Lease cannot both win: one gets 409 Conflict.

Defaults are client-go's: 15 s lease, 10 s renew deadline, 2 s retry period (jittered by up to 120 % while
waiting to acquire). Losing the lease cancels the leader's work and calls ``on_stopped_leading``;
the elector then campaigns again. On cancellation the lease is released (holder cleared) so a
successor takes over at once instead of waiting for expiry.

Renewal costs one request, as client-go's optimistic fast path does: while its lease is valid the
leader PUTs the Lease it last wrote (its ``resourceVersion``, a new ``renewTime``) without reading
it first; a conflict (someone else wrote it) falls back to the read-then-write attempt in the same
try. ``renew_period`` (default: ``retry_period``) is the leader's pause between successful
renewals; a failed renewal is retried every ``retry_period`` until ``renew_deadline``. A leader
may renew less often than standbys poll: how soon a standby takes over after a crash depends on
``lease_duration`` and the standby's own polls, not on how often the dead leader renewed; safety
depends only on ``renew_deadline < lease_duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.api.timestamps import format_micro_time
from atoll.client import Client, ClientError
from atoll.runtime import metrics

JSON = dict[str, Any]
log = logging.getLogger(__name__)

LEASES = ResourceDef("coordination.k8s.io", "v1", "Lease", "leases", "lease", True)


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Campaign for one Lease; run the leader's work only while holding it."""

    def __init__(
        self,
        client: Client,
        *,
        name: str,
        namespace: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        renew_period: float | None = None,
        release_on_cancel: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")
        if renew_period is not None and not 0 < renew_period < renew_deadline:
            raise ValueError("need 0 < renew_period < renew_deadline")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.renew_period = retry_period if renew_period is None else renew_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._observed_spec: JSON | None = None
        self._observed_at = 0.0
        self._written: JSON | None = None  # the Lease as our last successful write returned it
        self._leading = metrics.leader.labels(f"{namespace}/{name}", self.identity)
        self.is_leader = False

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    @is_leader.setter
    def is_leader(self, value: bool) -> None:
        self._is_leader = value
        self._leading.set(1 if value else 0)  # ``atoll_leader`` on /metrics

    # -- the campaign ------------------------------------------------------------------------

    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        """Acquire, lead, and re-campaign after a loss, until cancelled or the work returns."""
        while True:
            await self._acquire()
            try:
                finished = await self._lead(on_started_leading)
            finally:
                self.is_leader = False
                if on_stopped_leading is not None:
                    result = on_stopped_leading()
                    if inspect.isawaitable(result):
                        await result
            if finished:
                return

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                break
            await self._clock.sleep(self.retry_period * (1.0 + random.random() * 1.2))
        self.is_leader = True
        log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)

    async def _lead(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work`` while renewing; True if the work returned, False if the lease was lost."""
        work_task = asyncio.ensure_future(work())
        renew_task = asyncio.create_task(self._renew_loop(), name=f"leader/{self.name}/renew")
        try:
            await asyncio.wait({work_task, renew_task}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await _cancel(renew_task, work_task)
            if self.release_on_cancel:
                await self._release()
            raise
        if renew_task.done():
            log.warning("%s lost lease %s/%s; stopping leader work", self.identity, self.namespace, self.name)
            await _cancel(work_task)
            return False
        await _cancel(renew_task)
        await self._release()
        work_task.result()  # re-raise the work's exception, if any
        return True

    async def _renew_loop(self) -> None:
        """Returns when leadership is lost."""
        last_renew = self._clock.monotonic()
        renewed = True
        while True:
            await self._clock.sleep(self.renew_period if renewed else self.retry_period)
            left = self.renew_deadline - (self._clock.monotonic() - last_renew)
            try:
                async with asyncio.timeout(max(left, 0.001)):
                    renewed = await self._attempt()
            except TimeoutError:
                renewed = False
            if renewed:
                last_renew = self._clock.monotonic()
            elif self._held_by_other() or self._clock.monotonic() - last_renew >= self.renew_deadline:
                return

    # -- one attempt -------------------------------------------------------------------------

    async def _attempt(self) -> bool:
        try:
            return await self._try_acquire_or_renew()
        except (Conflict, AlreadyExists):
            return False
        except (APIError, ClientError) as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = format_micro_time(self._clock.now())
        if await self._renew_optimistically(now):
            return True
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            initial = self._spec(now, now, transitions=0)
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": initial,
            }
            created = await self.client.create(LEASES, body, self.namespace)
            self._observe(created.get("spec") or {})
            self._written = created
            return True
        spec: JSON = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec):
            return False
        if holder == self.identity:
            new_spec = self._spec(spec.get("acquireTime") or now, now, spec.get("leaseTransitions") or 0)
        else:
            new_spec = self._spec(now, now, (spec.get("leaseTransitions") or 0) + 1)
        lease["spec"] = new_spec
        updated = await self.client.update(LEASES, lease)
        self._observe(updated.get("spec") or {})
        self._written = updated
        return True

    async def _renew_optimistically(self, now: str) -> bool:
        """client-go's fast path: the leader, its lease still valid, writes the Lease it last wrote
        with a new renewTime, without reading it. False (nothing changed) when that does not apply
        or the write fails: someone else wrote the Lease since, or the server refused."""
        written, spec = self._written, self._observed_spec
        if not self.is_leader or written is None or spec is None or self._expired(spec):
            return False
        if spec.get("holderIdentity") != self.identity:
            return False
        body = {**written, "spec": self._spec(spec.get("acquireTime") or now, now, spec.get("leaseTransitions") or 0)}
        try:
            updated = await self.client.update(LEASES, body)
        except (APIError, ClientError) as exc:
            self._written = None
            if not isinstance(exc, (Conflict, NotFound)):
                log.warning("lease %s/%s: optimistic renewal failed: %s", self.namespace, self.name, exc)
            return False
        self._observe(updated.get("spec") or {})
        self._written = updated
        return True

    def _spec(self, acquire_time: str, renew_time: str, transitions: int) -> JSON:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.lease_duration),
            "acquireTime": acquire_time,
            "renewTime": renew_time,
            "leaseTransitions": transitions,
        }

    def _observe(self, spec: JSON) -> None:
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = self._clock.monotonic()

    def _expired(self, spec: JSON) -> bool:
        recorded = spec.get("leaseDurationSeconds")
        # leaseDurationSeconds is whole seconds: when it is our own duration rounded up, trust our
        # exact (possibly fractional) setting; otherwise another configuration wrote it.
        duration = (
            self.lease_duration if recorded in (None, math.ceil(self.lease_duration)) else float(recorded)
        )
        return self._clock.monotonic() > self._observed_at + duration

    def _held_by_other(self) -> bool:
        holder = (self._observed_spec or {}).get("holderIdentity") or ""
        return bool(holder) and holder != self.identity

    async def _release(self) -> None:
        """Clear the holder so a successor need not wait for expiry (client-go's release)."""
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = format_micro_time(self._clock.now())
            lease["spec"] = {
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": spec.get("leaseTransitions") or 0,
            }
            self._written = None
            await self.client.update(LEASES, lease)
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except (APIError, ClientError) as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
