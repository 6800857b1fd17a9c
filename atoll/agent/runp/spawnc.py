"""``posix_spawn`` through libc with the GIL released, so a spawn can leave the agent's event loop.

``os.posix_spawn`` holds the GIL for the whole call, and the call lasts until the child has exec'd
(glibc's ``clone(CLONE_VM | CLONE_VFORK)``): 1.2-7 ms per container on the project's VM, during
which no other thread of the agent runs, so a worker thread gains nothing. Here the spawn is
prepared on the caller's thread (file actions and attributes built with the GIL held: a thread
that gives the GIL back waits for it again, up to the 5 ms switch interval while the loop is
busy) and :meth:`Spawn.start` — the one ``posix_spawn`` call — releases it, so the agent runs it on
a worker thread while its loop goes on. Only what the shim needs is supported: file actions
``open`` and ``dup2``, a new session, signals reset to their default, an empty signal mask.

:func:`available` is False where libc's ``posix_spawn`` cannot be loaded (callers then use
``os.posix_spawn``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

# glibc's flag values (<spawn.h>), also musl's.
_SETSIGDEF = 0x04
_SETSIGMASK = 0x08
_SETSID = 0x80
_BUFFER = 1024
"""Bytes reserved for posix_spawnattr_t (336 on glibc x86-64), file actions (80), sigset_t (128)."""


def _load() -> tuple[Any, Any] | None:
    """libc twice: calls that release the GIL (``CDLL``) and calls that keep it (``PyDLL``)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        free, held = ctypes.CDLL(name), ctypes.PyDLL(name)
        free.posix_spawn.restype = ctypes.c_int
        held.posix_spawnattr_setflags.argtypes = [ctypes.c_void_p, ctypes.c_short]
        held.posix_spawn_file_actions_addopen  # noqa: B018 -- present, or AttributeError
    except (OSError, AttributeError):
        return None
    return free, held


_LIBC = _load()


def available() -> bool:
    return _LIBC is not None


def _check(err: int, what: str) -> None:
    if err:
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _strings(items: Iterable[str]) -> Any:
    encoded = [os.fsencode(s) for s in items]
    return (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)


class Spawn:
    """One prepared ``posix_spawn(path, argv, env, file_actions=…, setsid=True, setsigdef=…,
    setsigmask=())`` (file actions ``POSIX_SPAWN_OPEN`` and ``POSIX_SPAWN_DUP2`` only). Build it
    on any thread, :meth:`start` it once (it releases the GIL), then :meth:`close` it."""

    def __init__(self, path: str, argv: list[str], env: Mapping[str, str], *,
                 file_actions: list[tuple[Any, ...]], setsigdef: Iterable[int]) -> None:
        assert _LIBC is not None, "posix_spawn through libc is not available"
        libc = _LIBC[1]
        self._actions = ctypes.create_string_buffer(_BUFFER)
        self._attr = ctypes.create_string_buffer(_BUFFER)
        self._path = os.fsencode(path)
        self._argv = _strings(argv)
        self._envp = _strings(f"{k}={v}" for k, v in env.items())
        self._open = False
        _check(libc.posix_spawn_file_actions_init(self._actions), "posix_spawn_file_actions_init")
        if libc.posix_spawnattr_init(self._attr):
            libc.posix_spawn_file_actions_destroy(self._actions)
            raise OSError("posix_spawnattr_init failed")
        self._open = True
        try:
            self._setup(libc, file_actions, setsigdef)
        except BaseException:
            self.close()
            raise

    def _setup(self, libc: Any, file_actions: list[tuple[Any, ...]], setsigdef: Iterable[int]) -> None:
        for action in file_actions:
            if action[0] == os.POSIX_SPAWN_OPEN:
                _, fd, file, flags, mode = action
                _check(libc.posix_spawn_file_actions_addopen(self._actions, fd, os.fsencode(file), flags, mode),
                       "posix_spawn_file_actions_addopen")
            elif action[0] == os.POSIX_SPAWN_DUP2:
                _check(libc.posix_spawn_file_actions_adddup2(self._actions, action[1], action[2]),
                       "posix_spawn_file_actions_adddup2")
            else:
                raise ValueError(f"unsupported file action {action!r}")
        sigdef, empty = ctypes.create_string_buffer(_BUFFER), ctypes.create_string_buffer(_BUFFER)
        libc.sigemptyset(sigdef)
        for sig in setsigdef:
            libc.sigaddset(sigdef, int(sig))
        libc.sigemptyset(empty)
        _check(libc.posix_spawnattr_setsigdefault(self._attr, sigdef), "posix_spawnattr_setsigdefault")
        _check(libc.posix_spawnattr_setsigmask(self._attr, empty), "posix_spawnattr_setsigmask")
        _check(libc.posix_spawnattr_setflags(self._attr, _SETSID | _SETSIGDEF | _SETSIGMASK),
               "posix_spawnattr_setflags")

    def start(self) -> int:
        """The ``posix_spawn`` call, GIL released; the child's pid."""
        assert _LIBC is not None and self._open
        pid = ctypes.c_int(0)
        err = _LIBC[0].posix_spawn(ctypes.byref(pid), self._path, self._actions, self._attr, self._argv, self._envp)
        _check(err, self._path.decode(errors="replace"))
        return pid.value

    def close(self) -> None:
        if self._open and _LIBC is not None:
            self._open = False
            _LIBC[1].posix_spawnattr_destroy(self._attr)
            _LIBC[1].posix_spawn_file_actions_destroy(self._actions)
