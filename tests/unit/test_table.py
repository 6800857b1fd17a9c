"""Server-side Table rendering: HumanDuration, built-in printers, CRD printer columns, speed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from atoll.api.builtins import BUILTINS
from atoll.api.errors import BadRequest
from atoll.api.registry import PrinterColumn, ResourceDef
from atoll.apiserver.cache.entries import Cached
from atoll.apiserver.registry.strategies import Strategies, builtin_strategies
from atoll.apiserver.tables import render
from atoll.apiserver.tables.columns import human_duration

RD = {rd.kind: rd for rd in BUILTINS}
STRATEGIES: Strategies = builtin_strategies(None)  # type: ignore[arg-type]  # no pod logs or tokens here


def render_table(rd: ResourceDef, objects: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """The server's rendering: with the printer the kind's strategy names."""
    return render.render_table(rd, objects, printer=STRATEGIES.for_resource(rd).printer, **options)


def render_table_bytes(rd: ResourceDef, objects: list[dict[str, Any]], **options: Any) -> bytes:
    return render.render_table_bytes(rd, [_cached(o) for o in objects], printer=STRATEGIES.for_resource(rd).printer,
                                     **options)


_CACHED: dict[int, Cached] = {}


def _cached(obj: dict[str, Any]) -> Cached:
    """One cached object per test object, as the watch cache would hold it (rows live on it)."""
    return _CACHED.setdefault(id(obj), Cached(obj, b"", 0))
NOW = 1_700_000_000.0
T0 = "2023-11-14T22:13:20Z"  # == NOW


def ts(ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - ago))


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    table = render_table(RD[kind], [obj], now=NOW)
    return list(table["rows"][0]["cells"])


def names(kind: str) -> list[str]:
    return [c["name"] for c in render_table(RD[kind], [], now=NOW)["columnDefinitions"]]


@pytest.mark.parametrize(
    ("secs", "expected"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (-1, "0s"),
        (-0.5, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (599, "9m59s"),
        (600, "10m"),
        (659, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600 - 1, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (49 * 3600, "2d1h"),
        (8 * 86400 - 1, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400 - 1, "7y364d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ],
)
def test_human_duration(secs: float, expected: str) -> None:
    assert human_duration(secs) == expected


def test_table_envelope_and_include_object() -> None:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "alice", "creationTimestamp": ts(262), "labels": {"a": "b"}},
        "status": {"phase": "Active"},
    }
    t = render_table(RD["Namespace"], [ns], now=NOW, resource_version="159", continue_token="c", remaining=3)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "159", "continue": "c", "remainingItemCount": 3}
    assert t["columnDefinitions"][0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": t["columnDefinitions"][0]["description"],
        "priority": 0,
    }
    assert t["columnDefinitions"][0]["description"].startswith("Name must be unique")
    assert t["rows"][0]["cells"] == ["alice", "Active", "4m22s"]
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": ns["metadata"],
    }
    full = render_table(RD["Namespace"], [ns], include_object="Object", now=NOW)
    assert full["rows"][0]["object"] is ns
    none = render_table(RD["Namespace"], [ns], include_object="None", now=NOW)
    assert "object" not in none["rows"][0]
    assert render_table(RD["Namespace"], [ns], with_columns=False, now=NOW)["columnDefinitions"] is None
    assert render_table(RD["Namespace"], [], now=NOW)["metadata"] == {}
    with pytest.raises(BadRequest):
        render_table(RD["Namespace"], [ns], include_object="Everything")


def test_resourcequota() -> None:
    rq = {
        "metadata": {"name": "resource-limitation", "creationTimestamp": ts(262)},
        "status": {
            "hard": {"requests.cpu": "4", "pods": "100", "limits.memory": "8Gi", "limits.cpu": "2"},
            "used": {"pods": "3", "limits.cpu": "500m"},
        },
    }
    assert names("ResourceQuota") == ["Name", "Age", "Request", "Limit"]
    assert cells("ResourceQuota", rq) == [
        "resource-limitation",
        "4m22s",
        "pods: 3/100, requests.cpu: 0/4",
        "limits.cpu: 500m/2, limits.memory: 0/8Gi",
    ]
    assert cells("ResourceQuota", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}}) == [
        "q",
        "<unknown>",
        "",
        "",
    ]


def pod(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {"name": "demo", "namespace": "alice", "creationTimestamp": ts(3600)},
        "spec": {"containers": [{"name": "main"}], "nodeName": "n1"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": ts(3500)}},
                }
            ],
        },
    }
    for k, v in kw.items():
        base[k] = {**base[k], **v}
    return base


def test_pod_columns() -> None:
    t = render_table(RD["Pod"], [], now=NOW)
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]


def test_pod_running() -> None:
    assert cells("Pod", pod()) == ["demo", "1/1", "Running", "0", "60m", "10.0.0.5", "n1", "<none>", "<none>"]


def test_pod_pending_unscheduled() -> None:
    p = {
        "metadata": {"name": "p", "creationTimestamp": ts(5)},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Pending"},
    }
    assert cells("Pod", p) == ["p", "0/2", "Pending", "0", "5s", "<none>", "<none>", "<none>", "<none>"]
    assert cells("Pod", {"metadata": {"name": "x"}})[:5] == ["x", "0/0", "", "0", "<unknown>"]


def test_pod_crashloop_with_restarts() -> None:
    p = pod(
        status={
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": False,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(300)}},
                }
            ]
        }
    )
    c = cells("Pod", p)
    assert c[1:4] == ["0/1", "CrashLoopBackOff", "4 (5m ago)"]


def test_pod_completed_and_error() -> None:
    done = pod(
        status={
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
        }
    )
    t = render_table(RD["Pod"], [done], now=NOW)
    assert t["rows"][0]["cells"][1:3] == ["0/1", "Completed"]
    assert t["rows"][0]["conditions"][0]["reason"] == "Succeeded"
    err = pod(
        status={
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "main",
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 2, "reason": "Error"}},
                }
            ],
        }
    )
    assert cells("Pod", err)[2] == "Error"
    sig = pod(
        status={
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]
        }
    )
    assert cells("Pod", sig)[2] == "Signal:9"
    code = pod(status={"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3}}}]})
    assert cells("Pod", code)[2] == "ExitCode:3"


def test_pod_completed_but_one_running() -> None:
    p = pod(
        spec={"containers": [{"name": "a"}, {"name": "b"}]},
        status={
            "containerStatuses": [
                {"name": "a", "ready": True, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                },
            ]
        },
    )
    assert cells("Pod", p)[1:3] == ["1/2", "Running"]
    p["status"]["conditions"] = []
    assert cells("Pod", p)[2] == "NotReady"


def test_pod_init_containers() -> None:
    base = pod(spec={"initContainers": [{"name": "i1"}, {"name": "i2"}]})
    waiting = {
        **base,
        "status": {
            **base["status"],
            "phase": "Pending",
            "containerStatuses": [],
            "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}},
            ],
        },
    }
    assert cells("Pod", waiting)[2] == "Init:1/2"
    crash = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
        },
    }
    assert cells("Pod", crash)[2:4] == ["Init:CrashLoopBackOff", "2"]
    failed = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ],
        },
    }
    assert cells("Pod", failed)[2] == "Init:Error"
    exit_code = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 5}}}],
        },
    }
    assert cells("Pod", exit_code)[2] == "Init:ExitCode:5"
    pod_init = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [{"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}],
        },
    }
    assert cells("Pod", pod_init)[2] == "Init:0/2"


def test_pod_sidecar_counts_in_total() -> None:
    p = pod(
        spec={"initContainers": [{"name": "side", "restartPolicy": "Always"}]},
        status={
            "initContainerStatuses": [
                {"name": "side", "started": True, "ready": True, "restartCount": 1, "state": {"running": {}}}
            ]
        },
    )
    c = cells("Pod", p)
    assert c[1] == "2/2"
    assert c[3] == "1"


def test_pod_terminating_and_gates() -> None:
    p = pod(metadata={"deletionTimestamp": ts(1)})
    assert cells("Pod", p)[2] == "Terminating"
    done = pod(metadata={"deletionTimestamp": ts(1)}, status={"phase": "Succeeded", "containerStatuses": []})
    assert cells("Pod", done)[2] == "Succeeded"
    lost = pod(metadata={"deletionTimestamp": ts(1)}, status={"reason": "NodeLost"})
    assert cells("Pod", lost)[2] == "Unknown"
    gated = pod(
        spec={"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
        status={
            "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}],
            "nominatedNodeName": "n2",
            "podIPs": [{"ip": "fd00::1"}],
        },
    )
    assert cells("Pod", gated)[5:] == ["fd00::1", "n1", "n2", "1/2"]
    sched = pod(
        status={
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "reason": "SchedulingGated"}],
            "containerStatuses": [],
        }
    )
    assert cells("Pod", sched)[2] == "SchedulingGated"


def test_service() -> None:
    svc = {
        "metadata": {"name": "web", "creationTimestamp": ts(90)},
        "spec": {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.10"],
            "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        },
    }
    assert names("Service") == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert cells("Service", svc) == [
        "web",
        "NodePort",
        "10.96.0.10",
        "<none>",
        "80:30080/TCP,53/UDP",
        "90s",
        "a=1,b=2",
    ]
    lb = {
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIP": "None"},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "h"}]}},
    }
    assert cells("Service", lb)[2:5] == ["None", "1.2.3.4,h", "<none>"]
    assert cells("Service", {"metadata": {"name": "p"}, "spec": {"type": "LoadBalancer"}})[3] == "<pending>"
    ext = {"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "x.example"}}
    assert cells("Service", ext)[3] == "x.example"


def test_configmap_secret_sa_lease_endpoints() -> None:
    assert names("ConfigMap") == ["Name", "Data", "Age"]
    assert cells(
        "ConfigMap",
        {
            "metadata": {"name": "c", "creationTimestamp": ts(10)},
            "data": {"a": "1"},
            "binaryData": {"b": "AA=="},
        },
    ) == ["c", 2, "10s"]
    assert cells(
        "Secret",
        {"metadata": {"name": "s", "creationTimestamp": ts(10)}, "type": "Opaque", "data": {"a": "MQ=="}},
    ) == ["s", "Opaque", 1, "10s"]
    assert cells("ServiceAccount", {"metadata": {"name": "default", "creationTimestamp": ts(10)}}) == [
        "default",
        0,
        "10s",
    ]
    assert cells(
        "Lease", {"metadata": {"name": "l", "creationTimestamp": ts(10)}, "spec": {"holderIdentity": "me"}}
    ) == ["l", "me", "10s"]
    ep = {
        "metadata": {"name": "ep", "creationTimestamp": ts(10)},
        "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}
        ],
    }
    assert cells("Endpoints", ep) == ["ep", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "10s"]
    assert cells("Endpoints", {"metadata": {"name": "none"}}) == ["none", "<none>", "<unknown>"]


def test_node() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": ts(86400 * 3),
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/master": "",
                "kubernetes.io/role": "edge",
            },
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"},
        },
    }
    assert names("Node")[:5] == ["Name", "Status", "Roles", "Age", "Version"]
    assert cells("Node", node) == [
        "n1",
        "Ready,SchedulingDisabled",
        "control-plane,edge,master",
        "3d",
        "v1.32.0",
        "192.168.1.2",
        "<none>",
        "Debian",
        "<unknown>",
        "<unknown>",
    ]
    bare = {"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert cells("Node", bare)[1:3] == ["NotReady", "<none>"]
    assert cells("Node", {"metadata": {"name": "n3"}})[1] == "Unknown"


def test_event() -> None:
    ev = {
        "metadata": {"name": "alice.17a"},
        "type": "Warning",
        "reason": "Failed",
        "involvedObject": {"kind": "Domain", "name": "alice", "fieldPath": "spec"},
        "source": {"component": "kuscia", "host": "h1"},
        "message": " boom \n",
        "firstTimestamp": ts(600),
        "lastTimestamp": ts(60),
        "count": 3,
    }
    assert names("Event")[0] == "Last Seen"
    assert cells("Event", ev) == [
        "60s",
        "Warning",
        "Failed",
        "domain/alice",
        "spec",
        "kuscia, h1",
        "boom",
        "10m",
        3,
        "alice.17a",
    ]
    micro = {
        "metadata": {"name": "e2"},
        "eventTime": "2023-11-14T22:12:20.123456Z",
        "involvedObject": {"kind": "Pod"},
        "reportingComponent": "ctl",
    }
    c = cells("Event", micro)
    assert (c[0], c[3], c[5], c[7], c[8]) == ("59s", "pod", "ctl", "59s", 1)
    series = {**micro, "series": {"count": 7, "lastObservedTime": "2023-11-14T22:13:10.000000Z"}}
    assert cells("Event", series)[0] == "10s"
    assert cells("Event", series)[8] == 7


def test_rbac_and_crd() -> None:
    rb = {
        "metadata": {"name": "rb", "creationTimestamp": ts(30)},
        "roleRef": {"kind": "ClusterRole", "name": "admin"},
        "subjects": [
            {"kind": "User", "name": "u1"},
            {"kind": "Group", "name": "g1"},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"},
            {"kind": "User", "name": "u2"},
        ],
    }
    assert names("RoleBinding") == ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    assert cells("RoleBinding", rb) == ["rb", "ClusterRole/admin", "30s", "u1, u2", "g1", "ns/sa"]
    assert cells("ClusterRoleBinding", rb)[1] == "ClusterRole/admin"
    assert names("Role") == ["Name", "Created At"]
    assert cells("ClusterRole", {"metadata": {"name": "cr", "creationTimestamp": T0}}) == ["cr", T0]
    crd_cols = render_table(RD["CustomResourceDefinition"], [], now=NOW)["columnDefinitions"]
    assert [(c["name"], c["type"]) for c in crd_cols] == [("Name", "string"), ("Created At", "date")]
    assert (
        cells(
            "CustomResourceDefinition",
            {"metadata": {"name": "domains.kuscia.secretflow", "creationTimestamp": T0}},
        )[1]
        == T0
    )


def _crd(*columns: PrinterColumn) -> ResourceDef:
    return ResourceDef(
        "kuscia.secretflow",
        "v1alpha1",
        "ClusterDomainRoute",
        "clusterdomainroutes",
        "clusterdomainroute",
        False,
        ("cdr",),
        printer_columns=columns,
        builtin=False,
    )


def test_crd_without_printer_columns() -> None:
    rd = _crd()
    t = render_table(rd, [{"metadata": {"name": "alice-bob", "creationTimestamp": ts(75)}}], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["alice-bob", "75s"]


def test_crd_printer_columns() -> None:
    rd = _crd(
        PrinterColumn("Source", "string", ".spec.source"),
        PrinterColumn("Destination", "string", ".spec.destination", description="dest"),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Port", "integer", ".spec.port", priority=1),
        PrinterColumn("Weight", "number", ".spec.weight"),
        PrinterColumn("On", "boolean", ".spec.on"),
        PrinterColumn("Since", "date", ".metadata.creationTimestamp"),
        PrinterColumn("Endpoint", "string", ".spec.endpoint"),
        PrinterColumn("Missing", "string", ".status.nope"),
        PrinterColumn("BadDate", "date", ".spec.source"),
    )
    obj = {
        "metadata": {"name": "alice-bob", "creationTimestamp": ts(600)},
        "spec": {
            "source": "alice",
            "destination": "bob",
            "port": 8080.0,
            "weight": 2,
            "on": True,
            "endpoint": {"host": "h", "ports": [1]},
        },
        "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]},
    }
    t = render_table(rd, [obj], now=NOW)
    defs = t["columnDefinitions"]
    assert [c["name"] for c in defs] == [
        "Name",
        "Source",
        "Destination",
        "Ready",
        "Port",
        "Weight",
        "On",
        "Since",
        "Endpoint",
        "Missing",
        "BadDate",
    ]
    assert defs[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.source"
    assert defs[2]["description"] == "dest"
    assert defs[4]["priority"] == 1 and defs[4]["type"] == "integer"
    assert t["rows"][0]["cells"] == [
        "alice-bob",
        "alice",
        "bob",
        "True",
        8080,
        2.0,
        True,
        "10m",
        '{"host":"h","ports":[1]}',
        None,
        "<invalid>",
    ]
    empty = render_table(rd, [{"metadata": {"name": "x"}}], now=NOW)["rows"][0]["cells"]
    assert empty == ["x"] + [None] * 10


def test_render_500_pods_fast() -> None:
    pods = []
    for i in range(500):
        p = pod(
            status={
                "containerStatuses": [
                    {
                        "name": "main",
                        "ready": True,
                        "restartCount": i % 3,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(i)}},
                    }
                ]
            }
        )
        p["metadata"] = {**p["metadata"], "name": f"pod-{i}"}
        pods.append(p)
    render_table(RD["Pod"], pods, now=NOW)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        table = render_table(RD["Pod"], pods, now=NOW)
        best = min(best, time.perf_counter() - t0)
    assert len(table["rows"]) == 500
    assert best < 0.05, f"500 pods took {best * 1000:.1f} ms"


# ---- render_table_bytes: the encoded LIST table with cached rows ------------------------------


def _bytes_cases() -> list[tuple[Any, list[dict[str, Any]]]]:
    from atoll.api.builtins import BUILTINS

    by_kind = {rd.kind: rd for rd in BUILTINS}
    ts = "2026-01-01T00:00:00Z"
    pods = [
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": f"p{i}", "namespace": "n", "uid": f"u{i}", "resourceVersion": str(i),
                      "creationTimestamp": ts, "labels": {"a": "b"}},
         "spec": {"containers": [{"name": "main"}], "nodeName": "n1"},
         "status": {"phase": phase, "podIP": "10.0.0.1",
                    "containerStatuses": [{"name": "main", "ready": True, "restartCount": restarts,
                                           "lastState": {"terminated": {"finishedAt": ts}} if restarts else {},
                                           "state": {"running": {"startedAt": ts}}}]}}
        for i, (phase, restarts) in enumerate([("Running", 0), ("Succeeded", 0), ("Running", 2), ("Failed", 0)])
    ]
    events = [{"apiVersion": "v1", "kind": "Event",
               "metadata": {"name": "e", "namespace": "n", "uid": "ue", "resourceVersion": "9",
                            "creationTimestamp": ts},
               "involvedObject": {"kind": "Pod", "name": "p0"}, "reason": "R", "message": "m", "type": "Normal",
               "firstTimestamp": ts, "lastTimestamp": ts, "count": 1}]
    quota = [{"apiVersion": "v1", "kind": "ResourceQuota",
              "metadata": {"name": "q", "namespace": "n", "uid": "uq", "resourceVersion": "3",
                           "creationTimestamp": ts},
              "status": {"hard": {"pods": "10", "limits.cpu": "2"}, "used": {"pods": "1"}}}]
    cms = [{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "\x00atoll-age\x00", "namespace": "n", "uid": "uc", "resourceVersion": "4",
                         "creationTimestamp": ts}, "data": {"a": "b"}},
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "norv", "namespace": "n"}}]
    return [(by_kind["Pod"], pods), (by_kind["Event"], events), (by_kind["ResourceQuota"], quota),
            (by_kind["ConfigMap"], cms)]


@pytest.mark.parametrize("include", ["Metadata", "None", "Object"])
def test_render_table_bytes_equals_render_table(include: str) -> None:
    import orjson

    for rd, objs in _bytes_cases():
        for now in (1767225600.0 + 30, 1767225600.0 + 30, 1767225600.0 + 4000):  # twice: second from cache
            want = render_table(rd, objs, include_object=include, now=now, resource_version="7",
                                continue_token="c", remaining=2)
            got = render_table_bytes(rd, objs, include_object=include, now=now, resource_version="7",
                                     continue_token="c", remaining=2)
            assert orjson.loads(got) == want, (rd.kind, include, now)


def test_encoded_rows_live_on_the_cached_object() -> None:
    rd = RD["ConfigMap"]
    printer = STRATEGIES.for_resource(rd).printer
    first = Cached({"metadata": {"name": "a", "creationTimestamp": ts(30)}, "data": {"k": "v"}}, b"", 1)
    table = render.render_table_bytes(rd, [first], printer=printer, now=NOW)
    assert first.derived and len(first.derived) == 1  # the row, kept with this revision of the object
    assert b'"30s"' in table
    assert b'"90s"' in render.render_table_bytes(rd, [first], printer=printer, now=NOW + 60)  # Age recomputed
    changed = Cached({"metadata": {"name": "a", "creationTimestamp": ts(30)}, "data": {}}, b"", 2)
    assert b'"cells":["a",0,' in render.render_table_bytes(rd, [changed], printer=printer, now=NOW)
    event = Cached({"metadata": {"name": "e"}, "lastTimestamp": ts(5)}, b"", 3)
    render.render_table_bytes(RD["Event"], [event], printer=STRATEGIES.for_resource(RD["Event"]).printer, now=NOW)
    assert event.derived is None  # time-dependent cells: never kept
