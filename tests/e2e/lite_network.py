"""A master's two lite domains (alice, bob) as real agent processes, driven by real kubectl.

Shared by the end-to-end tests of the agent and of KusciaTask through kubectl (``lite_network``)
and, with one domain only, by the workload, storage and pod-stream suites (``one_lite``).
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer, eventually
from tests.e2e.conftest import Kubectl, make_kubectl, table
from tests.integration.agents import kill_leftovers
from tests.integration.lite_procs import init_lite, start, stop

DOMAINS = ("alice", "bob")


@dataclass
class Network:
    kubectl: Kubectl
    base: Path
    configs: dict[str, Path]
    agents: dict[str, subprocess.Popen[bytes]]

    def restart(self, domain: str) -> None:
        self.agents[domain] = start(self.configs[domain])
        until(lambda: node_ready(self.kubectl, f"{domain}-node") == "Ready", 30)


def until(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """The shared ``eventually`` for synchronous (kubectl) tests: wait until ``check()`` is truthy."""

    def holds() -> Any:
        value = check()
        assert value, f"condition not met (last: {value!r})"
        return value

    return asyncio.run(eventually(holds, timeout, every=interval))


def namespace_exists(kubectl: Kubectl, name: str) -> bool:
    return kubectl.run("get", "namespace", name, check=False).returncode == 0


def node_ready(kubectl: Kubectl, node: str) -> str:
    """The STATUS column of ``kubectl get node`` (``Ready``, ``NotReady``), or '' if there is no such node."""
    proc = kubectl.run("get", "node", node, "--no-headers", check=False)
    return table(proc.stdout)[0][1] if proc.returncode == 0 else ""


DOMAIN = """apiVersion: kuscia.secretflow/v1alpha1
kind: Domain
metadata:
  name: {domain}
spec:
  role: ""
"""


@contextmanager
def lite_network(server: RunningServer, base: Path) -> Iterator[Network]:
    """kubectl 1.32 against ``server``, the Domains, and one running lite agent per domain under ``base``."""
    kubectl = make_kubectl("1.32", server, base / "kubectl")
    for domain in DOMAINS:
        kubectl.apply(DOMAIN.format(domain=domain), f"domain-{domain}.yaml")
    configs = {d: init_lite(server, base, d) for d in DOMAINS}
    net = Network(kubectl, base, configs, {})
    try:
        for domain in DOMAINS:
            net.restart(domain)
        for domain in DOMAINS:
            until(functools.partial(namespace_exists, kubectl, domain), 30)
        yield net
    finally:
        for proc in net.agents.values():
            stop(proc)
        for domain in DOMAINS:
            kill_leftovers(base / domain)


@dataclass
class Lite:
    """One domain's lite agent process on a master, and kubectl 1.32 against that master."""

    kubectl: Kubectl
    base: Path
    server: RunningServer
    config: Path
    agent: subprocess.Popen[bytes]


@contextmanager
def one_lite(server: RunningServer, base: Path, domain: str,
             prepare: Callable[[Path], None] | None = None) -> Iterator[Lite]:
    """The Domain ``domain`` and its running lite under ``base`` (``prepare(config)`` runs after the
    lite is initialised and before its agent starts, e.g. to load images); stopped and swept after."""
    kubectl = make_kubectl("1.32", server, base / "kubectl")
    kubectl.apply(DOMAIN.format(domain=domain), "domain.yaml")
    config = init_lite(server, base, domain)
    if prepare is not None:
        prepare(config)
    lite = Lite(kubectl, base, server, config, start(config))
    try:
        until(lambda: node_ready(kubectl, f"{domain}-node") == "Ready", 30)
        until(functools.partial(namespace_exists, kubectl, domain), 30)
        yield lite
    finally:
        stop(lite.agent)  # the current agent (a test may have restarted it)
        kill_leftovers(base / domain)
