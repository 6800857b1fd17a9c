"""kubectl 1.32 against the in-process master: cascading and namespace deletion end to end.

``kubectl delete`` waits until the object is really gone (GET → LIST → WATCH until DELETED), so
each command returning in time proves the controllers finished: ``--cascade=foreground`` needs
the garbage collector to delete the dependents and drop ``foregroundDeletion``,
``--cascade=orphan`` needs it to strip the ownerReferences and drop ``orphan``, and
``kubectl delete ns`` needs the namespace controller to empty and finalize the namespace.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import RunningServer, kubectl_binary

pytestmark = [pytest.mark.slow, pytest.mark.controllers("namespace", "garbagecollector")]
NS = "cascade-e2e"
TIMEOUT = 60.0



class Kubectl:
    def __init__(self, server: RunningServer, env: dict[str, str]) -> None:
        self.binary = kubectl_binary("1.32")
        self.server = server
        self.env = env

    async def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--kubeconfig",
            str(self.server.kubeconfig),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        try:
            async with asyncio.timeout(TIMEOUT):
                out, err = await proc.communicate(stdin.encode() if stdin else None)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"kubectl {' '.join(args)} did not return in {TIMEOUT:.0f}s") from None
        code = proc.returncode or 0
        if check and code:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({code}): {err.decode()}")
        return code, out.decode(), err.decode()

    async def get(self, *args: str) -> Any:
        _, out, _ = await self("get", "-n", NS, "-o", "json", *args)
        return json.loads(out)

    async def absent(self, *args: str) -> bool:
        code, _, err = await self("get", "-n", NS, *args, check=False)
        return code != 0 and "NotFound" in err


def dependent(name: str, owner: Any, kind: str = "ConfigMap") -> str:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "ownerReferences": [ref]}}
    if kind == "ConfigMap":
        obj["data"] = {"k": "v"}
    else:
        obj["spec"] = {"containers": [{"name": "c", "image": "busybox:1"}]}
    return json.dumps(obj)


async def test_kubectl_cascading_and_namespace_deletion(api_server: RunningServer, kubectl_env: dict[str, str]) -> None:
    kubectl = Kubectl(api_server, kubectl_env)
    await kubectl("create", "namespace", NS)

    # --cascade=foreground: returns only after the dependents and then the owner are gone
    await kubectl("create", "configmap", "owner", "-n", NS, "--from-literal=a=b")
    owner = await kubectl.get("configmap", "owner")
    await kubectl("apply", "-n", NS, "-f", "-", stdin=dependent("dep-cm", owner))
    await kubectl("apply", "-n", NS, "-f", "-", stdin=dependent("dep-pod", owner, "Pod"))
    _, out, _ = await kubectl("delete", "configmap", "owner", "-n", NS, "--cascade=foreground")
    assert 'configmap "owner" deleted' in out
    assert await kubectl.absent("configmap", "owner")
    assert await kubectl.absent("configmap", "dep-cm")
    assert await kubectl.absent("pod", "dep-pod")

    # --cascade=orphan: the owner goes, the dependent stays without its ownerReference
    await kubectl("create", "configmap", "owner2", "-n", NS, "--from-literal=a=b")
    owner2 = await kubectl.get("configmap", "owner2")
    await kubectl("apply", "-n", NS, "-f", "-", stdin=dependent("kept", owner2))
    await kubectl("delete", "configmap", "owner2", "-n", NS, "--cascade=orphan")
    assert await kubectl.absent("configmap", "owner2")
    kept = await kubectl.get("configmap", "kept")
    assert not kept["metadata"].get("ownerReferences")

    # kubectl delete ns waits for the namespace's DELETED event
    await kubectl("create", "secret", "generic", "s", "-n", NS, "--from-literal=a=b")
    _, out, _ = await kubectl("delete", "namespace", NS)
    assert f'namespace "{NS}" deleted' in out
    code, _, err = await kubectl("get", "namespace", NS, check=False)
    assert code != 0 and "NotFound" in err
