"""One container attempt = one process group led by a tiny ``/bin/sh`` shim.

Why a shim: the agent may die (``kill -9``) while containers run; they must keep running and a
restarted agent must still learn their exit codes. The shim (``sh``, ~1 ms to start, no Python)
enters the working directory, applies ``ulimit -v`` (memory limit) and ``nice`` (cpu limit), writes
its pid, runs the command as its child (on the shim's own stdin: a background job would otherwise
get ``/dev/null``), forwards SIGTERM, and writes the child's exit status to
``<state>.exit`` before exiting with it. The shim is spawned with ``posix_spawn`` in a new session,
so its process group contains the container and everything it forks: stopping a container is
``killpg(SIGTERM)``, then ``killpg(SIGKILL)`` after the grace period, and after any exit the group
is swept with SIGKILL so no descendant outlives its container.

Waiting uses a pidfd (Linux ≥ 5.3), which works for our children and for processes adopted after
an agent restart alike. Identity across restarts is (pid, start time from ``/proc/<pid>/stat``)
plus the unique state path on the shim's command line, so a recycled pid is never mistaken for a
container. Signals the agent ignores are reset for the child; ``SIGINT``/``SIGQUIT`` stay ignored
in the command (POSIX background jobs of a non-interactive shell) — use SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIM = r"""s=$1 w=$2 m=$3 n=$4; shift 4
echo $$ > "$s.pid"
cd "$w" || { echo "atoll-runp: cannot enter working directory $w" >&2; echo 128 > "$s.exit"; exit 128; }
[ -n "$m" ] && { ulimit -v "$m" || exit 128; }
exec 3<&0
if [ -n "$n" ]; then nice -n "$n" "$@" <&3 3<&- & else "$@" <&3 3<&- & fi
c=$!
trap 'kill -TERM $c 2>/dev/null' TERM
while :; do wait $c; r=$?; kill -0 $c 2>/dev/null || break; done
echo $r > "$s.exit"
exit $r
"""
SHIM_NAME = "atoll-runp-shim"
EXIT_UNKNOWN = 137


@dataclass(frozen=True, slots=True)
class Spawned:
    pid: int
    start_time: int | None
    """None when the spawn was asked not to read it (``identify=False``)."""


def start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (clock ticks after boot), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    try:
        return int(raw.rsplit(b")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def is_ours(pid: int, started: int | None, state: Path) -> bool:
    """Whether ``pid`` is still the shim we started for ``state`` (not a recycled pid).

    Right after ``posix_spawn`` returns, ``/proc/<pid>/cmdline`` is often still empty (262 of 300
    spawns on this project's VM): the parent resumes once the child's exec has replaced its memory,
    before the kernel has set the new command line up. An empty command line with the recorded
    start time is that shim (pid and start time identify a process; a zombie shim reads empty too)."""
    if pid <= 0:
        return False
    now = start_time(pid)
    if now is None or (started is not None and now != started):
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if not raw:
        return started is not None
    cmdline = raw.split(b"\0")
    return SHIM_NAME.encode() in cmdline and str(state).encode() in cmdline


def spawn(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    state: Path,
    log_file: Path,
    memory_kb: int | None = None,
    nice: int | None = None,
    stdin_fd: int | None = None,
    tty_fd: int | None = None,
    identify: bool = True,
) -> Spawned:
    """Start ``command`` under the shim in a new session; stdout and stderr append to ``log_file``.

    ``stdin_fd`` (the read end of a pipe the agent writes) replaces ``/dev/null`` as stdin;
    ``tty_fd`` (a pseudo-terminal's slave) becomes stdin, stdout and stderr (the agent copies the
    terminal's output to ``log_file``). ``identify=False`` leaves ``start_time`` to the caller: read
    right after ``posix_spawn``, while the shim's exec is still being set up, ``/proc/<pid>/stat``
    costs about twice its CPU of a moment later (57 against 26 µs here); the pid of an unreaped
    child cannot be reused meanwhile."""
    argv = ["/bin/sh", "-c", SHIM, SHIM_NAME, str(state), cwd, str(memory_kb or ""), str(nice or ""), *command]
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    actions: list[tuple[Any, ...]]
    if tty_fd is not None:
        actions = [(os.POSIX_SPAWN_DUP2, tty_fd, 0), (os.POSIX_SPAWN_DUP2, tty_fd, 1), (os.POSIX_SPAWN_DUP2, tty_fd, 2)]
    else:
        stdin: tuple[Any, ...] = ((os.POSIX_SPAWN_DUP2, stdin_fd, 0) if stdin_fd is not None
                                  else (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0))
        actions = [stdin, (os.POSIX_SPAWN_OPEN, 1, str(log_file), flags, 0o640), (os.POSIX_SPAWN_DUP2, 1, 2)]
    pid = os.posix_spawn(
        "/bin/sh",
        argv,
        env,
        file_actions=actions,
        setsid=True,
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
        setsigmask=(),
    )
    return Spawned(pid, (start_time(pid) or 0) if identify else None)


def read_exit(state: Path) -> int | None:
    try:
        return int((state.parent / (state.name + ".exit")).read_text().strip())
    except (OSError, ValueError):
        return None


def read_pid(state: Path) -> int | None:
    try:
        return int((state.parent / (state.name + ".pid")).read_text().strip())
    except (OSError, ValueError):
        return None


def kill_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    return kill_group(pgid, signal.Signals(0))


def reap(pid: int) -> int | None:
    """Collect an exited child (non-blocking); its exit code, 128+signal if killed."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if not reaped:
        return None
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


async def wait_exit(pid: int, state: Path, *, own_child: bool) -> int:
    """Wait until ``pid`` exits; its exit code (128+signal when killed, 137 when unknown)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    if fd >= 0:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await done
        finally:
            loop.remove_reader(fd)
            os.close(fd)
    code = reap(pid) if own_child else None
    recorded = read_exit(state)
    if recorded is not None:
        return recorded
    return code if code is not None else EXIT_UNKNOWN
