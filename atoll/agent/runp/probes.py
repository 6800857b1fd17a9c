"""Liveness, readiness and startup probes: ``exec``, ``httpGet`` and ``tcpSocket`` against 127.0.0.1.

Semantics are the kubelet's: ``initialDelaySeconds`` before the first probe, then every
``periodSeconds`` (default 10), each attempt bounded by ``timeoutSeconds`` (default 1); a probe
flips to failure after ``failureThreshold`` (3) consecutive failures and to success after
``successThreshold`` (1) successes. Liveness and readiness wait for the startup probe to pass.
An ``exec`` probe runs in the container's environment and working directory.

Attempts are bounded with ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11, a cancel
that arrives as the awaited attempt completes is swallowed by ``wait_for``, and a probe loop that
misses its cancel keeps the container's wait (and so its restart) from ever finishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProbeContext:
    env: dict[str, str]
    cwd: str
    ports: dict[str, int]
    host: str = "127.0.0.1"


def _port(value: Any, ctx: ProbeContext) -> int:
    if isinstance(value, int):
        return value
    if str(value).isdigit():
        return int(str(value))
    if str(value) in ctx.ports:
        return ctx.ports[str(value)]
    raise ValueError(f"unknown port {value!r}")


async def _exec(probe: JSON, ctx: ProbeContext, limit: float) -> tuple[bool, str]:
    command = [str(c) for c in probe["exec"].get("command") or []]
    if not command:
        return False, "exec probe without a command"
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, env=ctx.env, cwd=ctx.cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return False, str(exc)
    try:
        async with asyncio.timeout(limit):
            out, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False, f"command timed out after {limit:g}s"
    return proc.returncode == 0, out.decode(errors="replace")[-1024:]


async def _http(probe: JSON, ctx: ProbeContext, limit: float) -> tuple[bool, str]:
    spec = probe["httpGet"]
    port = _port(spec.get("port"), ctx)
    scheme = str(spec.get("scheme") or "HTTP").upper()
    path = str(spec.get("path") or "/")
    headers = "".join(f"{h['name']}: {h['value']}\r\n" for h in spec.get("httpHeaders") or [])
    context = None
    if scheme == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    host = str(spec.get("host") or ctx.host)

    async def request() -> tuple[bool, str]:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.32\r\n{headers}"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = (await reader.readline()).decode(errors="replace")
        finally:
            writer.close()
        parts = line.split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}" if code >= 400 else line.strip()

    async with asyncio.timeout(limit):
        return await request()


async def _tcp(probe: JSON, ctx: ProbeContext, limit: float) -> tuple[bool, str]:
    spec = probe["tcpSocket"]
    port = _port(spec.get("port"), ctx)
    async with asyncio.timeout(limit):
        _, writer = await asyncio.open_connection(str(spec.get("host") or ctx.host), port)
    writer.close()
    return True, ""


async def probe_once(probe: JSON, ctx: ProbeContext) -> tuple[bool, str]:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if probe.get("exec"):
            return await _exec(probe, ctx, timeout)
        if probe.get("httpGet"):
            return await _http(probe, ctx, timeout)
        if probe.get("tcpSocket"):
            return await _tcp(probe, ctx, timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        return False, str(exc) or type(exc).__name__
    return False, "probe has no handler (exec, httpGet or tcpSocket)"


async def run_probe(
    probe: JSON,
    ctx: ProbeContext,
    *,
    on_result: Callable[[bool, str], Awaitable[None]],
    min_period: float = 1.0,
    stop_on_success: bool = False,
) -> None:
    """Probe until cancelled; ``on_result`` is called whenever the thresholded result changes."""
    period = max(float(probe.get("periodSeconds") or 10), min_period)
    failure_threshold = int(probe.get("failureThreshold") or 3)
    success_threshold = int(probe.get("successThreshold") or 1)
    await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
    result: bool | None = None
    successes = failures = 0
    while True:
        ok, message = await probe_once(probe, ctx)
        if ok:
            successes, failures = successes + 1, 0
            if successes >= success_threshold and result is not True:
                result = True
                await on_result(True, message)
                if stop_on_success:
                    return
        else:
            failures, successes = failures + 1, 0
            if failures >= failure_threshold and result is not False:
                result = False
                await on_result(False, message)
        await asyncio.sleep(period)
