"""A lite node: the node agent (RunP) of one domain, registered with its master.

First start: registration (:mod:`atoll.node.registration`) with ``masterEndpoint`` and
``liteDeployToken``; afterwards the lite talks to the master API with its node certificate
(``CN=system:node:<domain>``, confined by RBAC to its namespace, Node and Lease — C5), watches
only its domain's pods, and serves pod logs with the domain certificate issued by the master CA,
so ``kubectl logs`` works for its pods wherever the lite runs. Kuscia's lites send this traffic
through their gateway to ``apiserver.master.svc``; the gateway module takes over that path.

``kubeconfig`` instead of ``masterEndpoint`` joins a master directly without registration
(``atoll init --mode lite --kubeconfig FILE [--master-data-dir DIR]``), as tests do.

Modules: the agent, DataMesh (``datamesh:`` block) and, with a ``gateway:`` block, the gateway.
DataMesh binds first, so the agent can hand its addresses to every pod as ``DATAMESH_ADDR`` /
``DATAMESH_GRPC_ADDR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from atoll.agent.agent import Agent
from atoll.agent.config import AgentConfig, from_node_config
from atoll.agent.runk.settings import RunKSettingsError
from atoll.api import kinds
from atoll.api.errors import APIError
from atoll.apiserver.http.health import HealthChecks
from atoll.client import Client, ClientError
from atoll.client.errors import ConfigError as KubeconfigError
from atoll.datamesh import DataMeshServer, settings_from_extra
from atoll.datamesh.info import InfoError, load_domain_key
from atoll.datamesh.settings import SettingsError
from atoll.files import private_dir, write_atomic
from atoll.node.cluster_ca import ensure_cluster_ca
from atoll.node.config import ConfigError, NodeConfig
from atoll.node.lite_metrics import metrics_endpoint, metrics_port
from atoll.node.pki import node_pki
from atoll.node.registration import Registration, lite_kubeconfig, load_registration, register

log = logging.getLogger(__name__)
MASTER_API_HOST = "apiserver.master.svc"
GATEWAY_API_WAIT_SECONDS = 60.0
AGENT_CONNECTIONS = 8
"""The agent's connections to the API server (one holds the pod watch). A burst of pod status
writes queues for these instead of opening (and TLS-handshaking, on both ends) one per pod."""


class LiteNode:
    def __init__(self, config: NodeConfig) -> None:
        if not config.kubeconfig and not config.master_endpoint:
            raise ConfigError("masterEndpoint: required for a lite node (or kubeconfig to join a master directly)")
        self.config = config
        private_dir(config.data_dir)
        try:
            self.agent_config = from_node_config(config.domain_id, config.data_dir, config.extra, config.runtime)
        except RunKSettingsError as exc:
            raise ConfigError(str(exc)) from None
        try:
            self.datamesh_settings = settings_from_extra(config.extra)
            self.domain_key = load_domain_key(config.domain_key_data)
        except (SettingsError, InfoError) as exc:
            raise ConfigError(str(exc)) from None
        self.datamesh: DataMeshServer | None = None
        self.metrics_port = metrics_port(config.extra)

        from atoll.node.gateway import prepare_gateway

        self.gateway_options = prepare_gateway(config)
        self.gateway: Any = None  # the GatewayModule once started
        self.agent: Agent | None = None
        self.health = HealthChecks()  # served on the metrics port (atoll.node.lite_metrics)
        self.health.add(self._agent_checks)  # this process's agent, not the Node a killed one left Ready
        if self.gateway_options is not None:  # gating: a lite whose gateway does not serve is not ready
            self.health.add(self._gateway_checks)

    def _agent_checks(self) -> list[tuple[str, str | None]]:
        if self.agent is None or not self.agent.ready.is_set():
            return [("agent", "not ready yet (registering its Node, syncing its pods)")]
        return [("agent", None)]

    def _gateway_checks(self) -> list[tuple[str, str | None]]:
        if self.gateway is None:
            return [("gateway", "not started yet")]
        return list(self.gateway.health_checks())

    async def run(self) -> None:
        async with metrics_endpoint(self.metrics_port, self.config.domain_id, self.health):
            await self._run()

    async def _run(self) -> None:
        if self.config.kubeconfig:
            await self._run_agent(self.config.kubeconfig, self.agent_config)
            return
        registration = await self.ensure_registered()
        pki = node_pki(self.config)
        agent_config = dataclasses.replace(
            self.agent_config, node_name=registration.node_name, tls_cert=pki.domain_cert, tls_key=pki.domain_key,
            client_ca=pki.ca_cert, pod_namespace=self.config.domain_id,
        )
        await self._run_agent(lite_kubeconfig(self.config, registration), agent_config)

    async def ensure_registered(self) -> Registration:
        registration = load_registration(self.config)
        if registration is None:
            registration = await register(self.config, self.agent_config.name)
            log.info("lite %s registered with %s as node %s", self.config.domain_id, self.config.master_endpoint,
                     registration.node_name)
        return registration

    async def _run_agent(self, kubeconfig: object, agent_config: AgentConfig) -> None:
        try:
            client = Client.from_kubeconfig(
                kubeconfig,  # type: ignore[arg-type]
                user_agent=f"atoll-agent/{self.config.domain_id}", pool_size=AGENT_CONNECTIONS,
            )
        except KubeconfigError as exc:
            raise ConfigError(f"kubeconfig: {exc}") from None
        async with client, contextlib.AsyncExitStack() as stack:
            gateway = self._gateway(client)
            async with asyncio.TaskGroup() as tg:
                api = client
                if gateway is not None:
                    tg.create_task(gateway.run(), name="lite/gateway")
                    if self.master_api_through_gateway:
                        api = await self._through_gateway(gateway, client)
                        if api is not client:
                            stack.push_async_callback(api.close)
                if self.datamesh_settings.enabled:
                    self.datamesh = DataMeshServer(
                        api, self.config.domain_id, self.config.data_dir, self.datamesh_settings, self.domain_key
                    )
                    await self.datamesh.start()
                    env = {**agent_config.pod_env, **self.datamesh.pod_env(), "ATOLL_PYTHON": sys.executable}
                    agent_config = dataclasses.replace(agent_config, pod_env=env)
                    tg.create_task(self.datamesh.run(), name="lite/datamesh")
                agent = self.agent = Agent(api, agent_config)
                if self.config.kubeconfig:  # direct join: trust the kubeconfig's cluster CA for log requests
                    agent.client_ca = ensure_cluster_ca(self.config.kubeconfig, self.config.data_dir)
                tg.create_task(agent.run(), name="lite/agent")

    @property
    def master_api_through_gateway(self) -> bool:
        """``masterAPI: gateway`` (default for a registered lite): the agent and DataMesh reach the
        master API as ``apiserver.master.svc`` through this lite's gateway (Kuscia §3.5); the
        master's gateway adds the domain's ServiceAccount token. ``direct``: mutual TLS with
        ``node.crt``. The gateway itself always uses ``node.crt`` (it must run before the route)."""
        return not self.config.kubeconfig and self.config.extra.get("masterAPI", "gateway") == "gateway"

    async def _through_gateway(self, gateway: Any, direct: Client) -> Client:
        """A client of ``apiserver.master.svc`` via the internal listener, once a request gets
        through (the lite → master route needs its token first); ``direct`` if it never does."""
        await gateway.ready.wait()
        assert self.gateway_options is not None
        port = self.gateway_options.listeners.internal_port
        api = Client(f"http://127.0.0.1:{port}", headers={"Host": MASTER_API_HOST},
                     user_agent=f"atoll-agent/{self.config.domain_id}", pool_size=AGENT_CONNECTIONS)
        deadline = time.monotonic() + GATEWAY_API_WAIT_SECONDS
        while True:
            try:
                await api.list(kinds.CONFIGMAPS, self.config.domain_id, limit=1)
                log.info("lite %s: master API through the gateway (%s)", self.config.domain_id, MASTER_API_HOST)
                return api
            except (APIError, ClientError) as exc:
                if time.monotonic() > deadline:
                    await api.close()
                    log.warning("lite %s: master API not reachable through the gateway (%s); using mutual TLS",
                                self.config.domain_id, exc)
                    return direct
            await asyncio.sleep(0.2)

    def _gateway(self, client: Client) -> Any:
        """The lite's gateway when the config has a ``gateway:`` block (see atoll.node.gateway)."""
        from atoll.gateway.module import GatewayModule

        if self.gateway_options is None:
            return None
        self.gateway = GatewayModule(client, self.gateway_options)
        return self.gateway


def lite_api_source(config: NodeConfig) -> str | dict[str, object]:
    """How a lite's own tools reach the master API: its ``kubeconfig`` (direct join), or the
    credentials registration gave it (``ConfigError`` before the lite's first start)."""
    if config.kubeconfig:
        return config.kubeconfig
    registration = load_registration(config)
    if registration is None:
        raise ConfigError(f"lite {config.domain_id} is not registered yet: start it once (atoll start -c …)")
    return lite_kubeconfig(config, registration)


def issue_agent_certificate(master_data_dir: Path, data_dir: Path, domain: str) -> Path:
    """The agent's log-serving certificate, signed by the master's CA (same machine, direct join only).

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
