"""``probeTaskPorts``: with every lite on the master's host, ports other programs hold are skipped."""

from __future__ import annotations

import socket

import pytest

from atoll.controllers.kusciatask.ports import PortAllocator, PortsExhausted, port_free


def test_a_port_another_program_listens_on_is_skipped() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        assert not port_free(port)
        alloc = PortAllocator(list, low=port, high=port + 1, probe=lambda p: p != port)
        assert alloc.allocate("t1", {"alice": 1}) == {"alice": [port + 1]}
        with pytest.raises(PortsExhausted, match="fewer free on this host"):
            alloc.allocate("t2", {"bob": 1})


def test_no_probe_by_default() -> None:
    alloc = PortAllocator(list, low=20000, high=20001)
    assert alloc.allocate("t1", {"alice": 1, "bob": 1}) == {"alice": [20000], "bob": [20001]}
