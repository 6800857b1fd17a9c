"""The node's ``gateway`` readiness check: is this node's Envoy actually serving?

Asked on every ``/readyz`` probe, so it reads only state the gateway already keeps (no admin
call per probe): the :class:`~atoll.gateway.supervisor.EnvoySupervisor` (the process runs and its
admin ``/ready`` answered ``LIVE`` on the last health poll) and the
:class:`~atoll.gateway.controller.GatewayReconciler` (Envoy ACKed a first configuration; the last
configuration round ended without a NACK). Envoy binds a listener's port when it adds the
listener and NACKs the LDS update when it cannot (``cannot bind '127.0.0.1:1080': Address already
in use``), so "no rejected listener" is also "every listener is bound". The reconciler offers a
rejected listener again every 5 s and clears the rejection once Envoy ACKs, so the check turns ok
by itself when the port is freed. A restarted Envoy that NACKs the snapshot it is re-sent is seen
through the ADS server's own NACK record, and the NACK queues a reconcile so the retries start.

A failing check's reason is one line: Envoy's own message, which names the listener and address.
"""

from __future__ import annotations

from typing import Protocol

from atoll.gateway.xds import ConfigRejected

CHECK = "gateway"


class _Supervisor(Protocol):
    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...


class _Reconciler(Protocol):
    @property
    def first_applied(self) -> bool: ...

    @property
    def rejected(self) -> ConfigRejected | None: ...


def gateway_problem(
    supervisor: _Supervisor, reconciler: _Reconciler | None, current: ConfigRejected | None = None
) -> str | None:
    """Why this node's gateway is not serving, or None. ``current``: the ADS server's NACK of a
    version still current (:meth:`~atoll.gateway.xds.AdsServer.current_rejection`)."""
    if supervisor.pid is None:
        return "envoy is not running"
    if not supervisor.running:
        return "envoy is starting (admin /ready is not LIVE)"
    if reconciler is None or not reconciler.first_applied:
        return "envoy has not loaded its first configuration"
    rejected = reconciler.rejected or current
    if rejected is not None:
        return one_line(str(rejected))
    return None


def one_line(text: str) -> str:
    """Envoy's multi-line NACK messages (one line per listener) as one line."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())
