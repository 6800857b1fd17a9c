"""K8s controller mode: a master with ``apiserver: external`` runs Atoll's controllers and scheduler
against a second Atoll API server used as a plain Kubernetes API (no Atoll controllers running
there; ``atoll crds --kubeconfig`` installs the CRDs), and a KusciaJob between two lites (RunP
agents joined to that server) succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

import pytest

from atoll.api import errors, kinds
from atoll.api.kuscia_tasks import APPIMAGES
from atoll.node.config import NodeConfig, load_config
from atoll.node.control_plane import CRDS
from atoll.node.external import ExternalMaster
from tests.conftest import REPO, eventually, start_until_ready
from tests.integration.agents import agent_config, kill_leftovers, load_image, start_agent
from tests.integration.jobs import KJ, job, task, wait_phase
from tests.integration.runk_clusters import in_process_master
from tests.integration.task_network import CAPACITY, app_image

pytestmark = pytest.mark.slow


def test_config_accepts_apiserver_external(tmp_path: Path) -> None:
    path = tmp_path / "atoll.yaml"
    path.write_text("mode: master\ndomainID: kuscia-system\ndataDir: d\napiserver: external\nkubeconfig: /k\n")
    config = load_config(path)
    assert config.apiserver_external and config.kubeconfig == "/k"
    assert "apiserver: external" in config.to_yaml()
    path.write_text("mode: master\ndomainID: kuscia-system\ndataDir: d\napiserver: external\n")
    with pytest.raises(ValueError, match="kubeconfig: required with apiserver: external"):
        load_config(path)


async def atoll(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atoll.cli.main", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_controllers_on_an_external_api_server_run_a_job(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    async with in_process_master(tmp_path / "plain") as plain, plain.client() as client:
        # a CRD missing on the plain server comes back with `atoll crds --kubeconfig`
        await client.delete(CRDS, "kusciajobs.kuscia.secretflow")
        await eventually(lambda: _absent(client, "kusciajobs.kuscia.secretflow"), 15)
        installed = await atoll("crds", "--kubeconfig", str(plain.kubeconfig))
        assert "created kusciajobs.kuscia.secretflow" in installed
        config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=tmp_path / "controllers",
                            kubeconfig=str(plain.kubeconfig), apiserver_external=True)
        master = ExternalMaster(config)
        controllers = await start_until_ready(master.run(), master.ready, 30, "external master not ready")
        agents = []
        try:
            for domain in ("alice", "bob"):
                with contextlib.suppress(errors.AlreadyExists):
                    await client.create(kinds.DOMAINS, {"metadata": {"name": domain}, "spec": {}})
                with contextlib.suppress(errors.AlreadyExists):
                    await client.create(kinds.NAMESPACES, {"metadata": {"name": domain}})
                load_image(tmp_path / domain)
                cfg = dataclasses.replace(agent_config(plain, tmp_path / domain, domain), capacity=dict(CAPACITY))
                agents.append(await start_agent(plain, cfg))
            await client.create(APPIMAGES, app_image())
            parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
            fields = {"appImage": "atoll-test", "parties": parties, "taskInputConfig": json.dumps({"out": str(out)})}
            await client.create(KJ, job("ext", task("only", **fields)))
            done = await wait_phase(client, "ext", "Succeeded", within=90)
            assert done["status"]["phase"] == "Succeeded"
            assert sorted(p.name.split("-")[-1] for p in out.glob("*.json")) == ["alice.json", "bob.json"]
            lease = await client.get(kinds.LEASES, "kuscia-controller-manager", "kuscia-system")
            assert lease["spec"]["holderIdentity"] == master.identity  # the external master leads
            # `atoll status` of an external master: its API server, and that it leads
            config_file = tmp_path / "controllers.yaml"
            config_file.write_text(config.to_yaml())
            status = await atoll("status", "-c", str(config_file))
            assert f"controllers against {client.server} (apiserver: external; ready)" in status, status
            assert f"leader:    {master.identity} (this master" in status, status
        finally:
            for agent in agents:
                await agent.stop()
            for domain in ("alice", "bob"):
                kill_leftovers(tmp_path / domain)
            controllers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await controllers


async def _absent(client: object, name: str) -> bool:
    try:
        await client.get(CRDS, name)  # type: ignore[attr-defined]
    except errors.NotFound:
        return True
    return False
