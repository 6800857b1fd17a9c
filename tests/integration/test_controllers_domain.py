"""The Domain, ResourceQuota and node lifecycle controllers against a real in-process master.

The master runs the controller manager, so these tests only write objects through the API and
watch the controllers converge (polling with short sleeps). Write counts come from the
controllers' ``controller_writes_total`` metric; "unchanged objects are never re-written" is
checked both there and on the objects' resourceVersions.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from atoll.api import errors, kinds
from atoll.api.clock import FakeClock
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.runtime.metrics import REGISTRY
from tests.conftest import RunningServer, eventually
from tests.integration.controllers import controller, idle, reconciles

JSON = dict[str, Any]
QUOTA = "resource-limitation"
CDR = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
TOKEN = re.compile(r"^[A-Za-z]{32}$")


@pytest.fixture
async def client(api_server: RunningServer) -> AsyncIterator[Client]:
    async with api_server.client() as c:
        yield c


def domain(name: str, *, role: str = "", pods: int | None = 100, **spec: Any) -> JSON:
    body: JSON = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name}}
    body["spec"] = {"role": role, **spec}
    if pods is not None:
        body["spec"]["resourceQuota"] = {"podMaxCount": pods}
    return body


def writes(controller: str) -> float:
    return sum(
        REGISTRY.get_sample_value("controller_writes_total", {"controller": controller, "verb": verb}) or 0.0
        for verb in ("create", "update", "patch", "delete")
    )


def labels(obj: JSON) -> dict[str, str]:
    """The object's labels without the server's own ``kubernetes.io/metadata.name``."""
    found = dict((obj.get("metadata") or {}).get("labels") or {})
    found.pop("kubernetes.io/metadata.name", None)
    return found


async def converged(client: Client, name: str, pods: int | None = 100) -> JSON:
    """Wait until the domain's namespace, identity, quota (and status) are in place; the Domain."""

    async def check() -> JSON:
        ns = await client.get(kinds.NAMESPACES, name)
        assert labels(ns).get("kuscia.secretflow/domain-name") == name
        await client.get(kinds.SERVICEACCOUNTS, name, name)
        await client.get(kinds.ROLEBINDINGS, name, name)
        if pods is not None:
            quota = await client.get(kinds.RESOURCEQUOTAS, QUOTA, name)
            assert quota["status"].get("hard") == {"pods": str(pods)}, quota
        dom = await client.get(kinds.DOMAINS, name)
        assert labels(dom).get("kuscia.secretflow/domain-auth") == "completed"
        assert dom.get("status", {}).get("deployTokenStatuses"), dom
        return dom

    return await eventually(check)


def self_signed_cert() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


# -- creation ---------------------------------------------------------------------------------------


async def test_domain_gets_namespace_quota_config_and_identity(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice", interConnProtocols=["kuscia"]))
    dom = await converged(client, "alice")
    ns = await client.get(kinds.NAMESPACES, "alice")
    assert labels(ns) == {
        "kuscia.secretflow/domain-name": "alice",
        "kuscia.secretflow/interconn-protocols": "kuscia",
    }
    assert ns["status"]["phase"] == "Active"
    quota = await client.get(kinds.RESOURCEQUOTAS, QUOTA, "alice")
    assert quota["spec"]["hard"] == {"pods": "100"}
    assert quota["status"] == {"hard": {"pods": "100"}, "used": {"pods": "0"}}
    assert "ownerReferences" not in quota["metadata"]  # soft delete: nothing the GC could collect
    cm = await client.get(kinds.CONFIGMAPS, "domain-config", "alice")
    assert labels(cm) == {"kuscia.secretflow/domain-name": "alice"}
    rb = await client.get(kinds.ROLEBINDINGS, "alice", "alice")
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "alice", "namespace": "alice"}]
    tokens = dom["status"]["deployTokenStatuses"]
    assert len(tokens) == 1 and tokens[0]["state"] == "unused" and TOKEN.match(tokens[0]["token"])
    assert tokens[0]["lastTransitionTime"].endswith("Z")
    assert "nodeStatuses" not in dom["status"]


