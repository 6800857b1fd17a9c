"""Time per call of a CRD's conversion webhook: the API server's kept clients against one session
(one TCP connection and TLS handshake) per call, as the client was before.

An HTTPS conversion webhook (aiohttp, its own CA as ``caBundle``, renaming one field) runs in this
process; ``--calls`` ConversionReviews of ``--objects`` objects each are sent one after the other,
by ``WebhookClients`` (ours) and by a new ``aiohttp.ClientSession`` per call (reference), in
``--rounds`` alternated rounds. Prints the median µs per call of each and ours/reference.

    python bench/bench_conversion_webhook.py [--calls 200] [--objects 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from atoll.apiserver.apiextensions.webhook import WebhookClients
from atoll.pki import ensure_pki

JSON = dict[str, Any]
GROUP = "bench.example.com"
Convert = Callable[[list[JSON]], Awaitable[Any]]


async def _answer(request: web.Request) -> web.Response:
    review = await request.json()
    req = review["request"]
    converted = [{**o, "apiVersion": req["desiredAPIVersion"]} for o in req["objects"]]
    response = {"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": converted}
    return web.json_response({"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response})


async def _serve(pki_dir: Path) -> tuple[web.AppRunner, JSON]:
    """The webhook, and its ``clientConfig``."""
    pki = ensure_pki(pki_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    app = web.Application()
    app.router.add_post("/convert", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/convert"
    return runner, {"url": url, "caBundle": base64.b64encode(pki.ca_cert.read_bytes()).decode()}


def _reference(config: JSON) -> Convert:
    """The client as it was: a new session (connection, TLS handshake) per review."""
    context = ssl.create_default_context(cadata=base64.b64decode(config["caBundle"]).decode())

    async def convert(objects: list[JSON]) -> Any:
        review = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "u", "desiredAPIVersion": f"{GROUP}/v1", "objects": objects},
        }
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30.0)) as session:
            async with session.post(config["url"], json=review, ssl=context) as reply:
                return await reply.json(content_type=None)

    return convert


async def _per_call(convert: Convert, calls: int, objects: list[JSON]) -> float:
    """µs per call over ``calls`` sequential calls."""
    started = time.perf_counter()
    for _ in range(calls):
        await convert(objects)
    return (time.perf_counter() - started) / calls * 1e6


async def run(calls: int, count: int, rounds: int) -> tuple[list[float], list[float]]:
    objects = [
        {"apiVersion": f"{GROUP}/v1beta1", "kind": "Gizmo", "metadata": {"name": f"g{i}"}, "spec": {"count": i}}
        for i in range(count)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        runner, config = await _serve(Path(tmp) / "pki")
        ours, reference = [], []
        try:
            for _ in range(rounds):
                clients = WebhookClients()  # a fresh one per round: its first call connects
                clients.use(config)  # (as CRDManager for a served CRD: its client is kept)

                async def pooled(objs: list[JSON], clients: WebhookClients = clients) -> Any:
                    return await clients.convert(config, f"gizmos.{GROUP}", objs, f"{GROUP}/v1")

                ours.append(await _per_call(pooled, calls, objects))
                await clients.close()
                reference.append(await _per_call(_reference(config), calls, objects))
        finally:
            await runner.cleanup()
    return ours, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--objects", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ours, reference = asyncio.run(run(args.calls, args.objects, args.rounds))
    o, r = statistics.median(ours), statistics.median(reference)
    print(f"{args.calls} calls of {args.objects} object(s), {args.rounds} rounds (median µs per call)")
    print(f"ours (kept clients):           {o:8.0f} µs   rounds {', '.join(f'{x:.0f}' for x in ours)}")
    print(f"reference (session per call):  {r:8.0f} µs   rounds {', '.join(f'{x:.0f}' for x in reference)}")
    print(f"ours/reference: {o / r:.2f}")


if __name__ == "__main__":
    main()
