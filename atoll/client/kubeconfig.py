"""Kubeconfig and in-cluster configuration → server URL, ``ssl.SSLContext`` and auth headers.

Only the parts of the kubeconfig format that a control plane needs are supported: ``server``,
``certificate-authority(-data)``, ``insecure-skip-tls-verify``, ``tls-server-name`` (ignored with a
clear error is worse than best effort, so it is honoured through ``server_hostname``), ``token`` /
``tokenFile``, ``username``/``password`` (basic auth), ``client-certificate(-data)`` /
``client-key(-data)``, and the context's ``namespace``. ``exec`` and ``auth-provider`` plugins
raise :class:`ConfigError` naming the user: silently connecting unauthenticated would only move the
failure somewhere harder to read.

``ssl`` can only load client certificates from files, so ``*-data`` material is written to a
private temporary file (mode 0600) that is removed right after loading. Relative file paths are
resolved against the kubeconfig's directory, as kubectl does.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from atoll.client.errors import ConfigError

JSON = dict[str, Any]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class KubeConfig:
    """Everything :class:`atoll.client.Client` needs to reach one API server."""

    server: str
    ssl_context: ssl.SSLContext | None = None
    token: str | None = None
    token_file: str | None = None
    """Re-read periodically by the client: projected service-account tokens rotate."""
    headers: Mapping[str, str] = field(default_factory=dict)
    namespace: str = "default"
    server_hostname: str | None = None


def load_kubeconfig(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None, context: str | None = None
) -> KubeConfig:
    """Load a kubeconfig from a path, a parsed dict, or ``$KUBECONFIG`` / ``~/.kube/config``."""
    base_dir = Path.cwd()
    if source is None:
        env = os.environ.get("KUBECONFIG", "")
        source = env.split(os.pathsep)[0] if env else Path.home() / ".kube" / "config"
    if isinstance(source, Mapping):
        doc: JSON = dict(source)
    else:
        path = Path(source).expanduser()
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"kubeconfig {path} is not a mapping")
        doc, base_dir = loaded, path.parent
    return _from_doc(doc, context, base_dir)


def in_cluster_config(
    *,
    host: str | None = None,
    port: str | None = None,
    token_file: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR / "token",
    ca_file: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR / "ca.crt",
    namespace_file: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR / "namespace",
) -> KubeConfig:
    """The service-account configuration a pod gets (``KUBERNETES_SERVICE_HOST/PORT``, token, CA)."""
    host = host or os.environ.get("KUBERNETES_SERVICE_HOST")
    port = port or os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
    if not Path(token_file).is_file():
        raise ConfigError(f"service-account token {token_file} does not exist")
    ctx = ssl.create_default_context(cafile=str(ca_file)) if Path(ca_file).is_file() else None
    ns_path = Path(namespace_file)
    namespace = ns_path.read_text().strip() if ns_path.is_file() else "default"
    server_host = f"[{host}]" if ":" in host else host
    return KubeConfig(
        server=f"https://{server_host}:{port}",
        ssl_context=ctx or ssl.create_default_context(),
        token=Path(token_file).read_text().strip(),
        token_file=str(token_file),
        namespace=namespace,
    )


def _named(doc: JSON, section: str, name: str) -> JSON:
    for entry in doc.get(section) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(section[:-1]) or {}
            if not isinstance(value, dict):
                raise ConfigError(f"kubeconfig {section} entry {name!r} is not a mapping")
            return value
    raise ConfigError(f"kubeconfig has no {section[:-1]} named {name!r}")


def _from_doc(doc: JSON, context_name: str | None, base_dir: Path) -> KubeConfig:
    context_name = context_name or doc.get("current-context")
    if not context_name:
        raise ConfigError("kubeconfig has no current-context and no context was given")
    ctx = _named(doc, "contexts", str(context_name))
    cluster = _named(doc, "clusters", str(ctx.get("cluster", "")))
    user = _named(doc, "users", str(ctx["user"])) if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise ConfigError(f"user {ctx.get('user')!r}: {plugin} credential plugins are not supported")
    headers: dict[str, str] = {}
    if user.get("username") and not (user.get("token") or user.get("tokenFile")):
        raw = f"{user['username']}:{user.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    token_file = _path(user.get("tokenFile"), base_dir)
    token = user.get("token")
    if token is None and token_file:
        token = _read(token_file).decode().strip()
    ssl_context = _ssl_context(cluster, user, base_dir) if server.startswith("https") else None
    return KubeConfig(
        server=server,
        ssl_context=ssl_context,
        token=str(token) if token else None,
        token_file=token_file,
        headers=headers,
        namespace=str(ctx.get("namespace") or "default"),
        server_hostname=cluster.get("tls-server-name"),
    )


def _ssl_context(cluster: JSON, user: JSON, base_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _material(cluster, "certificate-authority", base_dir)
        if ca is not None:
            try:
                ctx.load_verify_locations(cadata=ca.decode())
            except (ssl.SSLError, ValueError) as exc:
                raise ConfigError(f"invalid certificate-authority: {exc}") from exc
    cert = _material(user, "client-certificate", base_dir)
    key = _material(user, "client-key", base_dir)
    if (cert is None) != (key is None):
        raise ConfigError("client-certificate and client-key must be given together")
    if cert is not None and key is not None:
        with _private_file(cert) as cert_path, _private_file(key) as key_path:
            try:
                ctx.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as exc:
                raise ConfigError(f"invalid client certificate or key: {exc}") from exc
    return ctx


def _material(section: JSON, name: str, base_dir: Path) -> bytes | None:
    """PEM bytes from ``<name>-data`` (base64) or the file ``<name>``."""
    data = section.get(f"{name}-data")
    if data:
        try:
            return base64.b64decode(data, validate=False)
        except ValueError as exc:
            raise ConfigError(f"{name}-data is not valid base64") from exc
    path = _path(section.get(name), base_dir)
    return _read(path) if path else None


def _path(value: Any, base_dir: Path) -> str | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else base_dir / path)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


@contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="atoll-kube-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        os.unlink(path)
