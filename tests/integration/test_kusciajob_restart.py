"""A master killed (SIGKILL) in the middle of a running job: after the restart the job completes,
no KusciaTask is created twice and the done task is not re-run.

The master runs the KusciaJob controllers only (this test plays the KusciaTask controller)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from atoll.client import Client
from tests.conftest import ATOLL, REPO, free_port, start_master_process
from tests.integration.jobs import (
    KJ,
    alias_of,
    created_tasks,
    job,
    seed,
    set_task,
    task,
    wait_created,
    wait_phase,
)

LEADER_TAKEOVER = 40.0
"""The restarted master waits for the dead one's controller Lease (12 s) to expire."""


def init_master(data_dir: Path) -> None:
    """``atoll init`` for a master whose config runs only the KusciaJob controllers."""
    config = data_dir / "atoll.yaml"
    args = ["init", "--mode", "master", "--domain", "kuscia-system", "--data-dir", str(data_dir), "--no-gateway"]
    subprocess.run([*ATOLL, *args, "--api-port", str(free_port()), "-o", str(config)], check=True, cwd=REPO,
                   capture_output=True)  # fmt: skip
    config.write_text(config.read_text() + "controllers: [kusciajob]\n")


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=15)


@pytest.mark.slow
async def test_job_completes_after_the_master_is_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    data_dir.mkdir()
    init_master(data_dir)
    proc, server = start_master_process(data_dir)
    try:
        async with Client.from_kubeconfig(server.kubeconfig) as client:
            await seed(client, "alice", "bob")
            await client.create(KJ, job("survivor", task("a"), task("b", "a"), task("c", "a")))
            (first,) = await wait_created(client, "survivor", {"a"}, within=LEADER_TAKEOVER)
            await set_task(client, first["metadata"]["name"], "Running")
        kill(proc)
        proc, server = start_master_process(data_dir)
        async with Client.from_kubeconfig(server.kubeconfig) as client:
            await set_task(client, first["metadata"]["name"], "Succeeded")
            by_alias = {alias_of(t): t for t in await wait_created(client, "survivor", {"a", "b"}, LEADER_TAKEOVER)}
            assert by_alias["a"]["metadata"]["uid"] == first["metadata"]["uid"]  # not created again
            await set_task(client, by_alias["b"]["metadata"]["name"], "Succeeded")
            by_alias = {alias_of(t): t for t in await wait_created(client, "survivor", {"a", "b", "c"})}
            await set_task(client, by_alias["c"]["metadata"]["name"], "Succeeded")
            await wait_phase(client, "survivor", "Succeeded")
            uids = [t["metadata"]["uid"] for t in await created_tasks(client, "survivor")]
            assert len(uids) == len(set(uids)) == 3
    finally:
        kill(proc)