async def test_domain_identity_works_in_its_own_namespace_only(api_server: RunningServer, client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice"))
    await converged(client, "alice")
    review = await client.request(
        "POST",
        "/api/v1/namespaces/alice/serviceaccounts/alice/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    token = review["status"]["token"]
    async with Client(api_server.url, ssl_context=api_server.ssl_context(), token=token) as sa:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}}
        await sa.create(kinds.CONFIGMAPS, cm, "alice")
        await sa.list(kinds.PODS, "alice")
        with pytest.raises(errors.Forbidden):
            await sa.create(kinds.CONFIGMAPS, cm, "default")
        with pytest.raises(errors.Forbidden):
            await sa.list(kinds.PODS, "kuscia-system")


async def test_partner_domain(client: Client) -> None:
    """The seed's partner: role label, quota (the seed shows it), no domain-config, master defaults to itself."""
    await client.create(kinds.DOMAINS, domain("bob", role="partner", cert="base64<certificate>"))
    dom = await converged(client, "bob")
    assert dom["spec"]["master"] == "bob"
    assert labels(await client.get(kinds.NAMESPACES, "bob"))["kuscia.secretflow/role"] == "partner"
    with pytest.raises(errors.NotFound):
        await client.get(kinds.CONFIGMAPS, "domain-config", "bob")


async def test_auth_center_creates_the_lite_to_master_route(client: Client) -> None:
    auth = {"authenticationType": "Token", "tokenGenMethod": "RSA-GEN"}
    await client.create(kinds.DOMAINS, domain("carol", authCenter=auth))
    await converged(client, "carol")
    route = await client.get(CDR, "carol-kuscia-system")
    spec = route["spec"]
    assert (spec["source"], spec["destination"], spec["authenticationType"]) == ("carol", "kuscia-system", "Token")
    assert spec["tokenConfig"] == {"tokenGenMethod": "RSA-GEN", "rollingUpdatePeriod": 86400}
    bearer = spec["requestHeadersToAdd"]["Authorization"]
    assert bearer.startswith("Bearer ") and len(bearer) > 50


# -- updates, removal, soft delete ---------------------------------------------------------------


