"""The local image store of the process runtime: a directory per ``name:tag``.

RunP runs processes on the host, so an "image" is a directory of programs and files: ``atoll image
load -c CONFIG DIR --name NAME:TAG`` copies ``DIR`` into ``<data>/agent/images/<id>`` and records
it in ``index.json``. At start the image's ``bin/`` (if any) and root directory are prepended to
``PATH`` and the root is the default working directory. There is no remote pull (Kuscia's RunP
also imports images into its own store); an unknown image leaves the container waiting with
``ErrImageNeverPull``, its message naming the pod's (defaulted) ``imagePullPolicy``
(:func:`image_missing`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


class ImageError(ValueError):
    """A bad image reference or directory."""


@dataclass(frozen=True, slots=True)
class Image:
    reference: str
    image_id: str
    root: Path

    def path_entries(self) -> list[str]:
        bin_dir = self.root / "bin"
        return [str(bin_dir), str(self.root)] if bin_dir.is_dir() else [str(self.root)]


def normalize(reference: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest`` (the CRI's fully qualified form)."""
    ref = reference.strip()
    if not ref:
        raise ImageError("image reference is empty")
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name + (f"@{digest}" if digest else "")


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._index_file = root / "index.json"
        self._cache: dict[str, dict[str, str]] = {}
        self._mtime = -1.0

    def _index(self) -> dict[str, dict[str, str]]:
        try:
            mtime = self._index_file.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._mtime:
            self._cache = json.loads(self._index_file.read_text())
            self._mtime = mtime
        return self._cache

    def get(self, reference: str) -> Image | None:
        try:
            key = normalize(reference)
        except ImageError:
            return None
        entry = self._index().get(key)
        if entry is None:
            return None
        return Image(key, entry["id"], self.root / entry["dir"])

    def list(self) -> list[Image]:
        return [Image(k, v["id"], self.root / v["dir"]) for k, v in sorted(self._index().items())]

    def load(self, source: Path, reference: str) -> Image:
        """Copy ``source`` into the store under ``reference`` (replacing an older image of that name)."""
        if not source.is_dir():
            raise ImageError(f"{source} is not a directory")
        key = normalize(reference)
        image_id = "sha256:" + _tree_digest(source)
        target = f"{image_id.split(':', 1)[1][:16]}"
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / target
        if not final.exists():
            tmp = self.root / f".{target}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp, symlinks=True)
            os.replace(tmp, final)
        index = dict(self._index())
        index[key] = {"id": image_id, "dir": target}
        tmp_index = self._index_file.with_suffix(".tmp")
        tmp_index.write_text(json.dumps(index, indent=1, sort_keys=True))
        os.replace(tmp_index, self._index_file)
        return Image(key, image_id, final)


def _tree_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_symlink():
            digest.update(f"l {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            digest.update(f"f {rel} {path.stat().st_mode & 0o777:o}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        elif path.is_dir():
            digest.update(f"d {rel}\n".encode())
    return digest.hexdigest()


def pull_policy(spec: JSON) -> str:
    """The container's ``imagePullPolicy``, defaulted as Kubernetes does (``Always`` for ``:latest``
    or no tag, else ``IfNotPresent``)."""
    policy = str(spec.get("imagePullPolicy") or "")
    if policy:
        return policy
    image = str(spec.get("image") or "")
    tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    return "Always" if tag in ("", "latest") and "@" not in image else "IfNotPresent"


def image_missing(image: str, spec: JSON) -> tuple[str, str]:
    """Reason and message for an image absent from the node's store, naming the pod's real policy.

    The reason stays ``ErrImageNeverPull`` whatever the policy: RunP never pulls, so waiting would
    not help (the task controller fails such pods at once). The message says which policy the pod
    asked for instead of claiming ``Never``."""
    policy = pull_policy(spec)
    if policy == "Never":
        return "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
    return "ErrImageNeverPull", (f'Container image "{image}" is not present in the node\'s image store and RunP '
                                 f"does not pull images (pull policy {policy}); load it with `atoll image load`")
