"""Named health checks (/healthz, /readyz, /livez) as kube-apiserver answers them."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import make_mocked_request

from atoll.apiserver.http.health import HealthChecks
from atoll.pooling.health import binding_checks


def answer(checks: HealthChecks, path: str, ready: bool = True) -> tuple[int, str]:
    request = make_mocked_request("GET", path)
    parts = [p for p in request.path.split("/") if p]
    response = checks.respond(request, parts, ready)
    assert isinstance(response.text, str)
    return response.status, response.text


def test_gating_and_informational_checks() -> None:
    checks = HealthChecks()
    checks.add(lambda: [("etcd", None)])
    checks.add(lambda: [("pooling/cb-a", None), ("pooling/cb-b", "worker cluster API unreachable")], gating=False)
    assert answer(checks, "/readyz") == (200, "ok")
    status, text = answer(checks, "/readyz?verbose")
    assert status == 200 and text.splitlines() == [
        "[+]ping ok", "[+]poststarthook/bootstrap ok", "[+]etcd ok", "[+]pooling/cb-a ok",
        "[-]pooling/cb-b failed: reason withheld (informational)", "readyz check passed"]
    assert answer(checks, "/readyz/pooling/cb-b") == (500, "internal server error: worker cluster API unreachable\n")
    assert answer(checks, "/readyz/pooling/cb-a") == (200, "ok")
    assert answer(checks, "/healthz/nope")[0] == 404
    assert answer(checks, "/livez?verbose") == (200, "[+]ping ok\nlivez check passed\n")


def test_a_failing_gating_check_fails_the_aggregate_unless_excluded() -> None:
    checks = HealthChecks()
    checks.add(lambda: [("etcd", "no connection")])
    status, text = answer(checks, "/healthz")
    assert status == 500 and "[-]etcd failed: reason withheld" in text and text.endswith("healthz check failed\n")
    assert answer(checks, "/healthz?exclude=etcd") == (200, "ok")
    assert answer(checks, "/readyz", ready=False) == (503, "not ready")
    checks.add(lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert "failed" in answer(checks, "/readyz?exclude=etcd&verbose")[1]


def test_binding_checks_name_the_reason() -> None:
    def binding(name: str, phase: str | None, **conds: tuple[str, str, str]) -> dict[str, Any]:
        conditions = [{"type": t, "status": s, "reason": r, "message": m} for t, (s, r, m) in conds.items()]
        return {"metadata": {"name": name}, "status": {"phase": phase, "conditions": conditions} if phase else {}}

    bindings: list[dict[str, Any]] = [
        binding("ready", "Ready", SyncerReady=("True", "SyncerCreated", "")),
        binding("bad", "Failed", Ready=("False", "ValidationFailed", "spec.clusterID: invalid")),
        binding("crashing", "Ready", SyncerReady=("False", "SyncerFailed", "ClientError: refused")),
        binding("new", None),
        {"metadata": {"name": "leaving", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
    ]
    assert binding_checks(bindings, {"ready": False}) == [
        ("pooling/bad", "ValidationFailed: spec.clusterID: invalid"),
        ("pooling/crashing", "syncer failing: ClientError: refused"),
        ("pooling/leaving", None),
        ("pooling/new", "phase Pending"),
        ("pooling/ready", "worker cluster API unreachable"),
    ]