async def test_quota_follows_pod_max_count_and_goes_with_the_field(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice", pods=100))
    await converged(client, "alice", pods=100)
    await client.patch(kinds.DOMAINS, "alice", {"spec": {"resourceQuota": {"podMaxCount": 200}}})
    await converged(client, "alice", pods=200)
    quota = await client.get(kinds.RESOURCEQUOTAS, QUOTA, "alice")
    assert quota["spec"]["hard"] == {"pods": "200"} and quota["status"]["used"] == {"pods": "0"}

    await client.patch(kinds.DOMAINS, "alice", {"spec": {"resourceQuota": None}})

    async def gone() -> None:
        try:
            await client.get(kinds.RESOURCEQUOTAS, QUOTA, "alice")
        except errors.NotFound:
            return
        raise AssertionError("quota still there")

    await eventually(gone)
    await client.patch(kinds.DOMAINS, "alice", {"spec": {"resourceQuota": {"podMaxCount": 0}}})
    await converged(client, "alice", pods=0)


async def test_soft_delete_keeps_namespace_and_quota_and_recreate_unmarks(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice", role="partner", pods=200))
    await converged(client, "alice", pods=200)
    await client.delete(kinds.DOMAINS, "alice")
    with pytest.raises(errors.NotFound):
        await client.get(kinds.DOMAINS, "alice")

    async def marked() -> None:
        ns = await client.get(kinds.NAMESPACES, "alice")
        assert labels(ns).get("kuscia.secretflow/deleted") == "true"
        assert ns["status"]["phase"] == "Active"

    await eventually(marked)
    quota = await client.get(kinds.RESOURCEQUOTAS, QUOTA, "alice")
    assert quota["status"]["hard"] == {"pods": "200"}
    await client.get(kinds.SERVICEACCOUNTS, "alice", "alice")

    await client.create(kinds.DOMAINS, domain("alice", role="partner", pods=100))
    await converged(client, "alice", pods=100)

    async def unmarked() -> None:
        assert "kuscia.secretflow/deleted" not in labels(await client.get(kinds.NAMESPACES, "alice"))

    await eventually(unmarked)


async def test_domain_adopts_an_existing_namespace(client: Client) -> None:
    await client.create(kinds.NAMESPACES, {"metadata": {"name": "dave", "labels": {"team": "x"}}})
    await client.create(kinds.DOMAINS, domain("dave"))
    await converged(client, "dave")
    assert labels(await client.get(kinds.NAMESPACES, "dave")) == {
        "team": "x",
        "kuscia.secretflow/domain-name": "dave",
    }


async def test_master_own_domain_is_accepted(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("kuscia-system", pods=None))
    await converged(client, "kuscia-system", pods=None)


# -- cert -------------------------------------------------------------------------------------------


async def test_cert_placeholder_is_accepted_and_reported_by_an_event(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice", role="partner", cert="base64<certificate>"))
    await converged(client, "alice")

    async def event() -> JSON:
        events = await client.list(kinds.EVENTS, "default")
        found = [e for e in events["items"] if e["involvedObject"].get("name") == "alice"]
        assert found
        return found[0]

    ev = await eventually(event)
    assert (ev["type"], ev["reason"], ev["involvedObject"]["kind"]) == ("Warning", "InvalidCert", "Domain")
    assert "spec.cert" in ev["message"]

    await client.create(kinds.DOMAINS, domain("erin", cert=self_signed_cert()))
    await converged(client, "erin")
    events = await client.list(kinds.EVENTS, "default")
    assert not [e for e in events["items"] if e["involvedObject"].get("name") == "erin"]


# -- admission --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "kube-node-lease", "master", "cross-domain"])
async def test_reserved_domain_ids_are_refused(client: Client, name: str) -> None:
    with pytest.raises(errors.Invalid) as info:
        await client.create(kinds.DOMAINS, domain(name))
    assert f'Domain.kuscia.secretflow "{name}" is invalid: metadata.name' in info.value.message
    assert "reserved" in info.value.message


@pytest.mark.parametrize("name", ["a.b", "x" * 64, "-alice"])
async def test_non_rfc1123_label_domain_ids_are_refused(client: Client, name: str) -> None:
    with pytest.raises(errors.Invalid) as info:
        await client.create(kinds.DOMAINS, domain(name))
    assert "RFC 1123 label" in info.value.message


async def test_unknown_interconn_protocol_is_refused(client: Client) -> None:
    with pytest.raises(errors.Invalid) as info:
        await client.create(kinds.DOMAINS, domain("alice", interConnProtocols=["grpc"]))
    assert 'spec.interConnProtocols[0]: Unsupported value: "grpc"' in info.value.message
    await client.create(kinds.DOMAINS, domain("alice", interConnProtocols=["bfia"]))
    with pytest.raises(errors.Invalid):
        await client.patch(kinds.DOMAINS, "alice", {"spec": {"interConnProtocols": ["x"]}})


# -- deploy tokens ----------------------------------------------------------------------------------


async def test_deploy_tokens_keep_one_used_and_one_unused(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice"))
    dom = await converged(client, "alice")
    first = dom["status"]["deployTokenStatuses"][0]["token"]
    # a lite registered with it: the master flips it to used
    used = {"token": first, "state": "used", "lastTransitionTime": "2030-01-01T00:00:00Z"}
    await client.update(kinds.DOMAINS, {**dom, "status": {"deployTokenStatuses": [used]}}, subresource="status")

    async def fresh_unused() -> list[JSON]:
        tokens = (await client.get(kinds.DOMAINS, "alice"))["status"]["deployTokenStatuses"]
        assert [t["state"] for t in tokens] == ["used", "unused"], tokens
        return list(tokens)

    tokens = await eventually(fresh_unused)
    assert tokens[0]["token"] == first and TOKEN.match(tokens[1]["token"]) and tokens[1]["token"] != first

    dom = await client.get(kinds.DOMAINS, "alice")
    many = [
        {"token": "a" * 32, "state": "used", "lastTransitionTime": "2030-01-01T00:00:00Z"},
        {"token": "b" * 32, "state": "used", "lastTransitionTime": "2031-01-01T00:00:00Z"},
        {"token": "c" * 32, "state": "unused", "lastTransitionTime": "2031-01-01T00:00:00Z"},
        {"token": "d" * 32, "state": "unused", "lastTransitionTime": "2030-01-01T00:00:00Z"},
    ]
    await client.update(kinds.DOMAINS, {**dom, "status": {"deployTokenStatuses": many}}, subresource="status")

    async def trimmed() -> None:
        tokens = (await client.get(kinds.DOMAINS, "alice"))["status"]["deployTokenStatuses"]
        assert [t["token"][0] for t in tokens] == ["b", "c"], tokens

    await eventually(trimmed)


# -- node statuses and node lifecycle ---------------------------------------------------------------


def fake_node(name: str, domain_id: str, ready: str = "True", heartbeat: str = "2030-01-01T00:00:00Z") -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kuscia.secretflow/namespace": domain_id}},
        "status": {
            "nodeInfo": {"kubeletVersion": "v0.1.0-atoll"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": heartbeat,
                    "lastTransitionTime": "2030-01-01T00:00:00Z",
                }
            ],
        },
    }


async def node_statuses(client: Client, name: str) -> list[JSON]:
    return list((await client.get(kinds.DOMAINS, name)).get("status", {}).get("nodeStatuses") or [])


async def test_node_statuses_follow_nodes(client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice"))
    await converged(client, "alice")
    node = await client.create(kinds.NODES, fake_node("alice-node-1", "alice"))
    await client.update(kinds.NODES, {**node, **fake_node("alice-node-1", "alice")}, subresource="status")

    async def ready() -> None:
        assert await node_statuses(client, "alice") == [
            {
                "name": "alice-node-1",
                "version": "v0.1.0-atoll",
                "status": "Ready",
                "lastHeartbeatTime": "2030-01-01T00:00:00Z",
                "lastTransitionTime": "2030-01-01T00:00:00Z",
            }
        ]

    await eventually(ready)
    node = await client.get(kinds.NODES, "alice-node-1")
    await client.update(kinds.NODES, {**node, **fake_node("alice-node-1", "alice", "False")}, subresource="status")

    async def not_ready() -> None:
        assert [s["status"] for s in await node_statuses(client, "alice")] == ["NotReady"]

    await eventually(not_ready)
    await client.delete(kinds.NODES, "alice-node-1")

    async def none() -> None:
        assert await node_statuses(client, "alice") == []

    await eventually(none)


async def test_node_without_heartbeat_is_marked_unknown(api_server: RunningServer, client: Client) -> None:
    reconciler = controller(api_server, "nodelifecycle").reconciler
    clock = reconciler.clock = FakeClock()
    reconciler.settings.grace = 60.0
    await client.create(kinds.DOMAINS, domain("alice"))
    await converged(client, "alice")
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "alice-node-1", "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": "alice-node-1",
            "leaseDurationSeconds": 180,
            "renewTime": "2030-01-01T00:00:00.000000Z",
        },
    }
    lease = await client.create(kinds.LEASES, lease)
    node = await client.create(kinds.NODES, fake_node("alice-node-1", "alice"))
    await client.update(kinds.NODES, {**node, **fake_node("alice-node-1", "alice")}, subresource="status")

    async def ready() -> None:
        assert [s["status"] for s in await node_statuses(client, "alice")] == ["Ready"]

    await eventually(ready)
    # renewals keep the node alive: 120 s pass on the controller's clock, never 60 s without a renewal
    for i in range(3):
        clock.advance(40)
        seen = reconciles("nodelifecycle")
        lease["spec"]["renewTime"] = f"2030-01-01T00:00:0{i + 1}.000000Z"
        lease = await client.update(kinds.LEASES, lease)
        await eventually(lambda seen=seen: reconciles("nodelifecycle") > seen)  # type: ignore[misc]
        await eventually(lambda: idle(api_server, "nodelifecycle"))
    node = await client.get(kinds.NODES, "alice-node-1")
    assert node["status"]["conditions"][0]["status"] == "True", node["status"]["conditions"]
    # no renewal for longer than the grace: the next look at the node marks it Unknown
    clock.advance(61)
    await client.patch(kinds.LEASES, "alice-node-1", {"metadata": {"annotations": {"look": "now"}}}, "kube-node-lease")

    async def unknown() -> JSON:
        node = await client.get(kinds.NODES, "alice-node-1")
        assert node["status"]["conditions"][0]["status"] == "Unknown"
        return node

    node = await eventually(unknown, within=15)
    cond = node["status"]["conditions"][0]
    assert (cond["reason"], cond["lastHeartbeatTime"]) == ("NodeStatusUnknown", "2030-01-01T00:00:00Z")
    assert cond["lastTransitionTime"] == format_time(clock.now())  # written on the controller's clock

    async def domain_not_ready() -> None:
        assert [s["status"] for s in await node_statuses(client, "alice")] == ["NotReady"]

    await eventually(domain_not_ready)


# -- resource quota controller ----------------------------------------------------------------------


def pod(name: str, cpu: str = "100m") -> JSON:
    container = {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


async def test_quota_used_follows_pods(client: Client) -> None:
    await client.create(kinds.NAMESPACES, {"metadata": {"name": "team"}})
    quota = {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "3", "requests.cpu": "1"}}}
    await client.create(kinds.RESOURCEQUOTAS, quota, "team")

    async def used(expected: JSON) -> None:
        async def check() -> None:
            status = (await client.get(kinds.RESOURCEQUOTAS, "q", "team"))["status"]
            assert status == {"hard": {"pods": "3", "requests.cpu": "1"}, "used": expected}, status

        await eventually(check)

    await used({"pods": "0", "requests.cpu": "0"})
    await client.create(kinds.PODS, pod("a"), "team")
    await client.create(kinds.PODS, pod("b", "250m"), "team")
    await used({"pods": "2", "requests.cpu": "350m"})
    a = await client.get(kinds.PODS, "a", "team")
    a["status"]["phase"] = "Succeeded"
    await client.update(kinds.PODS, a, subresource="status")
    await used({"pods": "1", "requests.cpu": "250m"})
    await client.delete(kinds.PODS, "b", "team", grace_period_seconds=0)
    await used({"pods": "0", "requests.cpu": "0"})
    await client.patch(kinds.RESOURCEQUOTAS, "q", {"spec": {"hard": {"pods": "5", "requests.cpu": None}}}, "team")

    async def hard_follows_spec() -> None:
        status = (await client.get(kinds.RESOURCEQUOTAS, "q", "team"))["status"]
        assert status == {"hard": {"pods": "5"}, "used": {"pods": "0"}}, status

    await eventually(hard_follows_spec)


