"""A lite node: the node agent (RunP) joined to a master through ``kubeconfig``.

Kuscia's lite nodes reach the master API through their gateway (``masterEndpoint`` +
``liteDeployToken``); until the gateway exists, Atoll's lite node joins directly with a
kubeconfig (``atoll init --mode lite --kubeconfig FILE [--master-data-dir DIR]``).

Modules: the agent, DataMesh (``datamesh:`` block) and, with a ``gateway:`` block, the gateway.
DataMesh binds first, so the agent can hand its addresses to every pod as ``DATAMESH_ADDR`` /
``DATAMESH_GRPC_ADDR``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from atoll.agent.agent import Agent
from atoll.agent.config import from_node_config
from atoll.client import Client
from atoll.client.errors import ConfigError as KubeconfigError
from atoll.datamesh import DataMeshServer, settings_from_extra
from atoll.datamesh.info import InfoError, load_domain_key
from atoll.datamesh.settings import SettingsError
from atoll.files import private_dir, write_atomic
from atoll.node.config import ConfigError, NodeConfig

log = logging.getLogger(__name__)
AGENT_CONNECTIONS = 8
"""The agent's connections to the API server (one holds the pod watch). A burst of pod status
writes queues for these instead of opening (and TLS-handshaking, on both ends) one per pod."""


class LiteNode:
    def __init__(self, config: NodeConfig) -> None:
        if not config.kubeconfig:
            raise ConfigError("kubeconfig: required for a lite node (the master's API server to join)")
        if config.runtime != "runp":
            raise ConfigError(f"runtime: {config.runtime!r} is not available yet (use runp)")
        self.config = config
        private_dir(config.data_dir)
        self.agent_config = from_node_config(config.domain_id, config.data_dir, config.extra)
        try:
            self.datamesh_settings = settings_from_extra(config.extra)
            self.domain_key = load_domain_key(config.domain_key_data)
        except (SettingsError, InfoError) as exc:
            raise ConfigError(str(exc)) from None
        self.datamesh: DataMeshServer | None = None

        from atoll.node.gateway import prepare_gateway

        self.gateway_options = prepare_gateway(config)

    async def run(self) -> None:
        try:
            client = Client.from_kubeconfig(
                self.config.kubeconfig, user_agent=f"atoll-agent/{self.config.domain_id}", pool_size=AGENT_CONNECTIONS
            )
        except KubeconfigError as exc:
            raise ConfigError(f"kubeconfig: {exc}") from None
        async with client:
            agent_config = self.agent_config
            gateway = self._gateway(client)
            if self.datamesh_settings.enabled:
                self.datamesh = DataMeshServer(
                    client, self.config.domain_id, self.config.data_dir, self.datamesh_settings, self.domain_key
                )
                await self.datamesh.start()
                env = {**agent_config.pod_env, **self.datamesh.pod_env(), "ATOLL_PYTHON": sys.executable}
                agent_config = dataclasses.replace(agent_config, pod_env=env)
            async with asyncio.TaskGroup() as tg:
                if gateway is not None:
                    tg.create_task(gateway.run(), name="lite/gateway")
                if self.datamesh is not None:
                    tg.create_task(self.datamesh.run(), name="lite/datamesh")
                tg.create_task(Agent(client, agent_config).run(), name="lite/agent")

    def _gateway(self, client: Client) -> Any:
        """The lite's gateway when the config has a ``gateway:`` block (see atoll.node.gateway)."""
        from atoll.gateway.module import GatewayModule

        if self.gateway_options is None:
            return None
        return GatewayModule(client, self.gateway_options)


def issue_agent_certificate(master_data_dir: Path, data_dir: Path, domain: str) -> Path:
    """The agent's log-serving certificate, signed by the master's CA (same machine only).

    Writes ``<data_dir>/pki/kubelet.{crt,key}`` and the CA certificate ``ca.crt`` that the
    agent uses to verify the API server's client certificate. Returns the certificate path.
    """
    from atoll.pki import PKI, issue_serving_cert

    master = PKI(master_data_dir / "pki")
    if not master.ca_key.exists():
        raise ValueError(f"{master.ca_key} does not exist (is this the master's data directory?)")
    cert, key = issue_serving_cert(master, f"atoll-agent-{domain}")
    private_dir(data_dir)
    pki = private_dir(data_dir / "pki")
    write_atomic(pki / "kubelet.key", key, 0o600)
    write_atomic(pki / "kubelet.crt", cert, 0o644)
    write_atomic(pki / "ca.crt", master.ca_cert.read_bytes(), 0o644)
    return pki / "kubelet.crt"
