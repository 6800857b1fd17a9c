"""Proxy variables for a domain's task processes (the internal listener as their HTTP proxy).

HTTP and gRPC clients that honour the standard variables then reach ``<svc>.<domain>.svc``
through the gateway without any DNS change: plain HTTP as absolute-form requests, gRPC and TLS
as CONNECT tunnels that the gateway forwards (not terminates) to the destination, which ends
them at the service. ``no_proxy`` keeps the process's own local traffic (127.0.0.1 egress ports,
its own services) off the proxy. The node agent adds these to every pod of its domain.
"""

from __future__ import annotations

LOCAL = "localhost,127.0.0.1,::1"


def proxy_env(internal_port: int, host: str = "127.0.0.1") -> dict[str, str]:
    url = f"http://{host}:{internal_port}"
    return {
        "http_proxy": url,
        "HTTP_PROXY": url,
        "https_proxy": url,
        "HTTPS_PROXY": url,
        "grpc_proxy": url,
        "no_proxy": LOCAL,
        "NO_PROXY": LOCAL,
    }