# -- no wasted writes -------------------------------------------------------------------------------


async def test_unchanged_objects_are_never_rewritten(api_server: RunningServer, client: Client) -> None:
    await client.create(kinds.DOMAINS, domain("alice", role="partner"))
    await client.create(kinds.DOMAINS, domain("bob"))
    await converged(client, "alice")
    await converged(client, "bob")
    await eventually(lambda: idle(api_server, "domain", "resourcequota"))

    async def versions() -> dict[str, str]:
        out = {}
        for name in ("alice", "bob"):
            out[f"domain/{name}"] = (await client.get(kinds.DOMAINS, name))["metadata"]["resourceVersion"]
            out[f"ns/{name}"] = (await client.get(kinds.NAMESPACES, name))["metadata"]["resourceVersion"]
            quota = await client.get(kinds.RESOURCEQUOTAS, QUOTA, name)
            out[f"quota/{name}"] = quota["metadata"]["resourceVersion"]
            out[f"sa/{name}"] = (await client.get(kinds.SERVICEACCOUNTS, name, name))["metadata"]["resourceVersion"]
        return out

    before, domain_writes, quota_writes = await versions(), writes("domain"), writes("resourcequota")
    seen = {name: reconciles(name) for name in ("domain", "resourcequota")}
    # poke every watched kind so each domain is reconciled again (and bob's 10 s resync may run)
    for name in ("alice", "bob"):
        await client.patch(kinds.SERVICEACCOUNTS, name, {"metadata": {"annotations": {"poke": "1"}}}, name)
        await client.patch(kinds.RESOURCEQUOTAS, QUOTA, {"metadata": {"annotations": {"poke": "1"}}}, name)
    await client.create(kinds.PODS, pod("p"), "default")  # the quota controller reconciles nothing new

    def reconciled_again() -> None:  # both domains and both quotas looked at again, nothing left to do
        assert reconciles("domain") >= seen["domain"] + 2 and reconciles("resourcequota") >= seen["resourcequota"] + 2
        idle(api_server, "domain", "resourcequota")

    await eventually(reconciled_again)
    after = await versions()
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"sa/alice", "sa/bob", "quota/alice", "quota/bob"}  # only our own pokes
    assert writes("domain") == domain_writes
    assert writes("resourcequota") == quota_writes
