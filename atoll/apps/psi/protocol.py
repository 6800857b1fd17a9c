"""The two-party ECDH PSI exchange over HTTP, both parties symmetric (semi-honest model).

Each party P with secret scalar ``a`` runs a server on its ``psi`` port and a client to the peer:

* client: for each batch of P's distinct IDs, ``POST /psi/v1/batch?seq=N`` with ``H(x)^a``
  (32 bytes each); the peer answers ``H(x)^ab`` in the same order **iff P receives the result**
  (else an empty body). When every batch is answered: ``POST /psi/v1/done`` with the counts.
* server: each batch from the peer (``H(y)^b``) is raised to ``a``; the result goes back in the
  answer iff the peer receives, and its 128-bit prefixes go into P's peer set iff P receives.

A receiving party then knows, for each of its own IDs, whether ``H(x)^ab`` is in the peer set
``{H(y)^ab}``: the intersection — and nothing about the peer's other IDs (DDH). Requests carry
``X-Psi-Task``/``X-Psi-Party``; batches are idempotent by ``seq`` (a retried batch is harmless).
Up to ``window`` batches are in flight, so each party computes while the other does; the CPU
work of both directions interleaves on one event loop (each step is one batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import aiohttp
import orjson
from aiohttp import web

from atoll.apps.psi.config import PsiTask
from atoll.apps.psi.group import GroupError, Masker, compare_keys, hash_to_group

log = logging.getLogger("atoll-psi")
MAX_BATCH_BYTES = 2 * 2**20
RETRY_STATUSES = frozenset({502, 503, 504})


class ProtocolError(RuntimeError):
    """The exchange cannot complete (peer unreachable, silent, or sending bad data)."""


class PeerState:
    """What the server side has received from the peer."""

    def __init__(self) -> None:
        self.seqs: set[int] = set()
        self.items = 0
        self.expected: int | None = None
        self.compare: set[bytes] = set()
        self.complete = asyncio.Event()
        self.progress = time.monotonic()

    def check_complete(self) -> None:
        if self.expected is not None and len(self.seqs) >= self.expected:
            self.complete.set()


class Exchange:
    def __init__(self, task: PsiTask, masker: Masker | None = None) -> None:
        self.task = task
        self.masker = masker or Masker()
        self.peer = PeerState()
        self.answers: dict[int, bytes] = {}
        self.sent_items = 0
        self.answered = False
        self.progress = time.monotonic()
        self.failure: ProtocolError | None = None

    # -- server ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BATCH_BYTES + 4096)
        app.router.add_post("/psi/v1/batch", self._batch)
        app.router.add_post("/psi/v1/done", self._done)
        app.router.add_get("/psi/v1/ready", self._ready)
        return app

    def _check_sender(self, request: web.Request) -> None:
        task, party = request.headers.get("X-Psi-Task", ""), request.headers.get("X-Psi-Party", "")
        if task != self.task.task_id or party != self.task.peer_party:
            raise web.HTTPForbidden(text=f"not a peer of task {self.task.task_id!r}: {party!r}/{task!r}")

    async def _ready(self, request: web.Request) -> web.Response:
        self._check_sender(request)
        return web.Response(text="ok")

    async def _batch(self, request: web.Request) -> web.Response:
        self._check_sender(request)
        seq = int(request.query.get("seq", "-1"))
        body = await request.read()
        try:
            double = self.masker.mask_packed(body)
        except GroupError as exc:
            self.fail(ProtocolError(f"peer {self.task.peer_party} sent a bad batch {seq}: {exc}"))
            raise web.HTTPBadRequest(text=str(exc)) from None
        peer = self.peer
        if seq not in peer.seqs:
            peer.seqs.add(seq)
            peer.items += len(body) // 32
            if self.task.self_receives:
                peer.compare.update(compare_keys(double))
        peer.progress = time.monotonic()
        peer.check_complete()
        return web.Response(body=double if self.task.peer_receives else b"")

    async def _done(self, request: web.Request) -> web.Response:
        self._check_sender(request)
        info = orjson.loads(await request.read())
        self.peer.expected = int(info["batches"])
        self.peer.progress = time.monotonic()
        self.peer.check_complete()
        return web.json_response({"ok": True})

    def fail(self, error: ProtocolError) -> None:
        if self.failure is None:
            self.failure = error
        self.peer.complete.set()

    # -- client ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"X-Psi-Task": self.task.task_id, "X-Psi-Party": self.task.self_party}

    async def _post(self, http: aiohttp.ClientSession, path: str, body: bytes, deadline: float) -> bytes:
        url = f"{self.task.peer_url}{path}"
        delay = 0.05
        while True:
            try:
                async with http.post(url, data=body, headers=self._headers()) as resp:
                    if resp.status == 200:
                        self.progress = time.monotonic()
                        self.answered = True
                        return await resp.read()
                    text = (await resp.text())[:300]
                    if resp.status not in RETRY_STATUSES:
                        raise ProtocolError(f"peer {self.task.peer_party} answered {resp.status} to {path}: {text}")
                    problem = f"HTTP {resp.status} {text}"
            except aiohttp.ClientConnectionError as exc:
                problem = str(exc) or type(exc).__name__
            if time.monotonic() > deadline:
                raise ProtocolError(f"peer {self.task.peer_party} unreachable at {self.task.peer_url}: {problem}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def send(self, http: aiohttp.ClientSession, batches: Iterator[list[bytes]]) -> None:
        """Stream this party's masked batches, keep the answers, then announce the end."""
        window = asyncio.Semaphore(self.task.window)
        first_deadline = time.monotonic() + self.task.connect_timeout
        seq = 0
        async with asyncio.TaskGroup() as tg:
            for batch in batches:
                masked = self.masker.mask(hash_to_group(batch))
                self.sent_items += len(batch)
                await window.acquire()
                tg.create_task(self._send_one(http, seq, masked, window, first_deadline))
                seq += 1
                await asyncio.sleep(0)  # let the server side and the sockets run between batches
        done = orjson.dumps({"batches": seq, "items": self.sent_items})
        await self._post(http, "/psi/v1/done", done, time.monotonic() + self.task.peer_timeout)

    async def _send_one(
        self, http: aiohttp.ClientSession, seq: int, masked: bytes, window: asyncio.Semaphore, first_deadline: float
    ) -> None:
        try:
            # until the peer first answers it may still be starting: connect_timeout; then peer_timeout
            deadline = time.monotonic() + self.task.peer_timeout if self.answered else first_deadline
            answer = await self._post(http, f"/psi/v1/batch?seq={seq}", masked, deadline)
            if self.task.self_receives:
                if len(answer) != len(masked):
                    raise ProtocolError(f"peer {self.task.peer_party} answered batch {seq} with {len(answer)} "
                                        f"bytes for {len(masked)}")
                self.answers[seq] = answer
        finally:
            window.release()

    async def wait_peer(self) -> None:
        """Until the peer's batches are all in (or it falls silent for ``peer_timeout`` seconds)."""
        while not self.peer.complete.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.peer.complete.wait()
            silent = time.monotonic() - max(self.peer.progress, self.progress)
            if not self.peer.complete.is_set() and silent > self.task.peer_timeout:
                raise ProtocolError(f"peer {self.task.peer_party} sent nothing for {silent:.0f} s "
                                    f"({len(self.peer.seqs)} batches received)")
        if self.failure is not None:
            raise self.failure

    def matched_positions(self) -> Iterator[int]:
        """Positions (in this party's distinct-key order) whose double-masked value the peer also has."""
        peer, pos = self.peer.compare, 0
        for seq in range(len(self.answers)):
            for prefix in compare_keys(self.answers[seq]):
                if prefix in peer:
                    yield pos
                pos += 1
