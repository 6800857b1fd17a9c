"""DataMesh settings from a lite's node configuration (``datamesh:`` block, Atoll's own)::

    datamesh:
      httpPort: 8070     # Kuscia's fixed port; absent or 0 = any free port
      grpcPort: 8071     # the gRPC endpoint (Kuscia's fixed port; absent or 0 = any free port)
      grpc: true         # serve gRPC at all
      host: 127.0.0.1    # the domain's task processes run on this host (RunP)
      enabled: true

Unset ports default to 0 rather than Kuscia's 8070: several lites share one host in the quickstart
and the tests, and tasks learn the bound address from ``DATAMESH_ADDR`` anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SettingsError(ValueError):
    """A ``datamesh.*`` field that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class DataMeshSettings:
    host: str = "127.0.0.1"
    http_port: int = 0
    grpc_port: int = 0
    enabled: bool = True
    grpc: bool = True

    def http_addr(self, bound_port: int | None = None) -> str:
        """``DATAMESH_ADDR`` as handed to task processes: ``host:port``."""
        return f"{self.host}:{bound_port if bound_port is not None else self.http_port}"


def _port(block: dict[str, Any], name: str, default: int) -> int:
    value = block.get(name, default)
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"datamesh.{name}: must be an integer port (got {value!r})") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"datamesh.{name}: must be in 0..65535 (got {port})")
    return port


def settings_from_extra(extra: dict[str, Any]) -> DataMeshSettings:
    """The ``datamesh`` block of a node config's extra fields (absent: free ports)."""
    block = extra.get("datamesh") or {}
    if not isinstance(block, dict):
        raise SettingsError(f"datamesh: must be a mapping (got {block!r})")
    return DataMeshSettings(
        host=str(block.get("host") or "127.0.0.1"),
        http_port=_port(block, "httpPort", 0),
        grpc_port=_port(block, "grpcPort", 0),
        enabled=bool(block.get("enabled", True)),
        grpc=bool(block.get("grpc", True)),
    )
