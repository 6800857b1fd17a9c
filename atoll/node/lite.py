"""A lite node: the node agent (RunP) joined to a master through ``kubeconfig``.

Kuscia's lite nodes reach the master API through their gateway (``masterEndpoint`` +
``liteDeployToken``); until the gateway exists, Atoll's lite node joins directly with a
kubeconfig (``atoll init --mode lite --kubeconfig FILE [--master-data-dir DIR]``).
"""

from __future__ import annotations

import logging

from atoll.agent.agent import Agent
from atoll.agent.config import from_node_config
from atoll.client import Client
from atoll.client.errors import ConfigError as KubeconfigError
from atoll.node.config import ConfigError, NodeConfig

log = logging.getLogger(__name__)


class LiteNode:
    def __init__(self, config: NodeConfig) -> None:
        if not config.kubeconfig:
            raise ConfigError("kubeconfig: required for a lite node (the master's API server to join)")
        if config.runtime != "runp":
            raise ConfigError(f"runtime: {config.runtime!r} is not available yet (use runp)")
        self.config = config
        self.agent_config = from_node_config(config.domain_id, config.data_dir, config.extra)

    async def run(self) -> None:
        try:
            client = Client.from_kubeconfig(self.config.kubeconfig, user_agent=f"atoll-agent/{self.config.domain_id}")
        except KubeconfigError as exc:
            raise ConfigError(f"kubeconfig: {exc}") from None
        async with client:
            await Agent(client, self.agent_config).run()
