"""``atoll route create SRC DST URL`` (Kuscia's create_cluster_domain_route.sh).

Parses ``http(s)://host[:port][/path]`` (port 80/443 by default, ``isTLS`` from the scheme,
``pathPrefix`` from the path) and applies the ClusterDomainRoute ``<src>-<dst>`` of Kuscia's
``cluster_domain_route.token.yaml``: one port ``{name: http, protocol: HTTP}``, Token
authentication with RSA-GEN tokens rolled every 86400 s, and ``requestHeadersToAdd:
{Authorization: Bearer <src's ServiceAccount token>}`` (ten years, like create_token.sh).
``--transit DOMAIN`` relays through a third domain. An existing route is updated in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from atoll.api import errors, kinds
from atoll.api.constants import domain_id_problem
from atoll.cli.common import fail
from atoll.cli.connect import admin_client, master_options, run
from atoll.client import Client
from atoll.client.rest import resource_path

JSON = dict[str, Any]
CDRS = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
TOKEN_SECONDS = 87600 * 3600
ROLLING_UPDATE_PERIOD = 86400


def parse_endpoint(url: str) -> JSON:
    """``{host, ports: [...]}`` of a route endpoint; ``ValueError`` naming the problem."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"URL {url!r}: must be http(s)://host[:port][/path]")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ValueError(f"URL {url!r}: invalid port") from None
    path = parts.path.rstrip("/")
    return {"host": parts.hostname,
            "ports": [{"name": "http", "protocol": "HTTP", "pathPrefix": path, "isTLS": tls, "port": port}]}


def cluster_domain_route(src: str, dst: str, endpoint: JSON, token: str, transit: str = "") -> JSON:
    spec: JSON = {
        "source": src,
        "destination": dst,
        "interConnProtocol": "kuscia",
        "endpoint": endpoint,
        "authenticationType": "Token",
        "tokenConfig": {"tokenGenMethod": "RSA-GEN", "rollingUpdatePeriod": ROLLING_UPDATE_PERIOD},
        "requestHeadersToAdd": {"Authorization": f"Bearer {token}"},
    }
    if transit:
        spec["transit"] = {"transitMethod": "THIRD-DOMAIN", "domain": {"domainID": transit}}
    return {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "ClusterDomainRoute",
            "metadata": {"name": f"{src}-{dst}"}, "spec": spec}


async def service_account_token(client: Client, domain: str) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS}}
    try:
        reply = await client.request("POST", resource_path(kinds.SERVICEACCOUNTS, domain, domain, "token"), body=body)
    except errors.NotFound:
        raise errors.NotFound(f"SRC: domain {domain} has no service account yet (is it a Domain of this master?)") \
            from None
    return str(((reply or {}).get("status") or {}).get("token") or "")


async def create_route(client: Client, src: str, dst: str, endpoint: JSON, transit: str = "") -> str:
    for role, name in (("SRC", src), ("DST", dst)):
        try:
            await client.get(kinds.DOMAINS, name)
        except errors.NotFound:
            raise errors.NotFound(f"{role}: domain {name} not found (create it first: atoll domain add-lite {name})") \
                from None
    route = cluster_domain_route(src, dst, endpoint, await service_account_token(client, src), transit)
    try:
        await client.create(CDRS, route)
        return f"clusterdomainroute.kuscia.secretflow/{src}-{dst} created"
    except errors.AlreadyExists:
        await client.patch(CDRS, f"{src}-{dst}", {"spec": route["spec"]})
        return f"clusterdomainroute.kuscia.secretflow/{src}-{dst} configured"


@click.group()
def route() -> None:
    """Routes between domains (run on the master)."""


@route.command("create")
@click.argument("src")
@click.argument("dst")
@click.argument("url")
@click.option("--transit", default="", help="Relay through this third domain (THIRD-DOMAIN transit).")
@master_options
def create_cmd(src: str, dst: str, url: str, transit: str, config_path: Path | None, kubeconfig: str | None) -> None:
    """Create the ClusterDomainRoute SRC-DST to DST's gateway at URL."""
    for role, name in (("SRC", src), ("DST", dst)):
        problem = domain_id_problem(name) if name != "kuscia-system" else None
        if problem:
            fail(f"{role} {name!r}: {problem}")
    try:
        endpoint = parse_endpoint(url)
    except ValueError as exc:
        fail(str(exc))
    client, _ = admin_client(config_path, kubeconfig)
    click.echo(run(lambda c: create_route(c, src, dst, endpoint, transit), client))
