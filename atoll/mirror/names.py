"""Deterministic names of mirrored objects in the target cluster.

Every namespaced source object lands in one target namespace, so the target name must encode the
source namespace: ``<first 30 chars of the name>-<hex md5 of "namespace/name">`` (at most 63
characters, a valid DNS label when the source name is one). Cluster-scoped objects (PVs) hash
``"/name"``. Collisions across namespaces are avoided by the hash, and ownership is still verified
through back-pointer annotations before any adopt or delete (:mod:`atoll.mirror.podsync`).
"""

from __future__ import annotations

import hashlib


def target_name(namespace: str, name: str) -> str:
    """``name[:30]-md5(namespace/name)`` (Kubeocean's ``GeneratePhysicalResourceName``)."""
    digest = hashlib.md5(f"{namespace}/{name}".encode(), usedforsecurity=False).hexdigest()
    return f"{name[:30]}-{digest}"
