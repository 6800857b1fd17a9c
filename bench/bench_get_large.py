"""GET of large ConfigMaps through the general resource handler (``ResourceHandlers.dispatch``, the
path a GET with a query string, an ``Accept`` with parameters, or a first read takes; not
``fastget``), in process: no HTTP, so the number is the handler's own cost.

``--objects`` ConfigMaps of ``--size`` bytes (over ``--keys`` data keys) are created, then read
round-robin ``--rounds`` times.
With more large objects than the shared decoded-object cache holds (32 MB), every read of an
object that is not held decoded costs a decode when the handler asks for the dict; one object
read over and over (``--objects 1``) measures the path when it is held.

    python bench/bench_get_large.py [--objects 600] [--size 65536] [--keys 256] [--rounds 3] [--accept ...] [--before]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import make_mocked_request

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from atoll.api.builtins import BUILTINS
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.http.resources import ResourceHandlers
from atoll.apiserver.http.routing import Route
from atoll.apiserver.registry.storage import WriteOptions
from atoll.store.sqlite import SQLiteStore

CM = next(r for r in BUILTINS if r.plural == "configmaps" and r.group == "")
NS = next(r for r in BUILTINS if r.plural == "namespaces" and r.group == "")


async def run(objects: int, size: int, keys: int, rounds: int, accept: str) -> tuple[float, int]:
    """Median µs per GET over the rounds, and the bytes of one answer."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "state.db")
        await store.start()
        srv = APIServer(store, ServerConfig())
        task = asyncio.create_task(srv.cache.run())
        await srv.cache.wait_ready()
        opts = WriteOptions(field_manager="bench")
        await srv.objects.create(NS, None, {"metadata": {"name": "ns"}}, opts)
        for i in range(objects):
            data = {f"key-{j}": "x" * (size // keys) for j in range(keys)}
            await srv.objects.create(CM, "ns", {"metadata": {"name": f"cm-{i}"}, "data": data}, opts)
        headers = {"Accept": accept} if accept else {}
        requests = [
            (
                make_mocked_request(
                    "GET", f"/api/v1/namespaces/ns/configmaps/cm-{i}?resourceVersion=0", headers=headers
                ),
                Route(CM, "ns", f"cm-{i}", ""),
            )
            for i in range(objects)
        ]
        per_round = []
        length = 0
        for _ in range(rounds + 1):  # the first round warms up
            start = time.perf_counter()
            for request, route in requests:
                response = await srv.resources.dispatch(request, route)
                length = len(response.body)  # type: ignore[attr-defined]
            per_round.append((time.perf_counter() - start) / objects * 1e6)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    per_round = sorted(per_round[1:])
    return per_round[len(per_round) // 2], length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=600)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--keys", type=int, default=256, help="data keys the size is spread over")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accept", default="", help="e.g. application/json;as=Table;g=meta.k8s.io;v=v1")
    parser.add_argument("--before", action="store_true", help="answer as before round 9: from the decoded object")
    args = parser.parse_args()
    if args.before:  # the GET handler before round 9: the dict, then its cached bytes where it could
        ResourceHandlers._read_one = lambda self, request, rd, cached: self._one(  # type: ignore[method-assign]
            request, rd, cached.obj, raw=cached.raw
        )
    us, length = asyncio.run(run(args.objects, args.size, args.keys, args.rounds, args.accept))
    what = f"GET {args.objects} x {args.size} B ConfigMaps ({args.accept or 'JSON'})"
    print(f"{'before' if args.before else 'after '} {what}: {us:.1f} us/GET, {length} B")


if __name__ == "__main__":
    main()
