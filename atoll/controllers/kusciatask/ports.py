"""Task port allocator (Kuscia's "portflake", reference §2.8) over 20000-32767.

Kuscia allocates per domain because each domain's pods live in their own container network.
RunP pods share the host network, and several lites (domains) may share one host — the
quickstart runs alice and bob on one machine — so Atoll allocates from one port space shared
by every domain (``space`` maps a domain to its space; by default all domains share one): a
port is handed to one task of one domain at a time. The truth is in the API: the ports in use
are those recorded in ``status.allocatedPorts`` of every KusciaTask that has not finished
(``live``, read from the informer cache, as ``(domain, port)`` pairs), plus the ports this
process handed out whose status write has not landed yet (held in memory per owner).
After a restart the memory is empty and the live set alone is correct, so ports of tasks that
finished or were deleted while the controller was down are free again — nothing leaks.
``allocate`` is synchronous: two tasks reconciled concurrently in one event loop can never
receive the same port.

Ports are handed out round-robin from a per-space cursor so that a port just released is not
reused at once (a process of the finished task may still be closing it).

``probe`` (master config ``probeTaskPorts: true``, set when every lite runs on the master's host,
as in the quickstart): a port some other program on the host listens on is skipped.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from atoll.api.kuscia_tasks import PORT_RANGE

Live = Callable[[], Iterable[tuple[str, int]]]
"""Every ``(domain, port)`` held by an unfinished task."""


def port_free(port: int) -> bool:
    """Nothing on this host listens on ``127.0.0.1:port`` right now (a ``probe``)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def one_space(domain: str) -> str:
    """All domains share the host's ports (RunP lites on one machine)."""
    return ""


class PortsExhausted(RuntimeError):
    """Not enough free ports in a domain."""


class PortAllocator:
    def __init__(
        self,
        live: Live,
        *,
        low: int = PORT_RANGE[0],
        high: int = PORT_RANGE[1],
        space: Callable[[str], str] = one_space,
        probe: Callable[[int], bool] | None = None,
    ) -> None:
        self.live = live
        self.space = space
        self.probe = probe
        self.low, self.high = low, high
        self._held: dict[str, dict[str, set[int]]] = {}  # owner -> domain -> ports
        self._cursor: dict[str, int] = {}

    def in_use(self, domain: str) -> set[int]:
        """Ports taken in ``domain``'s port space (by any domain sharing it)."""
        space = self.space(domain)
        used = {port for owner_domain, port in self.live() if self.space(owner_domain) == space}
        for domains in self._held.values():
            for held_domain, ports in domains.items():
                if self.space(held_domain) == space:
                    used |= ports
        return used

    def allocate(self, owner: str, wanted: dict[str, int]) -> dict[str, list[int]]:
        """``count`` distinct free ports per domain for ``owner``; all or nothing."""
        out: dict[str, list[int]] = {}
        for domain, count in wanted.items():
            if count <= 0:
                out[domain] = []
                continue
            used = self.in_use(domain)
            for earlier, ports in out.items():  # taken by this call for another domain of the space
                if self.space(earlier) == self.space(domain):
                    used.update(ports)
            size = self.high - self.low + 1
            if size - len(used) < count:
                raise PortsExhausted(
                    f"domain {domain}: {count} ports wanted, {size - len(used)} free in {self.low}-{self.high}"
                )
            start = self._cursor.get(self.space(domain), self.low)
            picked: list[int] = []
            offset = 0
            while len(picked) < count:
                if offset >= size:
                    raise PortsExhausted(f"domain {domain}: {count} ports wanted, fewer free on this host")
                port = self.low + (start - self.low + offset) % size
                offset += 1
                if port not in used and (self.probe is None or self.probe(port)):
                    picked.append(port)
            self._cursor[self.space(domain)] = picked[-1] + 1 if picked[-1] < self.high else self.low
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
