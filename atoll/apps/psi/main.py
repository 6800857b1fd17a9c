"""``atoll-psi``: the built-in two-party ECDH PSI app (the reference for writing Atoll/Kuscia apps).

1. read the task from ``TASK_INPUT_CONFIG`` / ``TASK_CLUSTER_DEFINE`` / ``ALLOCATED_PORTS``;
2. find the input table through DataMesh (``DATAMESH_ADDR``);
3. serve the ``psi`` port, stream this party's masked IDs to the peer, answer the peer's;
4. a receiving party writes its matched rows beside its input's data source and registers them
   as a new DomainData through DataMesh.

Exit 0 on success; otherwise one ``atoll-psi: error: ...`` line on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from atoll.apps.psi.config import ECDH_PROTOCOLS, PsiTask, TaskConfigError, load_task
from atoll.apps.psi.dmclient import DataMeshClient, DataMeshError
from atoll.apps.psi.protocol import Exchange, ProtocolError
from atoll.apps.psi.table import KeyReader, TableError, write_matches

log = logging.getLogger("atoll-psi")
VENDOR = "atoll-psi"
BIND_HOST = "127.0.0.1"
"""RunP pods share the host; the domain's gateway reaches them on the pod IP, 127.0.0.1."""


async def run(task: PsiTask, datamesh_addr: str) -> dict[str, Any]:
    started = time.monotonic()
    if task.protocol not in ECDH_PROTOCOLS:
        log.warning("protocol %s requested; atoll-psi runs ECDH-PSI (X25519), same intersection", task.protocol)
    exchange = Exchange(task)
    runner = web.AppRunner(exchange.app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, BIND_HOST, task.port).start()
    connector = aiohttp.TCPConnector(limit=task.window + 2)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
            mesh = DataMeshClient(datamesh_addr, http)
            data = await mesh.domaindata(task.input_id)
            source = await mesh.table_path(data)
            keys = KeyReader(source, task.keys)
            try:
                await exchange.send(http, keys.batches(task.batch_size))
            except* ProtocolError as group:
                raise group.exceptions[0] from None
            await exchange.wait_peer()
            summary = {"party": task.self_party, "rows": keys.rows, "distinct": len(keys.index),
                       "peer_distinct": exchange.peer.items}
            if task.self_receives:
                summary.update(await _output(task, mesh, exchange, keys, data, source))
    finally:
        await runner.cleanup()
    summary["seconds"] = round(time.monotonic() - started, 3)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    summary["max_rss_mb"] = usage.ru_maxrss // 1024
    return summary


async def _output(task: PsiTask, mesh: DataMeshClient, exchange: Exchange, keys: KeyReader,
                  data: dict[str, Any], source: Path) -> dict[str, Any]:
    keys_by_pos = list(keys.index)
    matched = {keys_by_pos[pos] for pos in exchange.matched_positions()}
    if not matched and not task.allow_empty_result:
        raise ProtocolError("the intersection is empty (set allow_empty_result to accept that)")
    source_id = task.output_datasource or str(data.get("datasource_id") or "")
    target = (await mesh.localfs_root(source_id)) / task.output_uri
    rows = await asyncio.to_thread(write_matches, source, target, task.keys, matched, task.sort_result)
    await mesh.call("domaindata/create", {
        "domaindata_id": task.output_id, "name": task.output_id, "type": "table",
        "relative_uri": task.output_uri, "datasource_id": source_id, "columns": data.get("columns") or [],
        "vendor": VENDOR, "attributes": {"task_id": task.task_id, "protocol": "ECDH-PSI-X25519",
                                         "peer": task.peer_party},
    })
    return {"intersection": len(matched), "output_rows": rows, "output": task.output_id}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s atoll-psi %(levelname)s %(message)s",
                        stream=sys.stderr)
    try:
        task = load_task(os.environ)
        summary = asyncio.run(run(task, os.environ.get("DATAMESH_ADDR", "")))
    except (TaskConfigError, DataMeshError, TableError, ProtocolError, OSError) as exc:
        print(f"atoll-psi: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    print(orjson.dumps(summary).decode(), flush=True)


if __name__ == "__main__":
    main()
