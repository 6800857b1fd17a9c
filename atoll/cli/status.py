"""``atoll status -c CONFIG``: is this master up, which master leads, how far along is its store,
and whether the node's gateway serves.

Asks the running master of the config's data dir (``run/apiserver.url``) with its admin token:
``/readyz``, the resourceVersion of a LIST (the shared log's revision), and the controller
manager's Lease in the master's domain namespace. The Lease's holderIdentity names the leader's
``host:port`` (``hostname_host:port_suffix``), so with several masters on one database the output
says whether *this* master leads. The same fact is the ``atoll_leader`` gauge on ``/metrics``.
The ``gateway:`` line is the node's ``/readyz/gateway`` check (:mod:`atoll.gateway.readiness`);
a lite answers it on its ``metrics.port`` (the only line a lite's status has).

An ``apiserver: external`` master has no API server of its own: its status asks the API server of
its ``kubeconfig`` (``/readyz`` and the Lease), compares the holder with the identity the running
node recorded in ``run/controller.identity``, and reads the gateway line from its ``metrics.port``.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click

from atoll.cli.common import fail, load

LEASE = "kuscia-controller-manager"
SECRET_PARAMS = frozenset({"password", "passwd", "pass", "sslpassword"})


def _get(url: str, ctx: ssl.SSLContext, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=5) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def _redacted(endpoint: str) -> str:
    if not endpoint:
        return "sqlite (embedded, this master only)"
    parts = urlsplit(endpoint)
    if parts.password:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"{parts.username}:***@{host}{port}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k.lower() in SECRET_PARAMS for k, _ in query):  # postgresql://h/db?password=… is a DSN too
        parts = parts._replace(query=urlencode([(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in query],
                                               safe="*"))
    return urlunsplit(parts)


def _leader_line(lease: Any, address: str = "", identity: str = "") -> str:
    """Who holds the controller Lease; it is this master's when the holderIdentity carries its
    ``address`` (an embedded API server's ``host:port``) or is its recorded ``identity``."""
    spec = (lease or {}).get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    if not holder:
        return "leader:    none (the lease is free)"
    mine = holder == identity if identity else f"_{address}_" in f"{holder}_"
    renewed = spec.get("renewTime") or ""
    age = ""
    if renewed:
        when = dt.datetime.fromisoformat(renewed.replace("Z", "+00:00"))
        age = f", renewed {(dt.datetime.now(dt.UTC) - when).total_seconds():.1f} s ago"
    who = "this master" if mine else "another master"
    return f"leader:    {holder} ({who}{age}, {spec.get('leaseTransitions', 0)} transitions)"


def gateway_line(code: int, body: Any) -> str | None:
    """The ``gateway:`` line from ``/readyz/gateway``'s answer (None: no gateway on this node)."""
    if code == 404:
        return None
    if code == 200:
        return "gateway:   serving"
    reason = str(body or "").strip().removeprefix("internal server error: ")
    return f"gateway:   NOT serving: {reason or code}"


def _metrics_gateway(config: Any, what: str) -> tuple[str, str]:
    """``(url, gateway line)`` from a node's 127.0.0.1 ``metrics.port`` (lites and
    ``apiserver: external`` masters serve ``/readyz/gateway`` there)."""
    from atoll.node.lite_metrics import METRICS_HOST, metrics_port

    port = metrics_port(config.extra)
    if not port:
        fail(f"atoll status: {what} answers it on metrics.port, which this config does not set")
    url = f"http://{METRICS_HOST}:{port}"
    try:
        with urllib.request.urlopen(f"{url}/readyz/gateway", timeout=5) as resp:
            code, body = resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        fail(f"the node at {url} does not answer: {exc}")
    return url, gateway_line(code, body) or "gateway:   none (no gateway: block)"


def _lite_status(config: Any) -> None:
    url, gateway = _metrics_gateway(config, "a lite")
    click.echo(f"lite:      {config.domain_id} ({url})")
    click.echo(gateway)


def _external_status(config: Any) -> None:
    """``apiserver: external``: the API server of the config's kubeconfig, and the Lease there."""
    import asyncio

    from atoll.api import kinds
    from atoll.api.errors import APIError, NotFound
    from atoll.client import Client, ClientError
    from atoll.client.errors import ConfigError as KubeconfigError
    from atoll.node.external import identity_file

    async def ask() -> tuple[str, str, Any]:
        async with Client.from_kubeconfig(config.kubeconfig) as client:
            try:
                await client.request("GET", "/readyz")
                ready = "ready"
            except APIError as exc:
                ready = f"not ready: {exc.code}"
            try:
                lease = await client.get(kinds.LEASES, LEASE, config.domain_id)
            except NotFound:
                lease = None
            return client.server, ready, lease

    try:
        server, ready, lease = asyncio.run(ask())
    except KubeconfigError as exc:
        fail(f"kubeconfig: {exc}")
    except (APIError, ClientError, OSError) as exc:
        fail(f"the API server of {config.kubeconfig} does not answer: {exc}")
    try:
        identity = identity_file(config.data_dir).read_text().strip()
    except OSError:
        identity = "-"  # this node is not running: any holder is another master
    click.echo(f"master:    controllers against {server} (apiserver: external; {ready})")
    click.echo(f"datastore: the external API server's ({config.kubeconfig})")
    click.echo(_leader_line(lease, identity=identity))
    if config.extra.get("gateway") is not None and config.extra.get("metrics"):
        click.echo(_metrics_gateway(config, "this master")[1])


@click.command()
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
def status(config_path: Path) -> None:
    """Show this master's state and which master leads the controllers."""
    from atoll.node.master import endpoint_file
    from atoll.pki import PKI

    config = load(config_path)
    if config.mode == "lite":
        _lite_status(config)
        return
    if config.mode != "master":
        fail("atoll status: only masters and lites have one (this config is mode " + config.mode + ")")
    if config.apiserver_external:
        _external_status(config)
        return
    running = endpoint_file(config.data_dir)
    if not running.exists():
        fail(f"the master of {config.data_dir} is not running ({running} does not exist)")
    url = running.read_text().strip()
    pki = PKI(config.data_dir / "pki")
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    try:
        token = pki.admin_token.read_text().strip()
    except OSError as exc:
        fail(f"atoll status needs the master's admin token: {exc}")
    try:
        ready, _ = _get(f"{url}/readyz", ctx, token)
        _, listed = _get(f"{url}/api/v1/namespaces?limit=1", ctx, token)
        _, lease = _get(f"{url}/apis/coordination.k8s.io/v1/namespaces/{config.domain_id}/leases/{LEASE}", ctx, token)
        gateway = gateway_line(*_get(f"{url}/readyz/gateway", ctx, token))
    except (urllib.error.URLError, OSError) as exc:
        fail(f"the master at {url} does not answer: {exc}")
    revision = ((listed or {}).get("metadata") or {}).get("resourceVersion", "?")
    click.echo(f"master:    {url} ({'ready' if ready == 200 else f'not ready: {ready}'})")
    click.echo(f"datastore: {_redacted(config.datastore_endpoint)}")
    click.echo(f"revision:  {revision}")
    click.echo(_leader_line(lease, urlsplit(url).netloc))
    if gateway is not None:
        click.echo(gateway)
