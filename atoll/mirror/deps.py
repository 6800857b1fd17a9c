"""What a pod depends on, and the pod spec with those references renamed for the target cluster.

References are found where Kubernetes allows them: volumes (``configMap``, ``secret``,
``persistentVolumeClaim``, ``projected`` sources), container ``env[].valueFrom`` and ``envFrom``
(app, init and ephemeral containers) and ``imagePullSecrets``. A projected
``serviceAccountToken`` source is a dependency too: the target cluster cannot mint tokens for the
source cluster, so it becomes a Secret (key ``token``) holding a token requested from the source.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
Rename = Callable[[str, str], str]
"""(kind, source name) → target name; kind is ``ConfigMap``, ``Secret`` or ``PersistentVolumeClaim``."""

TOKEN_SECRET_SUFFIX = "token"


@dataclass(slots=True)
class Dependencies:
    configmaps: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    pvcs: set[str] = field(default_factory=set)
    token_volumes: list[str] = field(default_factory=list)
    """Names of volumes with a projected serviceAccountToken source."""

    def items(self) -> Iterator[tuple[str, str]]:
        """(kind, name) of every ConfigMap, Secret and PVC."""
        yield from (("ConfigMap", n) for n in sorted(self.configmaps))
        yield from (("Secret", n) for n in sorted(self.secrets))
        yield from (("PersistentVolumeClaim", n) for n in sorted(self.pvcs))


def _containers(spec: JSON) -> Iterator[JSON]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or ()


def dependencies(pod: JSON) -> Dependencies:
    spec = pod.get("spec") or {}
    deps = Dependencies()
    for volume in spec.get("volumes") or ():
        if "configMap" in volume:
            deps.configmaps.add(str(volume["configMap"].get("name") or ""))
        if "secret" in volume:
            deps.secrets.add(str(volume["secret"].get("secretName") or ""))
        if "persistentVolumeClaim" in volume:
            deps.pvcs.add(str(volume["persistentVolumeClaim"].get("claimName") or ""))
        for source in (volume.get("projected") or {}).get("sources") or ():
            if "configMap" in source:
                deps.configmaps.add(str(source["configMap"].get("name") or ""))
            if "secret" in source:
                deps.secrets.add(str(source["secret"].get("name") or ""))
            if "serviceAccountToken" in source and volume.get("name") not in deps.token_volumes:
                deps.token_volumes.append(str(volume.get("name")))
    for container in _containers(spec):
        for env in container.get("env") or ():
            ref = env.get("valueFrom") or {}
            if "configMapKeyRef" in ref:
                deps.configmaps.add(str(ref["configMapKeyRef"].get("name") or ""))
            if "secretKeyRef" in ref:
                deps.secrets.add(str(ref["secretKeyRef"].get("name") or ""))
        for env_from in container.get("envFrom") or ():
            if "configMapRef" in env_from:
                deps.configmaps.add(str(env_from["configMapRef"].get("name") or ""))
            if "secretRef" in env_from:
                deps.secrets.add(str(env_from["secretRef"].get("name") or ""))
    for ref in spec.get("imagePullSecrets") or ():
        deps.secrets.add(str(ref.get("name") or ""))
    for names in (deps.configmaps, deps.secrets, deps.pvcs):
        names.discard("")
    return deps


def token_secret_name(volume: str) -> str:
    """The source-side name the token Secret of projected volume ``volume`` is mapped from."""
    return f"{volume}-{TOKEN_SECRET_SUFFIX}"


def rewrite_spec(spec: JSON, rename: Rename, token_secrets: dict[str, str]) -> JSON:
    """A copy of ``spec`` whose references use target names; ``token_secrets`` maps a projected
    token volume's name to the target Secret that replaces its serviceAccountToken source."""
    spec = copy.deepcopy(spec)
    for volume in spec.get("volumes") or ():
        if "configMap" in volume:
            volume["configMap"]["name"] = rename("ConfigMap", volume["configMap"].get("name", ""))
        if "secret" in volume:
            volume["secret"]["secretName"] = rename("Secret", volume["secret"].get("secretName", ""))
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]
            claim["claimName"] = rename("PersistentVolumeClaim", claim.get("claimName", ""))
        projected = volume.get("projected")
        if projected:
            projected["sources"] = [_projected(s, rename, token_secrets.get(volume.get("name", "")))
                                    for s in projected.get("sources") or ()]
    for container in _containers(spec):
        for env in container.get("env") or ():
            ref = env.get("valueFrom") or {}
            if "configMapKeyRef" in ref:
                ref["configMapKeyRef"]["name"] = rename("ConfigMap", ref["configMapKeyRef"].get("name", ""))
            if "secretKeyRef" in ref:
                ref["secretKeyRef"]["name"] = rename("Secret", ref["secretKeyRef"].get("name", ""))
        for env_from in container.get("envFrom") or ():
            if "configMapRef" in env_from:
                env_from["configMapRef"]["name"] = rename("ConfigMap", env_from["configMapRef"].get("name", ""))
            if "secretRef" in env_from:
                env_from["secretRef"]["name"] = rename("Secret", env_from["secretRef"].get("name", ""))
    for ref in spec.get("imagePullSecrets") or ():
        ref["name"] = rename("Secret", ref.get("name", ""))
    return spec


def _projected(source: JSON, rename: Rename, token_secret: str | None) -> JSON:
    if "configMap" in source:
        source["configMap"]["name"] = rename("ConfigMap", source["configMap"].get("name", ""))
    if "secret" in source:
        source["secret"]["name"] = rename("Secret", source["secret"].get("name", ""))
    if "serviceAccountToken" in source and token_secret:
        path = str(source["serviceAccountToken"].get("path") or "token")
        return {"secret": {"name": token_secret, "items": [{"key": "token", "path": path}]}}
    return source
