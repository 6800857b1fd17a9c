"""The node agent: registers the Node, keeps its Lease, runs this node's pods (RunP), serves logs.

Components are tasks of one ``TaskGroup`` (the first crash stops the agent). Stopping the agent
leaves pods running (kubelet semantics) unless ``stopPodsOnExit``; a restarted agent re-adopts
them from their sandboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.heartbeat import NodeHeartbeat
from atoll.agent.localpath import LocalPathVolumes
from atoll.agent.logserver import LogServer
from atoll.agent.runk.logs import RunKLogServer
from atoll.agent.runk.prepare import institution_client, prepare_runk
from atoll.agent.runk.runtime import RunK
from atoll.agent.runp.runtime import RunP
from atoll.agent.servingcert import obtain_serving_cert
from atoll.client import Client

log = logging.getLogger(__name__)
STOP_TIMEOUT = 5.0


class Agent:
    def __init__(self, client: Client, config: AgentConfig, *, target: Client | None = None) -> None:
        """``target``: the institution cluster's client for ``runtime: runk`` (default: from
        ``runk.kubeconfigFile``, or the in-cluster ServiceAccount)."""
        self.client = client
        self.config = config
        self.events = EventRecorder(client, config.name)
        self.runtime: RunP | RunK
        self.logs: LogServer | RunKLogServer
        if config.runk is not None:
            self.runtime = RunK(client, target or institution_client(config.runk), config, config.runk)
            self.logs = RunKLogServer(config, self.runtime)
        else:
            self.runtime = RunP(client, config, self.events)
            self.logs = LogServer(config, self.runtime)
        self.heartbeat: NodeHeartbeat | None = None
        self.ready = asyncio.Event()
        self.client_ca: Path | None = None
        """CA of the API server's client certificate when the config names none (the cluster CA)."""

    async def run(self) -> None:
        self.config.root.mkdir(parents=True, exist_ok=True)
        port = await self.logs.start()
        try:
            config = self.config
            if isinstance(self.runtime, RunK):
                config = await prepare_runk(self.runtime)
            self.heartbeat = NodeHeartbeat(self.client, config, log_port=port)
            if isinstance(self.runtime, RunK):
                runk = self.runtime
                self.heartbeat.extra_conditions = lambda: [runk.condition]
            await self.heartbeat.register()
            await self.heartbeat.renew_lease()
            if port == 0 and await self._serving_certificate():
                await self.heartbeat.publish_log_port(await self.logs.start())
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.heartbeat.run(), name=f"agent/{self.config.name}/heartbeat")
                tg.create_task(self.runtime.run(), name=f"agent/{self.config.name}/{self.config.runtime}")
                if isinstance(self.runtime, RunP):
                    volumes = LocalPathVolumes(self.client, self.config)
                    tg.create_task(volumes.run(), name=f"agent/{self.config.name}/local-path")
                await self.runtime.informer.wait_synced()
                self.ready.set()
                log.info("agent %s ready (domain %s)", self.config.name, self.config.domain)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._stop()), STOP_TIMEOUT)

    async def _serving_certificate(self) -> bool:
        """No certificate configured: ask the API server for one (certificates.k8s.io), once the
        Node exists (the approver checks that the requester owns it). True when one was issued."""
        config = self.config
        if config.tls_cert is not None or config.serving_csr_timeout <= 0:
            return False
        issued = await obtain_serving_cert(self.client, config.name, (config.address,), config.data_dir / "pki",
                                           config.serving_csr_timeout)
        if issued is None:
            return False
        ca = config.client_ca or self.client_ca
        self.config = dataclasses.replace(config, tls_cert=issued[0], tls_key=issued[1], client_ca=ca)
        self.logs.config = self.config
        return True

    async def _stop(self) -> None:
        await self.logs.stop()
        if isinstance(self.runtime, RunK):
            await self.runtime.target.close()
        if self.heartbeat is not None:
            await self.heartbeat.mark_stopped()
        await self.events.flush()
