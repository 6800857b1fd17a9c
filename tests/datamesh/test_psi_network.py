"""``atoll-psi`` as a real KusciaTask: the KusciaTask controller allocates ports and egress
Services (C2), the two Envoy gateways tunnel the PSI batches alice <-> bob (Token routes), the
agents run the image with DATAMESH_ADDR, and each party registers its output through DataMesh."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from atoll.api import kinds
from atoll.api.kuscia_tasks import KUSCIATASKS
from atoll.datamesh.constants import DOMAINDATAS
from tests.conftest import eventually
from tests.datamesh.psi_network import PsiNetwork, psi_network

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
KUSCIAJOBS = kinds.kind("kuscia.secretflow", "kusciajobs")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PsiNetwork]:
    async with psi_network(tmp_path_factory.mktemp("psi-net")) as network:
        yield network


def psi_input(**attrs: Any) -> str:
    paths = ["input/input_ds1/keys", "input/input_ds2/keys", *attrs]
    values = [{"ss": ["id"]}, {"ss": ["uid"]}, *attrs.values()]
    return json.dumps({
        "sf_datasource_config": {"alice": {"id": "default-data-source"}, "bob": {"id": "default-data-source"}},
        "sf_cluster_desc": {"parties": ["alice", "bob"]},
        "sf_node_eval_param": {"domain": "data_prep", "name": "psi", "version": "1.0.0",
                               "attr_paths": paths, "attrs": values},
        "sf_input_ids": ["alice-table", "bob-table"],
        "sf_output_ids": ["psi-output", "psi-output"],
        "sf_output_uris": ["psi-output.csv", "psi-output.csv"],
    })


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def read_table(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


async def register(net: PsiNetwork, domain: str, data_id: str, header: list[str]) -> None:
    body = {"domaindata_id": data_id, "type": "table", "relative_uri": f"{data_id}.csv",
            "columns": [{"name": h, "type": "str"} for h in header]}
    url = f"http://{net.meshes[domain].addr}/api/v1/datamesh/domaindata/create"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        assert (await resp.json())["status"]["code"] == 0


async def test_psi_task_through_the_gateways(net: PsiNetwork) -> None:
    alice_ids = [f"u{i:05d}" for i in range(3000)]
    bob_ids = [f"u{i:05d}" for i in range(2000, 6000)]
    write_table(net.data_root("alice") / "alice-table.csv", ["id", "a"], [[k, "x"] for k in alice_ids])
    write_table(net.data_root("bob") / "bob-table.csv", ["uid", "b"], [[k, "y"] for k in bob_ids])
    await register(net, "alice", "alice-table", ["id", "a"])
    await register(net, "bob", "bob-table", ["uid", "b"])
    task = {
        "apiVersion": "kuscia.secretflow/v1alpha1", "kind": "KusciaTask",
        "metadata": {"name": "psi-gw", "namespace": "cross-domain"},
        "spec": {"initiator": "alice", "taskInputConfig": psi_input(),
                 "parties": [{"domainID": "alice", "appImageRef": "atoll-psi"},
                             {"domainID": "bob", "appImageRef": "atoll-psi"}]},
    }
    await net.client.create(KUSCIATASKS, task, "cross-domain")

    async def finished() -> dict[str, Any]:
        got = await net.client.get(KUSCIATASKS, "psi-gw", "cross-domain")
        assert (got.get("status") or {}).get("phase") in ("Succeeded", "Failed"), got.get("status")
        return dict(got["status"])

    status = await eventually(finished, 120, every=0.5)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    expected = sorted(f"u{i:05d}" for i in range(2000, 3000))
    for domain, key in (("alice", 0), ("bob", 0)):
        out = await net.client.get(DOMAINDATAS, "psi-output", domain)
        assert out["spec"]["vendor"] == "atoll-psi"
        rows = read_table(net.data_root(domain) / "psi-output.csv")
        assert [r[key] for r in rows[1:]] == expected
        # the batches went through this domain's egress listener (the peer endpoint it was given)
        assert net.egress_log(domain).stat().st_size > 0


async def test_the_kusciajob_of_the_docs(net: PsiNetwork) -> None:
    """docs/apps.md's KusciaJob shape: one task, same key column on both sides, default outputs."""
    for domain, ids in (("alice", range(500)), ("bob", range(250, 900))):
        write_table(net.data_root(domain) / f"{domain}-j.csv", ["id", "v"], [[f"k{i}", domain] for i in ids])
        await register(net, domain, f"{domain}-j", ["id", "v"])
    config = json.dumps({"sf_cluster_desc": {"parties": ["alice", "bob"]}, "sf_input_ids": ["alice-j", "bob-j"],
                         "sf_output_ids": ["job-output", "job-output"],
                         "sf_output_uris": ["job-output.csv", "job-output.csv"],
                         "sf_node_eval_param": {"attr_paths": ["input/input_ds1/keys", "input/input_ds2/keys"],
                                                "attrs": [{"ss": ["id"]}, {"ss": ["id"]}]}})
    job = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "KusciaJob",
           "metadata": {"name": "psi-demo", "namespace": "cross-domain"},
           "spec": {"initiator": "alice", "scheduleMode": "BestEffort", "maxParallelism": 1,
                    "tasks": [{"taskID": "psi-demo-psi", "alias": "psi", "appImage": "atoll-psi",
                               "taskInputConfig": config, "parties": [{"domainID": "alice"}, {"domainID": "bob"}]}]}}
    await net.client.create(KUSCIAJOBS, job, "cross-domain")

    async def finished() -> dict[str, Any]:
        got = await net.client.get(KUSCIAJOBS, "psi-demo", "cross-domain")
        assert (got.get("status") or {}).get("phase") in ("Succeeded", "Failed"), got.get("status")
        return dict(got["status"])

    status = await eventually(finished, 120, every=0.5)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    for domain in ("alice", "bob"):
        rows = read_table(net.data_root(domain) / "job-output.csv")
        assert [r[0] for r in rows[1:]] == sorted(f"k{i}" for i in range(250, 500))
