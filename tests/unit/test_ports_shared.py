"""``sharedPortSpace``: with every lite on one host, no port is handed to two domains at once."""

from __future__ import annotations

from atoll.controllers.kusciatask.ports import PortAllocator


def test_shared_space_never_hands_one_port_to_two_domains() -> None:
    live = {"alice": [20000], "bob": []}
    shared = PortAllocator(lambda d: live[d] if d == "alice" else [20000], low=20000, high=20005, shared=True)
    first = shared.allocate("t1", {"alice": 2, "bob": 2})
    ports = first["alice"] + first["bob"]
    assert len(set(ports)) == 4 and 20000 not in ports
    second = shared.allocate("t2", {"bob": 1})
    assert second["bob"][0] not in ports and second["bob"][0] != 20000


def test_per_domain_space_by_default() -> None:
    alloc = PortAllocator(lambda d: [], low=20000, high=20005)
    out = alloc.allocate("t1", {"alice": 1, "bob": 1})
    assert out == {"alice": [20000], "bob": [20000]}
