"""Master-side operations on the network, shared by the CLI and the quickstart.

* :func:`add_lite` — Kuscia's add_domain_lite.sh: the Domain of a lite (annotation
  ``domain/<id>: kuscia.secretflow/domain-type=embedded``, ``spec.master``, ``authCenter``
  Token/RSA-GEN); waits up to 60 s for the Domain controller to mint a deploy token and returns it.
  An existing Domain is kept; its current unused token is returned.
* :func:`create_route` — Kuscia's create_cluster_domain_route.sh: ``http(s)://host[:port][/path]``
  (port 80/443 by default, ``isTLS`` from the scheme, ``pathPrefix`` from the path) becomes the
  ClusterDomainRoute ``<src>-<dst>`` of ``cluster_domain_route.token.yaml``: one port ``{name: http,
  protocol: HTTP}``, Token authentication with RSA-GEN tokens rolled every 86400 s and
  ``requestHeadersToAdd: {Authorization: Bearer <src's ServiceAccount token>}`` (ten years, like
  create_token.sh); ``transit`` relays through a third domain. An existing route is updated.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from atoll.api import errors, kinds
from atoll.client import Client, resource_path

JSON = dict[str, Any]
TOKEN_WAIT_SECONDS = 60.0
CDRS = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
TOKEN_SECONDS = 87600 * 3600
ROLLING_UPDATE_PERIOD = 86400


def lite_domain(domain: str, master: str) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": domain, "annotations": {f"domain/{domain}": "kuscia.secretflow/domain-type=embedded"}},
        "spec": {"cert": "", "role": "", "master": master,
                 "authCenter": {"authenticationType": "Token", "tokenGenMethod": "RSA-GEN"}},
    }


def unused_token(domain: JSON) -> str:
    for entry in (domain.get("status") or {}).get("deployTokenStatuses") or []:
        if entry.get("state") == "unused" and entry.get("token"):
            return str(entry["token"])
    return ""


async def wait_token(client: Client, domain: str, within: float = TOKEN_WAIT_SECONDS) -> str:
    deadline = time.monotonic() + within
    while True:
        token = unused_token(await client.get(kinds.DOMAINS, domain))
        if token:
            return token
        if time.monotonic() > deadline:
            raise errors.InternalError(
                f"domain {domain}: no unused deploy token after {within:.0f} s (is the master's domain controller "
                f"running?)"
            )
        await asyncio.sleep(0.2)


async def add_lite(client: Client, domain: str, master: str) -> str:
    try:
        await client.create(kinds.DOMAINS, lite_domain(domain, master))
    except errors.AlreadyExists:
        pass
    return await wait_token(client, domain)


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
