"""Instances on a management master: isolated control planes, admin Secret, deletion guard."""

from __future__ import annotations

import base64

import pytest
import yaml

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.fleet.kinds import CLUSTERS, INSTANCES
from tests.conftest import RunningServer, eventually
from tests.fleet.conftest import create_instance, data_dir

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


def instance_client(secret: dict[str, object]) -> Client:
    data = secret["data"]
    assert isinstance(data, dict)
    return Client.from_kubeconfig(yaml.safe_load(base64.b64decode(data["kubeconfig"])))


async def instance_gone(client: Client, name: str) -> bool:
    names = [i["metadata"]["name"] for i in (await client.list(INSTANCES))["items"]]
    return name not in names


async def no_clusters(inst: Client) -> bool:
    return not (await inst.list(CLUSTERS))["items"]


async def test_instance_gets_its_own_control_plane(management: RunningServer) -> None:
    async with management.client() as client:
        obj = await create_instance(client, "alpha")
        status = obj["status"]
        assert status["karmadaVersion"] and status["kubernetesVersion"]
        assert obj["metadata"]["finalizers"] == ["kairship.io/instance-protection"]
        secret = await client.get(kinds.SECRETS, "alpha-admin", "kairship-system")
        assert status["secretRef"] == {"namespace": "kairship-system", "name": "alpha-admin"}
    assert (data_dir(management) / "alpha" / "state.db").exists()
    assert (data_dir(management) / "alpha" / "pki" / "ca.crt").read_bytes() != management.ca_file.read_bytes()
    async with instance_client(secret) as inst:
        crds = await inst.list(kinds.kind("apiextensions.k8s.io", "customresourcedefinitions"))
        names = {c["metadata"]["name"] for c in crds["items"]}
        wanted = {"clusters.cluster.karmada.io", "propagationpolicies.policy.karmada.io", "works.work.karmada.io"}
        assert wanted <= names
        assert "domains.kuscia.secretflow" not in names
        namespaces = {n["metadata"]["name"] for n in (await inst.list(kinds.NAMESPACES))["items"]}
        assert {"karmada-system", "karmada-cluster"} <= namespaces


async def test_instances_never_see_each_others_objects(management: RunningServer) -> None:
    async with management.client() as client:
        await client.get(INSTANCES, "alpha")
        await create_instance(client, "beta")
        a = instance_client(await client.get(kinds.SECRETS, "alpha-admin", "kairship-system"))
        b = instance_client(await client.get(kinds.SECRETS, "beta-admin", "kairship-system"))
    async with a, b:
        await a.create(kinds.CONFIGMAPS, {"metadata": {"name": "only-in-alpha"}, "data": {"k": "v"}}, "default")
        assert [
            c["metadata"]["name"]
            for c in (await b.list(kinds.CONFIGMAPS, "default"))["items"]
            if c["metadata"]["name"] == "only-in-alpha"
        ] == []
        with pytest.raises(errors.NotFound):
            await b.get(kinds.CONFIGMAPS, "only-in-alpha", "default")
        # the two instances' credentials are their own: alpha's token means nothing to beta
        assert a.server != b.server


async def test_delete_refused_while_member_clusters_remain(management: RunningServer) -> None:
    async with management.client() as client:
        await create_instance(client, "gamma")
        secret = await client.get(kinds.SECRETS, "gamma-admin", "kairship-system")
        async with instance_client(secret) as inst:
            await inst.create(
                CLUSTERS,
                {
                    "apiVersion": "cluster.karmada.io/v1alpha1",
                    "kind": "Cluster",
                    "metadata": {"name": "member1"},
                    "spec": {"syncMode": "Push", "apiEndpoint": "https://127.0.0.1:1"},
                },
            )
            with pytest.raises(errors.Forbidden) as refused:
                await client.delete(INSTANCES, "gamma")
            assert 'instance "gamma"' in str(refused.value) and "member1" in str(refused.value)
            await inst.delete(CLUSTERS, "member1")  # the cluster controller finalises it
            cleared: bool = await eventually(lambda: no_clusters(inst), 30.0)
            assert cleared
        await client.delete(INSTANCES, "gamma")
        gone: bool = await eventually(lambda: instance_gone(client, "gamma"), 30.0)
        assert gone
        with pytest.raises(errors.NotFound):
            await client.get(kinds.SECRETS, "gamma-admin", "kairship-system")
    assert not (data_dir(management) / "gamma").exists()
