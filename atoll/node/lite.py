"""A lite node: the node agent (RunP) joined to a master through ``kubeconfig``.

Kuscia's lite nodes reach the master API through their gateway (``masterEndpoint`` +
``liteDeployToken``); until the gateway exists, Atoll's lite node joins directly with a
kubeconfig (``atoll init --mode lite --kubeconfig FILE [--master-data-dir DIR]``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from atoll.agent.agent import Agent
from atoll.agent.config import from_node_config
from atoll.client import Client
from atoll.client.errors import ConfigError as KubeconfigError
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

    async def run(self) -> None:
        try:
            client = Client.from_kubeconfig(
                self.config.kubeconfig, user_agent=f"atoll-agent/{self.config.domain_id}", pool_size=AGENT_CONNECTIONS
            )
        except KubeconfigError as exc:
            raise ConfigError(f"kubeconfig: {exc}") from None
        async with client:
            await Agent(client, self.agent_config).run()


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
