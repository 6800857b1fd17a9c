"""``sharedPortSpace``: with every lite on one host, no port is handed to two domains at once."""

from __future__ import annotations

from atoll.controllers.kusciatask.ports import PortAllocator


def test_shared_space_never_hands_one_port_to_two_domains() -> None:
    low = 41000  # the host may use some of these: the allocator skips them (see below)
    shared = PortAllocator(lambda d: [low], low=low, high=low + 40, shared=True)  # alice's live task holds low
    first = shared.allocate("t1", {"alice": 2, "bob": 2})
    ports = first["alice"] + first["bob"]
    assert len(set(ports)) == 4 and low not in ports
    second = shared.allocate("t2", {"bob": 1})
    assert second["bob"][0] not in ports and second["bob"][0] != low


def test_per_domain_space_by_default() -> None:
    alloc = PortAllocator(lambda d: [], low=20000, high=20005)
    out = alloc.allocate("t1", {"alice": 1, "bob": 1})
    assert out == {"alice": [20000], "bob": [20000]}


def test_shared_space_skips_ports_another_program_listens_on() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        alloc = PortAllocator(lambda d: [], low=port, high=port + 1, shared=True)
        assert alloc.allocate("t1", {"alice": 1}) == {"alice": [port + 1]}
