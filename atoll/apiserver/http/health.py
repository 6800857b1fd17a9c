"""``/healthz``, ``/livez`` and ``/readyz`` with named checks, as kube-apiserver answers them.

``GET /readyz`` → ``ok`` (200) or the list of checks with the failing ones marked and
``readyz check failed``; ``?verbose`` always lists every check (``[+]name ok`` /
``[-]name failed: reason withheld``) ending ``readyz check passed|failed``; ``?exclude=name``
(repeatable) leaves checks out; ``GET /readyz/<name>`` answers one check, with its reason when it
fails (500 ``internal server error: <reason>``). The built-in check ``ping`` is the listener; on
``/readyz`` and ``/healthz`` the ``poststarthook/bootstrap`` check is the node's start-up work
(CRDs, namespaces), which answers 503 ``not ready`` while pending as before.

Modules add checks through *providers* (a callable returning ``(name, reason or None)`` pairs,
asked on every probe). A provider's checks may be **informational**: listed, individually
queryable, but not deciding the aggregate — the pooling bindings' checks are, because a
worker cluster's outage must not take the computing cluster's API server out of its load
balancer (``docs/pooling.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

Provider = Callable[[], Iterable[tuple[str, str | None]]]
"""The current checks: (name, None when healthy else the reason)."""
BOOTSTRAP = "poststarthook/bootstrap"


@dataclass(slots=True)
class HealthChecks:
    providers: list[tuple[Provider, bool]] = field(default_factory=list)
    """(provider, gating): a non-gating provider's failures do not fail the aggregate."""

    def add(self, provider: Provider, *, gating: bool = True) -> None:
        self.providers.append((provider, gating))

    def _checks(self) -> list[tuple[str, str | None, bool]]:
        out: list[tuple[str, str | None, bool]] = []
        for provider, gating in self.providers:
            try:
                out += [(name, reason, gating) for name, reason in provider()]
            except Exception as exc:  # a broken provider is a failing check, never a 500 traceback
                out.append((f"provider-{len(out)}", f"{type(exc).__name__}: {exc}", gating))
        return out

    def respond(self, request: web.Request, parts: list[str], ready: bool) -> web.Response:
        head = parts[0]
        checks: list[tuple[str, str | None, bool]] = [("ping", None, True)]
        if head != "livez":
            checks.append((BOOTSTRAP, None if ready else "not finished", True))
            checks += self._checks()
        elif not ready:
            checks = [("ping", "not listening", True)]
        if len(parts) > 1:
            return _one(checks, "/".join(parts[1:]))
        excluded = set(request.query.getall("exclude", []))
        checks = [c for c in checks if c[0] not in excluded]
        failed = any(reason is not None and gating for _, reason, gating in checks)
        verbose = "verbose" in request.query
        if not ready and not verbose:
            return web.Response(text="not ready", status=503)
        if not failed and not verbose:
            return web.Response(text="ok")
        lines = [f"[+]{name} ok" if reason is None else f"[-]{name} failed: reason withheld"
                 + ("" if gating else " (informational)") for name, reason, gating in checks]
        lines.append(f"{head} check {'failed' if failed else 'passed'}")
        status = (503 if not ready else 500) if failed else 200
        return web.Response(text="\n".join(lines) + "\n", status=status)


def _one(checks: list[tuple[str, str | None, bool]], name: str) -> web.Response:
    for check, reason, _ in checks:
        if check == name:
            if reason is None:
                return web.Response(text="ok")
            return web.Response(text=f"internal server error: {reason}\n", status=500)
    return web.Response(text=f"no such health check: {name}\n", status=404)
