"""``instances/NAME/proxy``: any API call (watch included) relayed to the instance, RBAC per instance."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.fleet.kubeconfigs import proxy_kubeconfig
from tests.conftest import RunningServer, kubectl_binary, kubectl_environ
from tests.fleet.conftest import create_instance, proxy_url

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def user_for_instance(client: Client, user: str, instance: str) -> str:
    """A ServiceAccount allowed ``instances/proxy`` of one instance only; returns its token."""
    ns = "kairship-system"
    await client.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": user}}, ns)
    role = f"kairship-{instance}-{user}"
    await client.create(
        kinds.CLUSTERROLES,
        {
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": ["kairship.io"],
                    "resources": ["instances/proxy"],
                    "resourceNames": [instance],
                    "verbs": ["*"],
                },
                {"apiGroups": ["kairship.io"], "resources": ["instances"], "verbs": ["get", "list"]},
            ],
        },
    )
    await client.create(
        kinds.CLUSTERROLEBINDINGS,
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": ns}],
        },
    )
    sa = kinds.SERVICEACCOUNTS
    tr = await client.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{user}/token", body={"spec": {"expirationSeconds": 3600}}
    )
    assert sa.plural == "serviceaccounts"
    return str(tr["status"]["token"])


async def test_proxy_serves_the_instance_api_with_watch(management: RunningServer) -> None:
    async with management.client() as client:
        await create_instance(client, "p1")
    async with Client(proxy_url(management, "p1"), ssl_context=management.ssl_context(), token=management.token) as p1:
        namespaces = {n["metadata"]["name"] for n in (await p1.list(kinds.NAMESPACES))["items"]}
        assert "karmada-cluster" in namespaces and "kuscia-system" not in namespaces
        listed = await p1.list(kinds.CONFIGMAPS, "default")
        seen: list[tuple[str, dict[str, Any]]] = []

        async def watch() -> None:
            async with contextlib.aclosing(
                p1.watch(kinds.CONFIGMAPS, "default", resource_version=listed["metadata"]["resourceVersion"])
            ) as events:
                async for event in events:
                    seen.append(event)
                    if event[1]["metadata"]["name"] == "through-proxy":
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        await p1.create(kinds.CONFIGMAPS, {"metadata": {"name": "through-proxy"}, "data": {"a": "1"}}, "default")
        await asyncio.wait_for(watcher, 30)
        assert seen[-1][0] == "ADDED"
        await p1.patch(kinds.CONFIGMAPS, "through-proxy", {"data": {"a": "2"}}, "default")
        assert (await p1.get(kinds.CONFIGMAPS, "through-proxy", "default"))["data"] == {"a": "2"}
        with pytest.raises(errors.NotFound):
            await p1.get(kinds.CONFIGMAPS, "absent", "default")


async def test_unknown_instance_is_404(management: RunningServer) -> None:
    async with Client(
        proxy_url(management, "nope"), ssl_context=management.ssl_context(), token=management.token
    ) as nope:
        with pytest.raises(errors.NotFound) as missing:
            await nope.list(kinds.NAMESPACES)
        assert "nope" in str(missing.value)


async def test_user_of_one_instance_gets_403_on_another(management: RunningServer) -> None:
    async with management.client() as client:
        await create_instance(client, "p2")
        token = await user_for_instance(client, "carol", "p1")
    ctx = management.ssl_context()
    async with (
        Client(proxy_url(management, "p1"), ssl_context=ctx, token=token) as p1,
        Client(proxy_url(management, "p2"), ssl_context=ctx, token=token) as p2,
    ):
        assert (await p1.get(kinds.CONFIGMAPS, "through-proxy", "default"))["metadata"]["name"] == "through-proxy"
        with pytest.raises(errors.Forbidden) as refused:
            await p2.list(kinds.CONFIGMAPS, "default")
    message = str(refused.value)
    assert 'instances.kairship.io "p2"' in message and "system:serviceaccount:kairship-system:carol" in message


async def test_kubectl_through_the_proxy_kubeconfig(management: RunningServer, tmp_path: Path) -> None:
    doc = yaml.safe_load(management.kubeconfig.read_text())
    config = tmp_path / "p1.kubeconfig"
    config.write_text(yaml.safe_dump(proxy_kubeconfig(doc, None, "p1")))
    kubectl = kubectl_binary()
    env = kubectl_environ(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl, "--kubeconfig", str(config), *args], capture_output=True, text=True, env=env, timeout=60
        )

    created = await asyncio.to_thread(run, "create", "configmap", "via-kubectl", "--from-literal=k=v")
    assert created.returncode == 0, created.stderr
    got = await asyncio.to_thread(run, "get", "configmaps", "-o", "name")
    assert "configmap/via-kubectl" in got.stdout, got.stderr
    crds = await asyncio.to_thread(run, "get", "crd", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/clusters.cluster.karmada.io" in crds.stdout, crds.stderr


async def test_official_python_client_through_the_proxy(management: RunningServer, tmp_path: Path) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes import watch as k8s_watch

    path = tmp_path / "p1.kubeconfig"
    path.write_text(yaml.safe_dump(proxy_kubeconfig(yaml.safe_load(management.kubeconfig.read_text()), None, "p1")))
    api_client = await asyncio.to_thread(k8s_config.new_client_from_config, config_file=str(path))
    try:
        core = k8s.CoreV1Api(api_client)
        names = await asyncio.to_thread(
            lambda: [str(n.metadata and n.metadata.name) for n in core.list_namespace().items]
        )
        assert "karmada-system" in names
        body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="via-python"), data={"k": "v"})
        await asyncio.to_thread(core.create_namespaced_config_map, "default", body)

        def first_event() -> tuple[str, str]:
            stream = k8s_watch.Watch().stream(  # type: ignore[no-untyped-call]
                core.list_namespaced_config_map, "default", field_selector="metadata.name=via-python", timeout_seconds=5
            )
            for event in stream:
                return str(event["type"]), str(event["object"].metadata.name)
            return "", ""

        assert await asyncio.to_thread(first_event) == ("ADDED", "via-python")
    finally:
        await asyncio.to_thread(api_client.close)
