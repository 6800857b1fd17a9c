"""Pods as processes on an in-process agent: lifecycle, status, logs, restarts, deletion, volumes."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from atoll.agent.runp import process
from atoll.api import kinds
from atoll.client import Client
from tests.conftest import RunningServer, eventually, kubectl_binary
from tests.integration.agents import pod, processes_with, running_agent, wait_pod_gone

JSON = dict[str, Any]
NODE = "alice-node"


async def phase_of(client: Client, name: str, *phases: str) -> JSON:
    current = await client.get(kinds.PODS, name, "default")
    assert (current.get("status") or {}).get("phase") in phases, current.get("status")
    return current


def main_status(p: JSON) -> JSON:
    return dict(p["status"]["containerStatuses"][0])


async def test_pod_runs_to_succeeded_with_logs(
    api_server: RunningServer, tmp_path: Path, kubectl_env: dict[str, str]
) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        script = "echo start; hello $(NAME); sleep 1.5; echo done"
        await c.create(kinds.PODS, pod("ok", NODE, ["sh", "-c", script], restartPolicy="Never",
                                       container={"env": [{"name": "NAME", "value": "alice"}]}))
        running = await eventually(lambda: phase_of(c, "ok", "Running"), 30)
        assert main_status(running)["state"]["running"]["startedAt"]
        assert main_status(running)["ready"] is True
        conditions = {x["type"]: x["status"] for x in running["status"]["conditions"]}
        assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                              "ContainersReady": "True", "PodScheduled": "True"}
        assert running["status"]["podIP"] == running["status"]["hostIP"] == "127.0.0.1"
        kubectl = kubectl_binary()
        follow = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(api_server.kubeconfig), "logs", "-f", "ok", env=kubectl_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(follow.communicate(), 20)
        assert out.decode() == "start\nhello from the image alice\ndone\n", err
        done = await eventually(lambda: phase_of(c, "ok", "Succeeded"), 30)
        term = main_status(done)["state"]["terminated"]
        assert term["exitCode"] == 0 and term["reason"] == "Completed"
        assert term["startedAt"] <= term["finishedAt"]
        ready = next(x for x in done["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
        text = await c.request("GET", "/api/v1/namespaces/default/pods/ok/log", params={"tailLines": "2"})
        assert text == "hello from the image alice\ndone\n"
        plain = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(api_server.kubeconfig), "logs", "ok", "--limit-bytes=5", env=kubectl_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(plain.communicate(), 20)
        assert out == b"start", err


async def test_failing_pod_reports_error_exit_code_and_message(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        await c.create(kinds.PODS, pod("bad", NODE, ["sh", "-c", "echo 'disk full' > /dev/termination-log; exit 3"],
                                       restartPolicy="Never"))
        await c.create(kinds.PODS, pod("bad-logs", NODE, ["sh", "-c", "echo line1; echo boom >&2; exit 7"],
                                       restartPolicy="Never",
                                       container={"terminationMessagePolicy": "FallbackToLogsOnError"}))
        failed = await eventually(lambda: phase_of(c, "bad", "Failed"), 30)
        term = main_status(failed)["state"]["terminated"]
        assert (term["exitCode"], term["reason"], term["message"]) == (3, "Error", "disk full\n")
        failed = await eventually(lambda: phase_of(c, "bad-logs", "Failed"), 30)
        term = main_status(failed)["state"]["terminated"]
        assert (term["exitCode"], term["reason"], term["message"]) == (7, "Error", "line1\nboom\n")


async def test_a_process_that_cannot_start_is_a_start_error_not_an_agent_crash(
    api_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_spawn = process.spawn

    def spawn(command: list[str], **kwargs: Any) -> process.Spawned:
        if "cannot-start" in " ".join(command):
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))  # e.g. the pid limit reached
        return real_spawn(command, **kwargs)

    monkeypatch.setattr(process, "spawn", spawn)
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        await c.create(kinds.PODS, pod("nostart", NODE, ["sh", "-c", "echo cannot-start"], restartPolicy="Never"))
        failed = await eventually(lambda: phase_of(c, "nostart", "Failed"), 30)
        term = main_status(failed)["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (128, "StartError"), term
        assert "Resource temporarily unavailable" in term["message"]
        # the agent is still running pods
        await c.create(kinds.PODS, pod("after", NODE, ["sh", "-c", "true"], restartPolicy="Never"))
        await eventually(lambda: phase_of(c, "after", "Succeeded"), 30)


async def test_always_pod_restarts_with_backoff(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        await c.create(kinds.PODS, pod("crash", NODE, ["sh", "-c", "echo attempt; exit 1"]))

        async def restarted(count: int) -> JSON:
            current = await c.get(kinds.PODS, "crash", "default")
            statuses = (current.get("status") or {}).get("containerStatuses") or []
            assert statuses and statuses[0]["restartCount"] >= count, statuses
            return current

        loop = asyncio.get_running_loop()
        started = loop.time()
        await eventually(lambda: restarted(1), 15)
        crashing = await eventually(lambda: restarted(2), 15)
        elapsed = loop.time() - started
        assert elapsed >= 1.0 + 2.0 - 0.5  # back-off 1 s then 2 s (test timers)
        assert crashing["status"]["phase"] == "Running"
        cs = main_status(crashing)
        assert cs["lastState"]["terminated"]["exitCode"] == 1

        async def in_backoff() -> bool:
            current = await c.get(kinds.PODS, "crash", "default")
            waiting = main_status(current)["state"].get("waiting") or {}
            return waiting.get("reason") == "CrashLoopBackOff"

        await eventually(in_backoff, 10)
        previous = await c.request("GET", "/api/v1/namespaces/default/pods/crash/log", params={"previous": "true"})
        assert previous == "attempt\n"


async def test_unknown_image_waits_with_err_image_never_pull(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        await c.create(kinds.PODS, pod("noimg", NODE, ["true"], container={"image": "missing:v9"}))

        async def waiting() -> JSON:
            current = await c.get(kinds.PODS, "noimg", "default")
            statuses = (current.get("status") or {}).get("containerStatuses") or []
            assert statuses and statuses[0]["state"].get("waiting", {}).get("reason") == "ErrImageNeverPull", statuses
            return current

        current = await eventually(waiting)
        assert current["status"]["phase"] == "Pending"
        message = current["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        assert "pull policy IfNotPresent" in message and "atoll image load" in message, message  # not "Never"

        async def event() -> bool:
            events = await c.list(kinds.EVENTS, "default")
            return any(e["reason"] == "ErrImageNeverPull" and e["involvedObject"]["name"] == "noimg"
                       for e in events["items"])

        await eventually(event)


async def test_graceful_delete_ends_process_group(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        marker = "graceful-marker-123"
        # ignores SIGTERM: only the SIGKILL after the grace period ends it; a grandchild too
        script = f"trap '' TERM; (sleep 1000; echo {marker}) & while true; do sleep 0.1; done"
        await c.create(kinds.PODS, pod("long", NODE, ["sh", "-c", script], terminationGracePeriodSeconds=2))
        await eventually(lambda: phase_of(c, "long", "Running"), 30)
        assert processes_with(marker)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deleted = await c.delete(kinds.PODS, "long", "default")
        assert deleted["metadata"]["deletionTimestamp"] and deleted["metadata"]["deletionGracePeriodSeconds"] == 2

        await wait_pod_gone(c, "long", timeout=10)
        assert 1.5 <= loop.time() - started < 10  # after the 2 s grace, long before the default 30 s
        # the group was SIGKILLed: a killed process lingers until the kernel has run its exit
        await eventually(lambda: processes_with(marker) == [], 10)
        # the sandbox is removed on a worker thread after the confirming delete
        await eventually(lambda: not any((tmp_path / "alice" / "agent" / "pods").iterdir()), 10)


async def test_env_volumes_templates_and_init_containers(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        await c.create(kinds.CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"},
                                          "data": {"greeting": "hi", "conf.txt": "port={{.PORT}} "
                                                   "name={{{.ALLOCATED_PORTS.ports[name=web].port}}}"}})
        await c.create(kinds.SECRETS, {"metadata": {"name": "sec", "namespace": "default"},
                                       "stringData": {"token": "s3cr3t"}})
        spec: JSON = pod("full", NODE, ["sh", "-c", "cat /etc/cfg/greeting; echo; cat /etc/tpl/conf.txt; echo; "
                                        "echo $GREETING $TOKEN $POD; cat /data/init.txt; cat /etc/sec/token"],
                         restartPolicy="Never")
        spec["metadata"]["annotations"] = {"kuscia.secretflow/config-template-volumes": "tpl"}
        spec["spec"]["volumes"] = [
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "tpl", "configMap": {"name": "cfg", "items": [{"key": "conf.txt", "path": "conf.txt"}]}},
            {"name": "sec", "secret": {"secretName": "sec"}},
            {"name": "data", "emptyDir": {}},
        ]
        main = spec["spec"]["containers"][0]
        main["env"] = [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "PORT", "value": "8080"},
            {"name": "ALLOCATED_PORTS", "value": '{"ports":[{"name":"web","port":9090}]}'},
        ]
        main["volumeMounts"] = [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "tpl", "mountPath": "/etc/tpl"},
                                {"name": "data", "mountPath": "/data"}, {"name": "sec", "mountPath": "/etc/sec"}]
        spec["spec"]["initContainers"] = [
            {"name": "init1", "image": "app:v1", "command": ["sh", "-c", "echo first > /data/init.txt"],
             "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            {"name": "init2", "image": "app:v1", "command": ["sh", "-c", "echo second >> /data/init.txt"],
             "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        ]
        await c.create(kinds.PODS, spec)
        done = await eventually(lambda: phase_of(c, "full", "Succeeded", "Failed"), 30)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert [s["state"]["terminated"]["reason"] for s in done["status"]["initContainerStatuses"]] == \
            ["Completed", "Completed"]
        text = await c.request("GET", "/api/v1/namespaces/default/pods/full/log")
        assert text == "hi\nport=8080 name=9090\nhi s3cr3t full\nfirst\nsecond\ns3cr3t"


async def test_probes_readiness_and_liveness(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        c = agent.client
        readiness = {"exec": {"command": ["test", "-f", "ready"]}, "periodSeconds": 1}
        liveness = {"exec": {"command": ["test", "!", "-f", "dead"]}, "periodSeconds": 1, "failureThreshold": 1}
        workdir = tmp_path / "work"
        workdir.mkdir()
        await c.create(kinds.PODS, pod("probed", NODE, ["sh", "-c", "while true; do sleep 0.1; done"],
                                       terminationGracePeriodSeconds=1,
                                       container={"readinessProbe": readiness, "livenessProbe": liveness,
                                                  "workingDir": str(workdir)}))
        running = await eventually(lambda: phase_of(c, "probed", "Running"), 30)
        assert main_status(running)["ready"] is False
        (workdir / "ready").touch()

        async def ready() -> bool:
            return bool(main_status(await c.get(kinds.PODS, "probed", "default"))["ready"])

        await eventually(ready, 10)
        (workdir / "dead").touch()

        async def restarted() -> bool:
            return int(main_status(await c.get(kinds.PODS, "probed", "default"))["restartCount"]) >= 1

        await eventually(restarted, 15)
        (workdir / "dead").unlink()
