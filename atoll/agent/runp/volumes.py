"""Volumes as directories in the pod sandbox, and "mounts" by path rewriting.

Without privileges there is no mount namespace, so a ``volumeMount`` is honoured two ways:

* **path rewriting** — every ``mountPath`` prefix (longest first, on path-component boundaries)
  in the command, args, env values and working directory is replaced by the host directory,
  so ``cat /etc/config/a`` reads ``<sandbox>/volumes/config/a``;
* **a view** ``<sandbox>/root/<mountPath>`` of symlinks, and ``ATOLL_SANDBOX_ROOT`` in the
  environment, for programs that build paths themselves.

``configMap``/``secret`` (``items``, ``defaultMode``, ``optional``), ``downwardAPI`` (fieldRef
items), ``projected`` (those three sources), ``emptyDir`` and ``hostPath`` are supported; other
volume types fail the container with ``CreateContainerConfigError``. Files of volumes named in the
pod annotation ``kuscia.secretflow/config-template-volumes`` are rendered per container (§4.4).
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
from pathlib import Path
from typing import Any

from atoll.agent.runp.claims import claim_dir
from atoll.agent.runp.render import render
from atoll.agent.runp.sources import ConfigMissing, Sources, field_value

JSON = dict[str, Any]
ANNOTATION_TEMPLATE_VOLUMES = "kuscia.secretflow/config-template-volumes"
ANNOTATION_TEMPLATE_VALUES = "kuscia.secretflow/config-template-value-cm-name"
ANNOTATION_COMPRESSED = "kuscia.secretflow/config-value-compress-fields-name"


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode & 0o777)
    os.replace(tmp, path)


async def _files(sources: Sources, volume: JSON, host_ip: str) -> list[tuple[str, bytes, int]] | None:
    """(relative path, content, mode) of a data volume; None if it is not a data volume."""
    for kind, field in (("configmap", "configMap"), ("secret", "secret")):
        spec = volume.get(field)
        if spec is not None:
            name = str(spec.get("name") or spec.get("secretName") or "")
            data = await sources.data(kind, name, optional=bool(spec.get("optional"))) or {}
            return _project(data, spec, kind, name)
    if volume.get("downwardAPI") is not None:
        return _downward(sources, volume["downwardAPI"], host_ip)
    if volume.get("projected") is not None:
        out: list[tuple[str, bytes, int]] = []
        mode = int(volume["projected"].get("defaultMode") or 0o644)
        for source in volume["projected"].get("sources") or []:
            for kind, field in (("configmap", "configMap"), ("secret", "secret")):
                if source.get(field) is not None:
                    spec = {**source[field], "defaultMode": mode}
                    name = str(spec.get("name") or "")
                    data = await sources.data(kind, name, optional=bool(spec.get("optional"))) or {}
                    out += _project(data, spec, kind, name)
            if source.get("downwardAPI") is not None:
                out += _downward(sources, {**source["downwardAPI"], "defaultMode": mode}, host_ip)
        return out
    return None


def _project(data: dict[str, bytes], spec: JSON, kind: str, name: str) -> list[tuple[str, bytes, int]]:
    mode = int(spec.get("defaultMode") or 0o644)
    items = spec.get("items")
    if not items:
        return [(key, value, mode) for key, value in data.items()]
    out = []
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if spec.get("optional"):
                continue
            raise ConfigMissing(f"configmap/secret key {key} not found in {kind} {name}")
        out.append((str(item.get("path") or key), data[key], int(item.get("mode") or mode)))
    return out


def _downward(sources: Sources, spec: JSON, host_ip: str) -> list[tuple[str, bytes, int]]:
    mode = int(spec.get("defaultMode") or 0o644)
    out = []
    for item in spec.get("items") or []:
        if item.get("fieldRef"):
            value = field_value(sources.pod, str(item["fieldRef"].get("fieldPath") or ""), host_ip)
            out.append((str(item.get("path") or ""), value.encode(), int(item.get("mode") or mode)))
    return out


def _safe(base: Path, rel: str) -> Path:
    target = (base / rel).resolve()
    if not str(target).startswith(str(base.resolve())):
        raise ConfigMissing(f"volume path {rel!r} escapes the volume")
    return target


async def materialize(sources: Sources, sandbox: Path, *, host_ip: str,
                      local_root: Path | None = None) -> dict[str, Path]:
    """Write every volume of the pod under ``sandbox/volumes``; volume name → host directory.
    ``local_root``: the agent's local-path root (``persistentVolumeClaim`` volumes, :mod:`.claims`)."""
    dirs: dict[str, Path] = {}
    for volume in (sources.pod.get("spec") or {}).get("volumes") or []:
        name = str(volume.get("name") or "")
        if volume.get("hostPath") is not None:
            dirs[name] = Path(str(volume["hostPath"].get("path") or "/"))
            continue
        claim = volume.get("persistentVolumeClaim")
        if isinstance(claim, dict) and local_root is not None:
            dirs[name] = await claim_dir(sources.client, sources.pod, str(claim.get("claimName") or ""), local_root)
            continue
        target = sandbox / "volumes" / name
        if volume.get("emptyDir") is not None:
            target.mkdir(parents=True, exist_ok=True)
            dirs[name] = target
            continue
        files = await _files(sources, volume, host_ip)
        if files is None:
            raise ConfigMissing(f"volume {name}: unsupported volume type for the process runtime")
        fresh = sandbox / "volumes" / f".{name}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        for rel, data, mode in files:
            _write(_safe(fresh, rel), data, mode)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(fresh, target)
        dirs[name] = target
    return dirs


