"""Node ports are picked outside the kernel's ephemeral range, so nothing takes them while a node is down."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from atoll.api.kuscia_tasks import PORT_RANGE
from atoll.node import network
from atoll.node.network import NODE_PORTS, free_port


def ephemeral_range() -> range:
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


def test_node_ports_are_neither_ephemeral_nor_task_ports() -> None:
    ephemeral, tasks = ephemeral_range(), range(PORT_RANGE[0], PORT_RANGE[1] + 1)
    assert not set(NODE_PORTS) & set(ephemeral) and not set(NODE_PORTS) & set(tasks)
    for _ in range(50):
        port = free_port()
        assert port in NODE_PORTS
        with socket.socket() as s:  # free at the time it is returned
            s.bind(("127.0.0.1", port))


def test_a_port_the_kernel_hands_out_is_never_a_node_port() -> None:
    """What took a restarted node's port before (another test's ``bind(0)`` server, Envoy admin ports)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            assert s.getsockname()[1] not in NODE_PORTS


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        real, calls = network.random.randrange, []

        def pick(low: int, high: int) -> int:  # the taken port first, twice; then random ones
            calls.append(low)
            return port if len(calls) <= 2 else real(low, high)

        monkeypatch.setattr(network.random, "randrange", pick)
        assert free_port() != port
        assert len(calls) >= 3
