"""Pure workload arithmetic: rolling-update fenceposts and steps, Job completion indexes and
backoff, cron schedules with time zones, Deployment conditions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from atoll.api.cron import ScheduleError, parse
from atoll.controllers.deployment import rollout as ro
from atoll.controllers.deployment import status as st
from atoll.controllers.job import plan


def deployment(replicas: int, surge: object = "25%", unavailable: object = "25%", kind: str = "RollingUpdate") -> dict:
    strategy: dict = {"type": kind}
    if kind == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "d", "generation": 1}, "spec": {"replicas": replicas, "strategy": strategy}}


def rs(replicas: int, available: int = 0) -> dict:
    return {"metadata": {"name": "r"}, "spec": {"replicas": replicas}, "status": {"availableReplicas": available}}


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "want"), [
    (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailable down
    (4, 0, 0, (0, 1)),  # both zero would deadlock
    (3, 1, "50%", (1, 1)),
    (200, "25%", "25%", (50, 50)),
])
def test_fenceposts(replicas: int, surge: object, unavailable: object, want: tuple[int, int]) -> None:
    assert ro.fenceposts(deployment(replicas, surge, unavailable)) == want


def test_recreate_has_no_fenceposts() -> None:
    assert ro.fenceposts(deployment(3, kind="Recreate")) == (0, 0)


def test_rolling_step_grows_the_new_set_within_the_surge_and_shrinks_old_within_availability() -> None:
    d = deployment(10)  # surge 3, unavailable 2
    old, new = rs(10, 10), rs(0)
    assert ro.new_rs_size(d, [old, new], new) == 3
    new = rs(3, 0)  # 13 pods, 8 must stay available, 3 new ones are not yet: 2 old ones may go
    assert ro.old_scale_down_budget(d, [old, new], new) == 13 - 8 - 3
    assert ro.available_budget(d, [old, new]) == 10 - 8
    new = rs(3, 3)
    assert ro.old_scale_down_budget(d, [old, new], new) == 13 - 8
    assert ro.available_budget(d, [old, new]) == 13 - 8


def test_template_hash_ignores_nothing_but_the_hash_label() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    hashed = {"metadata": {"labels": {"app": "x", ro.HASH_LABEL: "abc"}}, "spec": template["spec"]}
    assert ro.same_template({"spec": {"template": hashed}}, {"spec": {"template": template}})
    assert ro.template_hash(template) != ro.template_hash(template, 1)
    assert ro.template_hash(template).isalnum() and len(ro.template_hash(template)) == 10


def test_progress_deadline_and_completion() -> None:
    d = deployment(2)
    d["spec"]["progressDeadlineSeconds"] = 60
    new = {"metadata": {"name": "d-1"}, "spec": {"replicas": 2}, "status": {"replicas": 2, "availableReplicas": 2,
                                                                           "readyReplicas": 2}}
    status = st.calculate(d, [new], new)
    assert st.complete(d, status)
    assert st.with_progress(d, status, new, 1000.0) is None
    assert st.find(status["conditions"], st.PROGRESSING)["reason"] == st.NEW_RS_AVAILABLE
    stuck = {"metadata": {"name": "d-1"}, "spec": {"replicas": 2}, "status": {}}
    epoch = "1970-01-01T00:00:00Z"
    d["status"] = {"conditions": [{"type": st.PROGRESSING, "status": "True", "reason": st.RS_UPDATED,
                                   "lastUpdateTime": epoch, "lastTransitionTime": epoch}]}
    status = st.calculate(d, [stuck], stuck)
    assert st.with_progress(d, status, stuck, 30.0) == pytest.approx(30.5)
    st.with_progress(d, status, stuck, 61.0)
    cond = st.find(status["conditions"], st.PROGRESSING)
    assert (cond["status"], cond["reason"]) == ("False", st.TIMED_OUT)


def test_completion_indexes_round_trip() -> None:
    assert plan.format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert plan.parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}
    assert plan.format_indexes(set()) == "" and plan.parse_indexes("") == set()


def test_wanted_active_and_success() -> None:
    spec = {"parallelism": 2, "completions": 5}
    assert plan.wanted_active(spec, plan.Counts(4, 0)) == 1
    assert plan.succeeded(spec, plan.Counts(5, 0), 0)
    work_queue = {"parallelism": 3}
    assert plan.wanted_active(work_queue, plan.Counts(0, 0)) == 3
    assert plan.wanted_active(work_queue, plan.Counts(1, 0)) == 0
    assert not plan.succeeded(work_queue, plan.Counts(1, 0), 2) and plan.succeeded(work_queue, plan.Counts(1, 0), 0)


def test_backoff_doubles_from_ten_seconds() -> None:
    def failed(at: str) -> dict:
        return {"metadata": {"creationTimestamp": at}, "status": {"containerStatuses": [
            {"state": {"terminated": {"finishedAt": at}}}]}}

    one = [failed("1970-01-01T00:01:40Z")]  # t = 100
    assert plan.backoff_remaining(one, 10, 105) == 5
    two = [failed("1970-01-01T00:01:30Z"), failed("1970-01-01T00:01:40Z")]
    assert plan.backoff_remaining(two, 10, 105) == 15
    assert plan.backoff_remaining([failed("1970-01-01T00:00:00Z")] * 10, 10, 0) == plan.BACKOFF_MAX


def test_cron_schedules_in_a_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    weekdays_9 = parse("0 9 * * 1-5", "Europe/Berlin")
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=berlin).timestamp()
    assert datetime.fromtimestamp(weekdays_9.next_after(friday_evening), berlin) == datetime(
        2026, 12, 7, 9, 0, tzinfo=berlin)  # Monday
    every5 = parse("*/5 * * * *")
    assert every5.last_due(0, 3600) == (3600.0, 12)
    assert parse("@hourly").next_after(59) == 3600
    either = parse("0 0 13 * 5")  # the 13th OR a Friday (Vixie cron)
    assert datetime.fromtimestamp(either.next_after(datetime(2026, 2, 1).timestamp())).day in (6, 13)


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "*/0 * * * *", "5-1 * * * *", "TZ=UTC * * * * *"])
def test_bad_cron_schedules(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse(bad)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="time zone"):
        parse("* * * * *", "Mars/Olympus")
