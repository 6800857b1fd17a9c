"""The quickstart's KusciaJob: a two-party PSI between alice and bob with the built-in ``atoll-psi`` app.

* example data: 100,000 IDs per party with a known overlap (:func:`example_data`), registered as
  DomainData ``alice-table`` / ``bob-table`` with ``atoll data add`` on each lite;
* the ``atoll-psi`` image (``atoll/apps/psi``, contract C4) loaded into each lite and its AppImage
  applied on the master;
* the KusciaJob of Kuscia's example (initiator alice, one task, both parties receive), watched until
  it ends, with progress of job, task and parties;
* the check: each party's ``psi-output`` DomainData exists and its file holds exactly the known
  intersection.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.node.network import ATOLL, LocalNetwork

JSON = dict[str, Any]
ROWS = 100_000
OVERLAP = 25_000
APP_IMAGE = "atoll-psi"
IMAGE_REF = "atoll-psi:0.1"
KUSCIAJOBS = kinds.kind("kuscia.secretflow", "kusciajobs")
KUSCIATASKS = kinds.kind("kuscia.secretflow", "kusciatasks")
APPIMAGES = kinds.kind("kuscia.secretflow", "appimages")
DOMAINDATAS = kinds.kind("kuscia.secretflow", "domaindatas")
JOB_TIMEOUT_SECONDS = 300.0


class JobError(RuntimeError):
    """The PSI job failed or produced a wrong result; the message names the party and reason."""


@dataclass(frozen=True, slots=True)
class ExampleData:
    files: dict[str, Path]
    intersection: frozenset[str]


def example_data(directory: Path, rows: int = ROWS, overlap: int = OVERLAP) -> ExampleData:
    """alice holds ids ``0 … rows-1``, bob ``rows-overlap … 2·rows-overlap-1`` (as 12-digit strings)."""
    directory.mkdir(parents=True, exist_ok=True)
    ranges = {"alice": range(rows), "bob": range(rows - overlap, 2 * rows - overlap)}
    files = {}
    for party, ids in ranges.items():
        path = directory / f"{party}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "score"])
            writer.writerows((f"{i:012d}", i % 97) for i in ids)
        files[party] = path
    common = frozenset(f"{i:012d}" for i in range(rows - overlap, rows))
    return ExampleData(files, common)


def psi_image_dir() -> Path:
    import atoll.apps.psi as psi  # type: ignore[import-not-found,unused-ignore]

    return Path(psi.__file__).parent


def task_input_config(tuning: JSON | None = None) -> JSON:
    parties = ["alice", "bob"]
    config: JSON = {
        "sf_cluster_desc": {"parties": parties},
        "sf_datasource_config": {p: {"id": "default-data-source"} for p in parties},
        "sf_input_ids": ["alice-table", "bob-table"],
        "sf_output_ids": ["psi-output", "psi-output"],
        "sf_output_uris": ["psi-output.csv", "psi-output.csv"],
        "sf_node_eval_param": {
            "domain": "data_prep", "name": "psi", "version": "1.0.0",
            "attr_paths": ["input/input_ds1/keys", "input/input_ds2/keys", "receiver_parties", "sort_result",
                           "join_type", "protocol"],
            "attrs": [{"ss": ["id"]}, {"ss": ["id"]}, {"ss": parties}, {"b": True}, {"s": "inner_join"},
                      {"s": "PROTOCOL_ECDH"}],
        },
    }
    if tuning:
        config["atoll_psi"] = tuning  # the app's optional knobs (timeouts, batch size)
    return config


def psi_job(name: str, tuning: JSON | None = None) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaJob",
        "metadata": {"name": name, "namespace": "cross-domain"},
        "spec": {
            "initiator": "alice",
            "scheduleMode": "BestEffort",
            "maxParallelism": 1,
            "tasks": [{
                "taskID": f"{name}-psi",
                "alias": "psi",
                "priority": 100,
                "appImage": APP_IMAGE,
                "taskInputConfig": json.dumps(task_input_config(tuning), separators=(",", ":")),
                "parties": [{"domainID": "alice"}, {"domainID": "bob"}],
            }],
        },
    }


async def _atoll(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(*ATOLL, *args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise JobError(err.decode().strip().splitlines()[-1] if err.strip() else f"atoll {args[0]} failed")


async def prepare(network: LocalNetwork, data: ExampleData) -> None:
    """Image and data on each lite, AppImage on the master."""
    image = psi_image_dir()
    for domain, lite in network.lites.items():
        await _atoll("image", "load", "-c", str(lite.config), "--name", IMAGE_REF, str(image))
        await _atoll("data", "add", "-c", str(lite.config), "--name", f"{domain}-table", domain,
                     str(data.files[domain]))
    appimage = yaml.safe_load((image / "appimage.yaml").read_text())
    async with network.client() as client:
        try:
            await client.create(APPIMAGES, appimage)
        except errors.AlreadyExists:
            pass


def _progress(job: JSON, tasks: list[JSON]) -> str:
    status = job.get("status") or {}
    parts = [f"job {job['metadata']['name']}: {status.get('phase') or 'Pending'}"]
    for task in tasks:
        tstatus = task.get("status") or {}
        party_list = tstatus.get("partyTaskStatus") or []
        parties = ", ".join(f"{p.get('domainID')} {p.get('phase') or '?'}" for p in party_list)
        parts.append(f"task {task['metadata']['name']}: {tstatus.get('phase') or 'Pending'}"
                     + (f" ({parties})" if parties else ""))
    return "; ".join(parts)


async def run_job(client: Client, body: JSON, show: Callable[[str], None],
                  within: float = JOB_TIMEOUT_SECONDS) -> JSON:
    """Apply the job and follow it; returns the finished job (or raises :class:`JobError`)."""
    await client.create(KUSCIAJOBS, body, "cross-domain")
    return await follow_job(client, body["metadata"]["name"], show, within)


async def follow_job(client: Client, name: str, show: Callable[[str], None],
                     within: float = JOB_TIMEOUT_SECONDS) -> JSON:
    """Show the job's progress until it ends; the finished job, or :class:`JobError` naming the party."""
    deadline = time.monotonic() + within
    last = ""
    while True:
        job = await client.get(KUSCIAJOBS, name, "cross-domain")
        tasks, _ = await client.list_all(KUSCIATASKS, "cross-domain")
        mine = [t for t in tasks if t["metadata"]["name"].startswith(f"{name}-")]
        line = _progress(job, mine)
        if line != last:
            show(line)
            last = line
        phase = (job.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            if phase == "Failed":
                raise JobError(f"job {name} Failed: {_failure(job, mine)}")
            return job
        if time.monotonic() > deadline:
            raise JobError(f"job {name}: not finished within {within:.0f} s ({line})")
        await asyncio.sleep(0.2)


def _failure(job: JSON, tasks: list[JSON]) -> str:
    reasons = []
    for task in tasks:
        for party in (task.get("status") or {}).get("partyTaskStatus") or []:
            if party.get("phase") == "Failed":
                reasons.append(f"party {party.get('domainID')}: {party.get('message') or 'failed'}")
        message = (task.get("status") or {}).get("message")
        if message and not reasons:
            reasons.append(message)
    return "; ".join(reasons) or str((job.get("status") or {}).get("message") or "no reason given")


def _first_column(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return [row[0] for row in list(csv.reader(f))[1:]]


async def check_outputs(network: LocalNetwork, data: ExampleData) -> list[str]:
    """Each party's ``psi-output`` DomainData and file hold exactly the known intersection."""
    lines = []
    async with network.client() as client:
        for domain, lite in network.lites.items():
            try:
                output = await client.get(DOMAINDATAS, "psi-output", domain)
            except errors.NotFound:
                raise JobError(f"party {domain}: no DomainData psi-output") from None
            path = lite.data_dir / "var" / "storage" / "data" / str(output["spec"].get("relativeURI", "psi-output.csv"))
            ids = await asyncio.to_thread(_first_column, path)
            if set(ids) != data.intersection or len(ids) != len(data.intersection):
                raise JobError(f"party {domain}: psi-output has {len(ids)} rows, expected the "
                               f"{len(data.intersection)} common IDs")
            lines.append(f"{domain}: DomainData psi-output ({path}): {len(ids):,} rows = the known overlap ✓")
    return lines
