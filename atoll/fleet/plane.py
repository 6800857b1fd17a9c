"""What the fleet needs from an instance's control plane, provided by the node layer.

An instance is a whole Atoll control plane (API server, its own store, CA and admin token). The
fleet layer sits below the API server, so it never builds one: the node injects a
``PlaneFactory`` (``atoll.node.fleet`` serves each instance in-process, on the management
plane's event loop) and the fleet drives the ``ControlPlane`` it returns.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from atoll.client import Client


@dataclass(frozen=True, slots=True)
class Upstream:
    """How to reach an instance's API server as its administrator."""

    url: str
    ssl_context: ssl.SSLContext
    token: str
    ca_file: Path
    unix_socket: Path | None = None
    """The instance's loopback listener (plain HTTP on a 0700 Unix socket) when the plane is
    in-process: its Karmada controllers and statistics use it instead of TLS over TCP."""


class ControlPlane(Protocol):
    async def run(self, ready: asyncio.Event) -> None:
        """Serve until cancelled; set ``ready`` once the API (and its CRDs) is served."""

    def upstream(self) -> Upstream:
        """The endpoint and admin credentials (valid once ready)."""


PlaneFactory = Callable[[str, Path], ControlPlane]
"""``factory(instance_name, data_dir)``: a control plane keeping all its state in ``data_dir``."""


def admin_client(upstream: Upstream, *, user_agent: str = "kairship-controller-manager") -> Client:
    if upstream.unix_socket is not None:
        return Client(
            "http://localhost", unix_socket=str(upstream.unix_socket), token=upstream.token, user_agent=user_agent
        )
    return Client(upstream.url, ssl_context=upstream.ssl_context, token=upstream.token, user_agent=user_agent)
