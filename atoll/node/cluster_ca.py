"""The cluster CA of a lite's kubeconfig, written as ``pki/ca.crt`` when the node has none: the
agent's log endpoint trusts it for the API server's client certificate once its serving
certificate came through ``certificates.k8s.io`` (no master data directory needed)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def cluster_ca_pem(kubeconfig: str) -> bytes | None:
    """The current context's ``certificate-authority-data`` (or file), if any."""
    try:
        path = Path(kubeconfig)
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict):
        return None
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or ()}
    cluster_name = contexts.get(doc.get("current-context"), {}).get("cluster")
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or ()}
    cluster = clusters.get(cluster_name) or next(iter(clusters.values()), {})
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        try:
            return (path.parent / str(cluster["certificate-authority"])).read_bytes()
        except OSError:
            return None
    return None


def ensure_cluster_ca(kubeconfig: str, data_dir: Path) -> Path | None:
    """``<data_dir>/pki/ca.crt`` (written from the kubeconfig when missing), or None."""
    target = data_dir / "pki" / "ca.crt"
    if target.exists():
        return target
    pem = cluster_ca_pem(kubeconfig)
    if pem is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.write_bytes(pem)
    return target
