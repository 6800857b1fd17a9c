"""KusciaJob DAG rules without a server: validation messages, cycles, readiness, the Running
decision (Strict/BestEffort, tolerable, maxParallelism, priority) and the stage-command table."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from atoll.api.kuscia_tasks import select_deploy_template
from atoll.controllers.kusciajob import constants as c
from atoll.controllers.kusciajob.actions import stopped_parties
from atoll.controllers.kusciajob.dag import default_task_id, find_cycle, ready_tasks, tasks_of, validate
from atoll.controllers.kusciajob.phases import decide
from atoll.controllers.kusciajob.stages import Command, pending_command, plan
from atoll.controllers.kusciajob.taskspec import divide_resources, kuscia_task

JSON = dict[str, Any]
DOMAINS = {"alice", "bob"}
IMAGES = {"app"}


def task(alias: str, *deps: str, task_id: str = "", priority: int = 0, tolerable: bool = False, **kw: Any) -> JSON:
    body: JSON = {
        "alias": alias,
        "appImage": kw.pop("image", "app"),
        "taskInputConfig": "{}",
        "parties": kw.pop("parties", [{"domainID": "alice"}, {"domainID": "bob"}]),
        "priority": priority,
        "tolerable": tolerable,
    }
    body.update(kw)
    if task_id:
        body["taskID"] = task_id
    if deps:
        body["dependencies"] = list(deps)
    return body


def job(*tasks: JSON, initiator: str = "alice", **spec: Any) -> JSON:
    return {
        "metadata": {"name": "j", "namespace": "cross-domain", "uid": "u-1"},
        "spec": {"initiator": initiator, "tasks": list(tasks), **spec},
    }


def check(j: JSON) -> str | None:
    return validate(j, domain_exists=DOMAINS.__contains__, app_image_exists=IMAGES.__contains__)


# -- validation -------------------------------------------------------------------------------------


def test_valid_dag_passes() -> None:
    assert check(job(task("a"), task("b", "a"), task("c", "a", "b"))) is None


def test_validation_names_the_culprit() -> None:
    assert check(job(task("a"), task("b", "nope"))) == "task 'b' depends on unknown task alias 'nope'"
    assert check(job(task("a"), task("a"))) == "duplicate task alias 'a'"
    assert check(job(task("a", task_id="x"), task("b", task_id="x"))) == "duplicate task ID 'x'"
    assert check(job(task("a"), initiator="carol")) == "initiator domain 'carol' does not exist"
    parties = [{"domainID": "alice"}, {"domainID": "dave"}]
    assert check(job(task("a", parties=parties))) == "task 'a': party domain 'dave' does not exist"
    assert check(job(task("a", image="missing"))) == "task 'a': AppImage 'missing' does not exist"
    too_many = job(*(task(f"t{i}") for i in range(129)))
    assert check(too_many) == "the job has 129 tasks; at most 128 are allowed"
    assert check(job()) == "the job has no tasks (spec.tasks is empty)"
    assert "not an RFC 1123 label" in (check(job(task("a", task_id="Bad_ID"))) or "")


def test_cycle_is_named() -> None:
    message = check(job(task("a", "c"), task("b", "a"), task("c", "b"), task("d")))
    assert message == "cycled dependencies: a -> c -> b -> a"
    assert check(job(task("a", "a"))) == "cycled dependencies: a -> a"


def test_default_task_ids_are_stable_dns_labels() -> None:
    tid = default_task_id("secretflow-task-20230406162606" * 3, "uid-1", "psi")
    assert tid == default_task_id("secretflow-task-20230406162606" * 3, "uid-1", "psi")
    assert len(tid) <= 63 and tid[-13] == "-"
    assert default_task_id("j", "uid-1", "a") != default_task_id("j", "uid-1", "b")
    assert tasks_of(job(task("a")))[0].task_id == default_task_id("j", "u-1", "a")


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(1, 12))
    names = [f"t{i}" for i in range(n)]
    return {name: draw(st.lists(st.sampled_from(names), max_size=4, unique=True)) for name in names}


def _has_cycle(edges: dict[str, list[str]]) -> bool:
    """Kahn's algorithm (Kuscia's own check): strip tasks without pending deps; leftovers = cycle."""
    pending = {k: set(v) for k, v in edges.items()}
    while True:
        free = [k for k, v in pending.items() if not v]
        if not free:
            return bool(pending)
        for k in free:
            del pending[k]
        for v in pending.values():
            v.difference_update(free)


@given(dags())
@settings(max_examples=300, deadline=None)
def test_find_cycle_agrees_with_kahn_and_returns_a_real_cycle(edges: dict[str, list[str]]) -> None:
    cycle = find_cycle(edges)
    assert (cycle is not None) == _has_cycle(edges)
    if cycle is not None:
        assert cycle[0] == cycle[-1]
        for a, b in itertools.pairwise(cycle):
            assert b in edges[a]


@given(dags())
@settings(max_examples=200, deadline=None)
def test_an_acyclic_dag_runs_to_completion_in_dependency_order(edges: dict[str, list[str]]) -> None:
    j = job(*(task(name, *deps) for name, deps in edges.items()))
    if find_cycle(edges) is not None:
        assert (check(j) or "").startswith("cycled dependencies: ")
        return
    assert check(j) is None
    tasks = tasks_of(j)
    phases: dict[str, str] = {}
    order: list[str] = []
    for _ in range(len(tasks) + 1):
        d = decide(tasks, phases, {}, mode=c.STRICT, max_parallelism=3)
        if d.phase == c.SUCCEEDED:
            break
        assert d.phase == c.RUNNING and d.to_create
        for t in d.to_create:
            assert all(dep in order for dep in edges[t.alias])
            phases[t.task_id] = c.TASK_SUCCEEDED
            order.append(t.alias)
    assert sorted(order) == sorted(edges)


# -- the Running decision ---------------------------------------------------------------------------


def test_priority_and_max_parallelism() -> None:
    tasks = tasks_of(job(task("low", priority=1), task("high", priority=9), task("mid", priority=5)))
    assert [t.alias for t in ready_tasks(tasks, {})] == ["high", "mid", "low"]
    d = decide(tasks, {}, {}, mode=c.STRICT, max_parallelism=2)
    assert [t.alias for t in d.to_create] == ["high", "mid"]
    running = {tasks[1].task_id: c.TASK_RUNNING, tasks[2].task_id: ""}
    assert decide(tasks, running, {}, mode=c.STRICT, max_parallelism=2).to_create == []


def test_strict_fails_on_a_critical_task_and_best_effort_lets_branches_finish() -> None:
    tasks = tasks_of(job(task("a"), task("b"), task("c", "b")))
    a, b, _ = (t.task_id for t in tasks)
    phases = {a: c.TASK_FAILED, b: c.TASK_RUNNING}
    strict = decide(tasks, phases, {a: "party bob: boom"}, mode=c.STRICT, max_parallelism=2)
    assert strict.phase == c.FAILED and strict.message == f"task 'a' ({a}) failed: party bob: boom"
    best = decide(tasks, phases, {}, mode=c.BEST_EFFORT, max_parallelism=2)
    assert best.phase == c.RUNNING
    done = decide(tasks, {**phases, b: c.TASK_SUCCEEDED}, {}, mode=c.BEST_EFFORT, max_parallelism=2)
    assert [t.alias for t in done.to_create] == ["c"]


def test_tolerable_failure_does_not_fail_the_job() -> None:
    tasks = tasks_of(job(task("a", tolerable=True), task("b")))
    a, b = (t.task_id for t in tasks)
    for mode in (c.STRICT, c.BEST_EFFORT):
        assert decide(tasks, {a: c.TASK_FAILED, b: c.TASK_SUCCEEDED}, {}, mode=mode, max_parallelism=2).phase == (
            c.SUCCEEDED
        )


def test_task_waiting_for_a_failed_tolerable_task_fails_the_job_instead_of_hanging() -> None:
    tasks = tasks_of(job(task("a", tolerable=True), task("b", "a")))
    d = decide(tasks, {tasks[0].task_id: c.TASK_FAILED}, {}, mode=c.BEST_EFFORT, max_parallelism=1)
    assert d.phase == c.FAILED and d.message == "task 'b' cannot run: it depends on task 'a', which failed"


# -- stage commands ---------------------------------------------------------------------------------


def test_stage_table() -> None:
    stop, cancel = Command("Stop", "1", "alice"), Command("Cancel", "2", "")
    assert plan(stop, {"phase": c.RUNNING}, "alice").phase == c.FAILED
    assert plan(stop, {"phase": c.RUNNING}, "alice").message == "Party: alice execute the cmd: Stop."
    assert plan(stop, {"phase": c.SUCCEEDED}, "alice").phase is None
    assert plan(stop, {"phase": c.FAILED, "completionTime": "t"}, "alice").phase is None
    assert plan(cancel, {"phase": c.FAILED, "completionTime": "t"}, "alice").phase == c.CANCELLED
    assert plan(Command("Suspend", "3", ""), {"phase": c.RUNNING}, "a").phase == c.SUSPENDED
    assert plan(Command("Suspend", "3", ""), {"phase": c.FAILED}, "a").phase is None
    restart = Command("Restart", "4", "")
    assert plan(restart, {"phase": c.SUSPENDED}, "a").restart
    assert plan(restart, {"phase": c.FAILED, "reason": "TaskFailed"}, "a").restart
    assert not plan(restart, {"phase": c.FAILED, "reason": c.REASON_VALIDATE_FAILED}, "a").restart
    assert not plan(restart, {"phase": c.RUNNING}, "a").restart


def test_a_stage_command_is_handled_once_per_version() -> None:
    j = job(task("a"))
    j["metadata"]["labels"] = {c.LABEL_JOB_STAGE: "Stop", c.LABEL_JOB_STAGE_VERSION: "1"}
    command = pending_command(j)
    assert command is not None and command.token == "Stop/1"
    j["metadata"]["annotations"] = {c.ANN_STAGE_HANDLED: "Stop/1"}
    assert pending_command(j) is None
    j["metadata"]["labels"][c.LABEL_JOB_STAGE_VERSION] = "2"
    assert pending_command(j) is not None


# -- the KusciaTask -----------------------------------------------------------------------------------


def test_kuscia_task_carries_kuscia_labels_owner_and_divided_resources() -> None:
    image = {
        "spec": {
            "deployTemplates": [
                {"name": "x", "role": "server", "spec": {"containers": [{"name": "s"}]}},
                {"name": "y", "replicas": 2, "spec": {"containers": [{"name": "m"}, {"name": "n"}]}},
            ]
        }
    }
    assert select_deploy_template(image, "server")["name"] == "x"  # type: ignore[index]
    assert select_deploy_template(image, "client")["name"] == "y"  # type: ignore[index]
    parties = [{"domainID": "alice", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}, {"domainID": "bob"}]
    j = job(task("a", task_id="t-1", parties=parties, scheduleConfig={"lifecycleSeconds": 60}))
    body = kuscia_task(j, tasks_of(j)[0], image)
    meta = body["metadata"]
    assert meta["name"] == "t-1" and meta["namespace"] == "cross-domain"
    assert meta["labels"] == {"kuscia.secretflow/controller": "kuscia-job", "kuscia.secretflow/job-uid": "u-1"}
    assert meta["annotations"]["kuscia.secretflow/job-id"] == "j"
    assert meta["annotations"]["kuscia.secretflow/task-alias"] == "a"
    assert meta["ownerReferences"][0]["kind"] == "KusciaJob" and meta["ownerReferences"][0]["controller"] is True
    alice, bob = body["spec"]["parties"]
    assert alice["appImageRef"] == "app" and "template" not in bob
    assert alice["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    assert body["spec"]["scheduleConfig"] == {"lifecycleSeconds": 60}
    assert divide_resources({"limits": {"cpu": "1"}}, 3) == {"limits": {"cpu": "0.333333"}}


def test_stopping_a_task_fails_its_unfinished_and_missing_parties() -> None:
    kt = {
        "spec": {"parties": [{"domainID": "alice"}, {"domainID": "bob", "role": "guest"}, {"domainID": "carol"}]},
        "status": {
            "partyTaskStatus": [
                {"domainID": "alice", "phase": "Succeeded"},
                {"domainID": "bob", "role": "guest", "phase": "Running"},
            ]
        },
    }
    assert stopped_parties(kt) == [
        {"domainID": "alice", "phase": "Succeeded"},
        {"domainID": "bob", "role": "guest", "phase": "Failed", "message": "Job was stopped"},
        {"domainID": "carol", "phase": "Failed", "message": "Job was stopped"},
    ]
