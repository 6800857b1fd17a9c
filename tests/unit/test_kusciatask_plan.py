"""Pure parts of the KusciaTask controller: party kits, the port allocator, the network plan (C2),
the objects created, party/task phases, and the manual clock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from atoll.controllers.kusciatask import live_ports
from atoll.controllers.kusciatask import resources as res
from atoll.controllers.kusciatask.kits import KitError, build_kits, select_template, service_name
from atoll.controllers.kusciatask.plan import EGRESS_ROLE, Plan, allocated_ports_status, wanted_ports
from atoll.controllers.kusciatask.ports import PortAllocator, PortsExhausted
from atoll.controllers.kusciatask.status import party_state, task_verdict
from atoll.runtime import Cache, FakeClock

JSON = dict[str, Any]


def app_image(name: str = "psi", *, templates: list[JSON] | None = None, tag: str = "v1") -> JSON:
    container = {
        "name": "main",
        "command": ["run"],
        "workingDir": "/work",
        "ports": [{"name": "svc", "scope": "Cluster", "protocol": "GRPC"}, {"name": "local", "scope": "Local"}],
        "resources": {"requests": {"cpu": "100m"}},
    }
    return {
        "metadata": {"name": name},
        "spec": {
            "image": {"name": "app", "tag": tag, "id": "sha256:abc"},
            "configTemplates": {"task.conf": "port={{{.ALLOCATED_PORTS.ports[name=svc].port}}}"},
            "deployTemplates": templates or [{"name": "t", "replicas": 1, "spec": {"containers": [container]}}],
        },
    }


def task(*parties: tuple[str, str], replicas: int = 1) -> JSON:
    return {
        "metadata": {"name": "t1", "namespace": "cross-domain", "uid": "u1"},
        "spec": {
            "initiator": "alice",
            "taskInputConfig": '{"x": 1}',
            "parties": [
                {"domainID": d, "role": r, "appImageRef": "psi", "template": {"replicas": replicas}} for d, r in parties
            ],
        },
    }


def lookups(images: dict[str, JSON], domain_images: dict[tuple[str, str], JSON] | None = None) -> Any:
    return (lambda n, ns: images.get(n)), (lambda n, ns: (domain_images or {}).get((n, ns or "")))


def plan_for(t: JSON, images: dict[str, JSON] | None = None) -> Plan:
    kits = build_kits(t, *lookups(images or {"psi": app_image()}))
    allocator = PortAllocator(lambda: ())
    return Plan(kits, allocated_ports_status(kits, allocator.allocate("t1", wanted_ports(kits))))


# -- kits --------------------------------------------------------------------------------------------


def test_template_selection_follows_kuscia_rules() -> None:
    image = app_image(templates=[{"name": "a", "role": "guest,host"}, {"name": "b", "role": ""}])
    assert select_template(image, "host")["name"] == "a"
    assert select_template(image, "other")["name"] == "b"
    only_roles = app_image(templates=[{"name": "a", "role": "guest"}])
    assert select_template(only_roles, "")["name"] == "a"
    with pytest.raises(KitError, match="no deploy template for role 'host'"):
        select_template(only_roles, "host")


def test_kit_merges_party_template_and_domain_app_image() -> None:
    t = task(("alice", "host"), ("bob", ""), replicas=2)
    t["spec"]["parties"][0]["template"]["spec"] = {
        "containers": [{"name": "main", "args": ["--x"], "env": [{"name": "A", "value": "1"}],
                        "resources": {"requests": {"memory": "1Gi"}}}]
    }
    domain_images = {("psi", "bob"): {"spec": {"images": [{"tag": "v2", "id": "sha256:bob", "sign": ""}]}}}
    alice, bob = build_kits(t, *lookups({"psi": app_image()}, domain_images))
    assert alice.pod_names == ["t1-host-0", "t1-host-1"] and bob.pod_names == ["t1-0", "t1-1"]
    assert alice.image == "app:v1" and bob.image == "app:v2" and bob.image_id == "sha256:bob"
    container = alice.spec["containers"][0]
    assert container["args"] == ["--x"] and container["env"] == [{"name": "A", "value": "1"}]
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "1Gi"}
    assert [p.name for p in alice.serviced_ports] == ["svc"] and alice.min_reserved_pods == 2


def test_metric_probe_and_bandwidth_limits_become_kuscia_annotations() -> None:
    image = app_image()
    image["spec"]["deployTemplates"][0]["spec"]["containers"][0]["metricProbe"] = {"path": "/m", "port": "svc"}
    t = task(("alice", "host"), ("bob", "guest"))
    t["spec"]["parties"][0]["bandwidthLimits"] = [{"destinationID": "bob", "limitKBps": 2048}]
    plan = plan_for(t, {"psi": image})
    alice = plan.kits[0]
    annotations = res.pod(t, plan, alice, 0)["metadata"]["annotations"]
    assert annotations["kuscia.secretflow/metric_path"] == "/m"
    assert annotations["kuscia.secretflow/metric_port"] == str(plan.pod_ports(alice, "t1-host-0")["svc"])
    assert annotations["kuscia.secretflow/should_be_scraped"] == "true"
    svc = res.service(t, next(s for s in plan.services if s.kit is alice), None)
    assert svc["metadata"]["annotations"]["kuscia.secretflow/bandwidth-limit-bob"] == "2048"


def test_unknown_app_image_names_the_party() -> None:
    with pytest.raises(KitError, match="party bob/guest: AppImage 'psi' not found"):
        build_kits(task(("bob", "guest")), *lookups({}))


def test_long_service_names_are_hashed_to_63() -> None:
    name = service_name("t" * 70 + "-host-0", "svc")
    assert len(name) <= 63 and name.endswith("-svc") and name.startswith("svc-")
    assert service_name("1abc-0", "p") == "svc-1abc-0-p"


# -- ports ---------------------------------------------------------------------------------------------


async def test_allocator_never_hands_out_a_port_twice_under_concurrency() -> None:
    allocator = PortAllocator(lambda: (), low=20000, high=20199)

    async def one(i: int) -> list[int]:
        await asyncio.sleep(0)
        return allocator.allocate(f"t{i}", {"alice": 3})["alice"]

    got = await asyncio.gather(*(one(i) for i in range(60)))
    ports = [p for chunk in got for p in chunk]
    assert len(ports) == 180 == len(set(ports)) and all(20000 <= p <= 20199 for p in ports)
    with pytest.raises(PortsExhausted, match="domain alice: 30 ports wanted, 20 free"):
        allocator.allocate("big", {"alice": 30})
    allocator.release("t0")
    assert len(allocator.allocate("again", {"alice": 3})["alice"]) == 3


def test_allocator_after_restart_reclaims_ports_of_finished_tasks() -> None:
    def kt(name: str, ports: list[int], finished: bool) -> JSON:
        status: JSON = {"allocatedPorts": [{"domainID": "alice", "role": "", "namedPort": {f"p{i}": p for i, p in
                                                                                          enumerate(ports)}}]}
        if finished:
            status.update({"phase": "Succeeded", "completionTime": "2026-01-01T00:00:00Z"})
        return {"metadata": {"name": name, "namespace": "cross-domain"}, "status": status}

    tasks = Cache()
    tasks.upsert(kt("running", [20000, 20001], finished=False))
    tasks.upsert(kt("done", [20002, 20003], finished=True))
    allocator = live_ports(tasks)  # a fresh process: nothing in memory, the API is the truth
    allocator.low, allocator.high = 20000, 20003
    assert sorted(allocator.allocate("new", {"alice": 2})["alice"]) == [20002, 20003]
    with pytest.raises(PortsExhausted):
        allocator.allocate("more", {"alice": 1})
    assert allocator.in_use("bob") == {20000, 20001, 20002, 20003}  # bob shares the host's ports


# -- plan (contract C2) --------------------------------------------------------------------------------


def test_cluster_define_uses_loopback_own_ports_and_egress_ports_for_peers() -> None:
    plan = plan_for(task(("alice", "host"), ("bob", "guest")))
    alice = plan.kits[0]
    assert [e.consumer for e in plan.egress] == ["bob", "alice"]
    to_bob = next(e for e in plan.egress if e.consumer == "alice")
    assert to_bob.host == "t1-guest-0-svc.bob.svc"
    define = plan.cluster_define(alice, 0)
    assert define["selfPartyIdx"] == 0 and define["selfEndpointIdx"] == 0
    own_port = plan.pod_ports(alice, "t1-host-0")["svc"]
    assert define["parties"][0] == {
        "name": "alice", "role": "host", "services": [{"portName": "svc", "endpoints": [f"127.0.0.1:{own_port}"]}]
    }
    assert define["parties"][1]["services"][0]["endpoints"] == [f"127.0.0.1:{to_bob.number}"]
    assert plan.kuscia_hosts()["bob/t1-guest-0-svc"] == "t1-guest-0-svc.bob.svc"
    egress_ports = [p for e in plan.allocated if e["role"] == EGRESS_ROLE for p in e["namedPort"].values()]
    party_ports = [p for e in plan.allocated if e["role"] != EGRESS_ROLE for p in e["namedPort"].values()]
    assert len(party_ports) == 4 and len(egress_ports) == 2
    alice_ports = [p for e in plan.allocated if e["domainID"] == "alice" for p in e["namedPort"].values()]
    assert len(alice_ports) == len(set(alice_ports)) == 3


def test_pod_carries_kuscia_env_labels_and_scheduling() -> None:
    t = task(("alice", "host"), ("bob", "guest"))
    plan = plan_for(t)
    alice = plan.kits[0]
    pod = res.pod(t, plan, alice, 0)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    ports = json.loads(env["ALLOCATED_PORTS"])["ports"]
    assert [p["name"] for p in ports] == ["svc", "local"] and ports[0]["scope"] == "Cluster"
    assert env["KUSCIA_PORT_SVC_NUMBER"] == str(ports[0]["port"]) and env["TASK_ID"] == "t1"
    assert env["TASK_INPUT_CONFIG"] == '{"x": 1}' and env["KUSCIA_DOMAIN_ID"] == "alice"
    assert json.loads(env["TASK_CLUSTER_DEFINE"])["selfPartyIdx"] == 0
    spec = pod["spec"]
    assert spec["schedulerName"] == "kuscia-scheduler" and spec["restartPolicy"] == "Never"
    assert spec["nodeSelector"] == {"kuscia.secretflow/namespace": "alice"}
    assert spec["tolerations"][0]["key"] == "kuscia.secretflow/agent"
    assert pod["metadata"]["annotations"]["kuscia.secretflow/task-resource"].startswith("t1-")
    assert pod["metadata"]["labels"]["kuscia.secretflow/pod-identity"] == "u1-host-0"
    assert "kuscia.secretflow/metric_port" not in pod["metadata"]["annotations"]
    svc = res.service(t, plan.services[0], None)
    assert svc["spec"]["clusterIP"] == "None" and svc["metadata"]["annotations"]["kuscia.secretflow/access-domain"] \
        == "alice,bob"
    egress = res.egress_service(t, plan.egress[1])
    assert egress["metadata"]["namespace"] == "alice" and egress["metadata"]["labels"]["atoll.io/egress"] == "true"
    assert egress["metadata"]["annotations"]["atoll.io/egress-host"] == "t1-guest-0-svc.bob.svc"
    assert egress["metadata"]["annotations"]["atoll.io/egress-port"] == str(plan.services[1].number)
    assert "selector" not in egress["spec"]


# -- phases --------------------------------------------------------------------------------------------


def pod_in(phase: str, name: str, exit_code: int = 0, message: str = "") -> JSON:
    terminated = {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed", "message": message}
    return {
        "metadata": {"name": name, "namespace": "bob"},
        "status": {"phase": phase, "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}]},
    }


def test_party_and_task_phases_with_failure_message() -> None:
    t = task(("alice", ""), ("bob", ""))
    alice, bob = build_kits(t, *lookups({"psi": app_image()}))
    ok = party_state(alice, {"t1-0": pod_in("Succeeded", "t1-0")})
    bad = party_state(bob, {"t1-0": pod_in("Failed", "t1-0", 3, "no input table")})
    assert ok.phase == "Succeeded" and bad.phase == "Failed"
    verdict = task_verdict([ok, bad], 2)
    assert verdict.phase == "Failed"
    assert verdict.message == "bob: pod t1-0 container main exited with code 3 (Error): no input table"
    assert task_verdict([ok, ok], 2).phase == "Succeeded"
    assert task_verdict([ok, party_state(bob, {})], 1).phase == "Succeeded"


def test_manual_clock_fires_due_timers_in_order() -> None:
    clock = FakeClock(start=100.0)
    fired: list[str] = []
    clock.call_later(30, lambda: fired.append("retry"))
    late = clock.call_later(300, lambda: fired.append("lifecycle"))
    clock.call_later(10, lambda: fired.append("cancelled")).cancel()
    clock.advance(29)
    assert fired == []
    clock.advance(1)
    assert fired == ["retry"] and clock.now() == 130.0
    late.cancel()
    clock.advance(1000)
    assert fired == ["retry"]


def test_domains_on_one_host_never_share_a_port() -> None:
    """alice and bob run on one machine (the quickstart): their tasks' ports must all differ."""
    held = [("alice", 20000), ("bob", 20001)]
    allocator = PortAllocator(lambda: held, low=20000, high=20009)
    got = allocator.allocate("t1", {"alice": 2, "bob": 2})
    assert got == {"alice": [20002, 20003], "bob": [20004, 20005]}
    assert allocator.allocate("t2", {"bob": 1}) == {"bob": [20006]}
    per_domain = PortAllocator(lambda: held, low=20000, high=20009, space=lambda domain: domain)
    assert per_domain.allocate("t1", {"alice": 1, "bob": 1}) == {"alice": [20001], "bob": [20000]}