def template_values(raw: dict[str, bytes], compressed: str) -> dict[str, str]:
    """Values ConfigMap → variables; fields listed as compressed are base64(gzip(text))."""
    names = {n.strip() for n in compressed.split(",") if n.strip()}
    out = {}
    for key, value in raw.items():
        if key in names:
            try:
                value = gzip.decompress(base64.b64decode(value))
            except (ValueError, OSError):
                pass
        out[key] = value.decode("utf-8", "replace")
    return out


def render_volumes(pod: JSON, dirs: dict[str, Path], target: Path, variables: dict[str, str]) -> dict[str, Path]:
    """Render the pod's template volumes for one container into ``target``; returns replacements."""
    annotation = str((pod["metadata"].get("annotations") or {}).get(ANNOTATION_TEMPLATE_VOLUMES) or "")
    out: dict[str, Path] = {}
    for name in (n.strip() for n in annotation.split(",") if n.strip()):
        source = dirs.get(name)
        if source is None or not source.is_dir():
            continue
        dest = target / name
        shutil.rmtree(dest, ignore_errors=True)
        for path in source.rglob("*"):
            if path.is_file():
                rel = path.relative_to(source)
                text = render(path.read_text(errors="replace"), variables, json_escape=path.suffix == ".json")
                _write(dest / rel, text.encode(), path.stat().st_mode)
        out[name] = dest
    return out


class PathMap:
    """Container paths → host paths, applied to strings on path-component boundaries."""

    def __init__(self, mapping: dict[str, Path]) -> None:
        self.mapping = {k.rstrip("/") or "/": v for k, v in mapping.items()}
        keys = sorted((k for k in self.mapping if k != "/"), key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<![\w.-])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w.-])") if keys else None
        )

    def rewrite(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: str(self.mapping[m.group(1)]), text)


def mount_map(container: JSON, dirs: dict[str, Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        base = dirs.get(str(mount.get("name") or ""))
        if base is None:
            raise ConfigMissing(f"volumeMount {mount.get('name')}: no such volume")
        sub = str(mount.get("subPath") or "")
        out[str(mount.get("mountPath") or "")] = _safe(base, sub) if sub else base
    return out


def link_view(root: Path, mapping: dict[str, Path]) -> None:
    """``root/<mountPath>`` → host directory symlinks (recreated each start)."""
    for mount_path, host in mapping.items():
        link = root / mount_path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(host)
