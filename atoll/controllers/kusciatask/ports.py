"""Per-domain port allocator (Kuscia's "portflake", reference §2.8) over 20000-32767.

RunP pods share the host network, so a port may be handed to one task of a domain at a time.
The truth is in the API: the ports in use in a domain are those recorded in
``status.allocatedPorts`` of every KusciaTask that has not finished (``live``, read from the
informer cache), plus the ports this process handed out whose status write has not landed yet
(held in memory per owner). After a restart the memory is empty and the live set alone is
correct, so ports of tasks that finished or were deleted while the controller was down are free
again — nothing leaks. ``allocate`` is synchronous: two tasks reconciled concurrently in one
event loop can never receive the same port.

Ports are handed out round-robin from a per-domain cursor so that a port just released is not
reused at once (a process of the finished task may still be closing it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from atoll.api.kuscia_tasks import PORT_RANGE

Live = Callable[[str], Iterable[int]]


class PortsExhausted(RuntimeError):
    """Not enough free ports in a domain."""


class PortAllocator:
    def __init__(self, live: Live, *, low: int = PORT_RANGE[0], high: int = PORT_RANGE[1]) -> None:
        self.live = live
        self.low, self.high = low, high
        self._held: dict[str, dict[str, set[int]]] = {}  # owner -> domain -> ports
        self._cursor: dict[str, int] = {}

    def in_use(self, domain: str) -> set[int]:
        used = set(self.live(domain))
        for domains in self._held.values():
            used |= domains.get(domain, set())
        return used

    def allocate(self, owner: str, wanted: dict[str, int]) -> dict[str, list[int]]:
        """``count`` distinct free ports per domain for ``owner``; all or nothing."""
        out: dict[str, list[int]] = {}
        for domain, count in wanted.items():
            if count <= 0:
                out[domain] = []
                continue
            used = self.in_use(domain)
            size = self.high - self.low + 1
            if size - len(used) < count:
                raise PortsExhausted(
                    f"domain {domain}: {count} ports wanted, {size - len(used)} free in {self.low}-{self.high}"
                )
            start = self._cursor.get(domain, self.low)
            picked: list[int] = []
            offset = 0
            while len(picked) < count:
                port = self.low + (start - self.low + offset) % size
                offset += 1
                if port not in used:
                    picked.append(port)
            self._cursor[domain] = picked[-1] + 1 if picked[-1] < self.high else self.low
            out[domain] = picked
        held = self._held.setdefault(owner, {})
        for domain, ports in out.items():
            held.setdefault(domain, set()).update(ports)
        return out

    def release(self, owner: str) -> None:
        """Forget what ``owner`` holds in memory (its status no longer counts once it finishes)."""
        self._held.pop(owner, None)

    def owners(self) -> list[str]:
        return list(self._held)
