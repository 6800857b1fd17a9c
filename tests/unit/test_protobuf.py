"""Decoding kubectl's ``application/vnd.kubernetes.protobuf`` bodies (hand-encoded test vectors)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atoll.api.errors import BadRequest, UnsupportedMediaType
from atoll.apiserver.http.protobuf import MAGIC, decode_k8s_protobuf, message_for

# --------------------------------------------------------------------------------------------------
# A tiny protobuf encoder: a message is a list of (field number, value); value is str/bytes (length-
# delimited), int/bool (varint) or a nested list (message).

Msg = list[tuple[int, Any]]


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc(msg: Msg) -> bytes:
    out = bytearray()
    for num, value in msg:
        if isinstance(value, bool | int):
            out += varint(num << 3) + varint(int(value))
        else:
            raw = (
                value.encode() if isinstance(value, str) else enc(value) if isinstance(value, list) else value
            )
            out += varint(num << 3 | 2) + varint(len(raw)) + raw
    return bytes(out)


def entry(key: str, value: Any) -> Msg:
    return [(1, key), (2, value)]


def envelope(api_version: str, kind: str, obj: Msg, **extra: Any) -> bytes:
    unknown: Msg = [
        (1, [(1, api_version), (2, kind)]),
        (2, enc(obj)),
        (3, extra.get("encoding", "")),
        (4, ""),
    ]
    return MAGIC + enc(unknown)


def meta(name: str, namespace: str = "", **more: Any) -> Msg:
    """ObjectMeta as kubectl encodes it: every string present, empty or not."""
    m: Msg = [(1, name), (2, ""), (3, namespace), (4, ""), (5, ""), (6, ""), (7, 0), (8, [])]
    for num, value in more.get("extra", []):
        m.append((num, value))
    return m


# --------------------------------------------------------------------------------------------------


def test_configmap_vector_from_kubectl() -> None:
    body = bytes.fromhex(
        "6b3873000a0f0a0276311209436f6e6669674d617012210a170a02633212001a05616c69636522002a00320038004200"
        "12060a016b1201761a002200"
    )
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c2", "namespace": "alice"},
        "data": {"k": "v"},
    }


def test_encoder_reproduces_kubectl_vector() -> None:
    obj: Msg = [(1, meta("c2", "alice")), (2, entry("k", "v"))]
    expected = bytes.fromhex(
        "6b3873000a0f0a0276311209436f6e6669674d617012210a170a02633212001a05616c69636522002a00320038004200"
        "12060a016b1201761a002200"
    )
    assert envelope("v1", "ConfigMap", obj) == expected


def test_namespace() -> None:
    body = envelope(
        "v1",
        "Namespace",
        [(1, meta("bob", extra=[(11, entry("team", "x")), (11, entry("env", ""))])), (2, []), (3, [])],
    )
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "bob", "labels": {"team": "x", "env": ""}},
    }
    body = envelope("v1", "Namespace", [(1, meta("n")), (2, [(1, "kubernetes")]), (3, [(1, "Active")])])
    assert decode_k8s_protobuf(body)["spec"] == {"finalizers": ["kubernetes"]}
    assert decode_k8s_protobuf(body)["status"] == {"phase": "Active"}


def test_configmap_binary_and_immutable() -> None:
    body = envelope(
        "v1",
        "ConfigMap",
        [
            (1, meta("c", "ns")),
            (3, entry("bin", b"\x00\xff")),
            (4, False),
            (2, entry("a", "1")),
            (2, entry("b", "")),
        ],
    )
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns"},
        "data": {"a": "1", "b": ""},
        "binaryData": {"bin": "AP8="},
        "immutable": False,
    }


def test_secret_bytes_become_base64() -> None:
    body = envelope(
        "v1",
        "Secret",
        [
            (1, meta("s", "alice")),
            (2, entry("password", b"hunter2")),
            (2, entry("empty", b"")),
            (3, "Opaque"),
            (4, entry("plain", "txt")),
        ],
    )
    out = decode_k8s_protobuf(body)
    assert out["data"] == {"password": base64.b64encode(b"hunter2").decode(), "empty": ""}
    assert out["type"] == "Opaque"
    assert out["stringData"] == {"plain": "txt"}
    assert list(out) == ["apiVersion", "kind", "metadata", "data", "stringData", "type"]


def test_serviceaccount() -> None:
    body = envelope(
        "v1",
        "ServiceAccount",
        [(1, meta("robot", "alice")), (2, [(3, "tok"), (1, "Secret")]), (3, [(1, "regcred")]), (4, True)],
    )
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "robot", "namespace": "alice"},
        "secrets": [{"kind": "Secret", "name": "tok"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "automountServiceAccountToken": True,
    }


def test_resourcequota_quantities() -> None:
    spec: Msg = [
        (1, entry("pods", [(1, "100")])),
        (1, entry("requests.cpu", [(1, "4")])),
        (2, "BestEffort"),
        (3, [(1, [(1, "PriorityClass"), (2, "In"), (3, "high")])]),
    ]
    body = envelope("v1", "ResourceQuota", [(1, meta("q", "alice")), (2, spec), (3, [])])
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "alice"},
        "spec": {
            "hard": {"pods": "100", "requests.cpu": "4"},
            "scopes": ["BestEffort"],
            "scopeSelector": {
                "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]
            },
        },
    }


def test_metadata_full() -> None:
    m: Msg = [
        (1, "x"),
        (2, "gen-"),
        (3, "ns"),
        (5, "uid-1"),
        (6, "42"),
        (7, 3),
        (8, [(1, 1700000000)]),
        (9, [(1, 1700000001), (2, 500_000_000)]),
        (10, 0),
        (12, entry("note", "hi")),
        (
            13,
            [(1, "Domain"), (3, "alice"), (4, "u"), (5, "kuscia.secretflow/v1alpha1"), (6, True), (7, False)],
        ),
        (14, "f1"),
        (14, "f2"),
        (99, "unknown field skipped"),
        (100, 7),
    ]
    out = decode_k8s_protobuf(envelope("v1", "ConfigMap", [(1, m)]))["metadata"]
    assert out == {
        "name": "x",
        "generateName": "gen-",
        "namespace": "ns",
        "uid": "uid-1",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2023-11-14T22:13:20Z",
        "deletionTimestamp": "2023-11-14T22:13:21.500000Z",
        "deletionGracePeriodSeconds": 0,
        "annotations": {"note": "hi"},
        "ownerReferences": [
            {
                "kind": "Domain",
                "apiVersion": "kuscia.secretflow/v1alpha1",
                "name": "alice",
                "uid": "u",
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ],
        "finalizers": ["f1", "f2"],
    }


def test_rbac_kinds() -> None:
    rule: Msg = [(1, "get"), (1, "list"), (2, ""), (3, "pods"), (4, "demo")]
    url_rule: Msg = [(1, "get"), (5, "/healthz")]
    role = decode_k8s_protobuf(
        envelope("rbac.authorization.k8s.io/v1", "Role", [(1, meta("r", "alice")), (2, rule)])
    )
    assert role == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "alice"},
        "rules": [
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["demo"]}
        ],
    }
    agg: Msg = [(1, [(1, entry("rbac.example.com/aggregate", "true"))])]
    cr = decode_k8s_protobuf(
        envelope("rbac.authorization.k8s.io/v1", "ClusterRole", [(1, meta("cr")), (2, url_rule), (3, agg)])
    )
    assert cr["rules"] == [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
    assert cr["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]
    }
    for kind, ns in (("RoleBinding", "alice"), ("ClusterRoleBinding", "")):
        body = envelope(
            "rbac.authorization.k8s.io/v1",
            kind,
            [
                (1, meta("b", ns)),
                (2, [(1, "User"), (2, "rbac.authorization.k8s.io"), (3, "jane")]),
                (2, [(1, "ServiceAccount"), (2, ""), (3, "robot"), (4, "alice")]),
                (3, [(1, "rbac.authorization.k8s.io"), (2, "ClusterRole"), (3, "view")]),
            ],
        )
        out = decode_k8s_protobuf(body)
        assert out["subjects"] == [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
            {"kind": "ServiceAccount", "name": "robot", "namespace": "alice"},
        ]
        assert out["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "view",
        }
        assert out["kind"] == kind


def test_self_subject_access_review() -> None:
    attrs: Msg = [(1, "alice"), (2, "list"), (3, ""), (4, ""), (5, "pods"), (6, ""), (7, "")]
    body = envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        [(1, meta("")), (2, [(1, attrs)]), (3, [(1, False), (2, "")])],
    )
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "alice", "verb": "list", "resource": "pods"}},
    }
    body = envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        [(1, meta("")), (2, [(2, [(1, "/healthz"), (2, "get")])])],
    )
    assert decode_k8s_protobuf(body)["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    body = envelope("authorization.k8s.io/v1", "SelfSubjectRulesReview", [(1, meta("")), (2, [(1, "alice")])])
    assert decode_k8s_protobuf(body)["spec"] == {"namespace": "alice"}


def test_token_request() -> None:
    spec: Msg = [
        (1, "https://kubernetes.default.svc"),
        (1, "api"),
        (4, 3600),
        (3, [(1, "Secret"), (2, "v1"), (3, "tok"), (4, "u1")]),
    ]
    body = envelope(
        "authentication.k8s.io/v1",
        "TokenRequest",
        [(1, meta("robot", "alice")), (2, spec), (3, [(1, ""), (2, [])])],
    )
    assert decode_k8s_protobuf(body) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {"name": "robot", "namespace": "alice"},
        "spec": {
            "audiences": ["https://kubernetes.default.svc", "api"],
            "expirationSeconds": 3600,
            "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "tok", "uid": "u1"},
        },
    }


def test_negative_and_large_varints() -> None:
    m: Msg = [(1, "x"), (7, -1), (8, [(1, -86400)])]
    out = decode_k8s_protobuf(envelope("v1", "ConfigMap", [(1, m)]))["metadata"]
    assert out == {"name": "x", "generation": -1, "creationTimestamp": "1969-12-31T00:00:00Z"}


def test_unknown_kind_is_415() -> None:
    body = envelope("example.com/v1", "Widget", [(1, meta("d", "alice"))])
    with pytest.raises(UnsupportedMediaType) as err:
        decode_k8s_protobuf(body)
    assert "Widget" in err.value.message and err.value.code == 415
    with pytest.raises(UnsupportedMediaType):
        decode_k8s_protobuf(envelope("v1", "ConfigMap", [], encoding="gzip"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        MAGIC + b"\x0a\x05ab",  # truncated length-delimited field
        MAGIC + b"\x0a",  # truncated tag payload
        MAGIC + b"\x08\xff",  # truncated varint
        MAGIC + b"\x0b",  # wire type 3 (groups) unsupported
        MAGIC + b"\x00\x00",  # field number 0
        envelope("v1", "ConfigMap", [(1, [(1, b"\xff\xfe")])]),  # invalid UTF-8 name
        envelope("v1", "ConfigMap", [(1, [(7, "not-a-varint")])]),
        envelope("v1", "ConfigMap", [(1, 5)]),  # metadata as a varint
    ],
)
def test_malformed_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_k8s_protobuf(body)


def test_every_builtin_kind_has_a_wire_schema() -> None:
    kinds = [("v1", k) for k in ("Namespace", "ConfigMap", "Secret", "ServiceAccount", "ResourceQuota", "Pod",
                                 "Service", "ReplicationController", "PersistentVolumeClaim", "DeleteOptions")]
    kinds += [("rbac.authorization.k8s.io/v1", k) for k in ("Role", "RoleBinding", "ClusterRole",
                                                             "ClusterRoleBinding")]
    kinds += [("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
              ("policy/v1", "Eviction"), ("policy/v1", "PodDisruptionBudget"), ("scheduling.k8s.io/v1",
              "PriorityClass"), ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
              ("authentication.k8s.io/v1", "TokenRequest"), ("networking.k8s.io/v1", "Ingress")]
    assert [k for k in kinds if message_for(*k) is None] == []


def test_deployment_keeps_a_zero_pointer_and_reads_nested_types() -> None:
    """``replicas: 0`` (a pointer) survives; quantities, int-or-strings and the pod template decode."""
    container = [(1, "main"), (2, "app:v1"), (8, [(1, [(1, "cpu"), (2, [(1, "500m")])])])]
    template = [(1, [(11, [(1, "app"), (2, "web")])]), (2, [(2, container)])]
    rolling = [(1, [(1, 0), (2, 1)]), (2, [(1, 1), (3, "50%")])]  # IntOrString: 1 and "50%"
    strategy = [(1, "RollingUpdate"), (2, rolling)]
    spec = [(1, 0), (2, [(1, [(1, "app"), (2, "web")])]), (3, template), (4, strategy), (5, 0)]
    out = decode_k8s_protobuf(envelope("apps/v1", "Deployment", [(1, meta("web", "alice")), (2, spec)]))
    assert out["spec"] == {
        "replicas": 0,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "main", "image": "app:v1",
                                              "resources": {"limits": {"cpu": "500m"}}}]}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "50%"}},
    }


@given(st.binary(max_size=64))
def test_random_bytes_only_raise_api_errors(data: bytes) -> None:
    try:
        decode_k8s_protobuf(MAGIC + data)
    except (BadRequest, UnsupportedMediaType):
        pass


@given(
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5),
    st.dictionaries(st.text(max_size=8), st.binary(max_size=8), max_size=5),
)
def test_configmap_round_trip(data: dict[str, str], binary: dict[str, bytes]) -> None:
    obj: Msg = [(1, meta("c", "ns"))]
    obj += [(2, entry(k, v)) for k, v in data.items()]
    obj += [(3, entry(k, v)) for k, v in binary.items()]
    out = decode_k8s_protobuf(envelope("v1", "ConfigMap", obj))
    assert out.get("data", {}) == data
    assert out.get("binaryData", {}) == {k: base64.b64encode(v).decode() for k, v in binary.items()}
