"""From a ``datastoreEndpoint`` string to a ``Store`` (kine's ``pkg/endpoint``).

Accepted forms::

    None, "", "sqlite"                         <data_dir>/state.db
    sqlite:///abs/path.db                      that file
    postgresql://user:pw@host:5432/db          (also postgres://)
    mysql://user:pw@host:3306/db               URL form
    mysql://user:pw@tcp(host:3306)/db          Kuscia's Go-DSN form

Passwords may be percent-encoded. PostgreSQL and MySQL databases must exist;
``ensure_database`` creates one (tests and first-time set-up use it). A MySQL endpoint may end in
``?pollInterval=50ms`` (or seconds, ``0.05``): how often each master polls for the other masters'
writes (default 150 ms; MySQL has no LISTEN/NOTIFY, so this bounds the cross-master watch delay).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from atoll.store.base import StoreError
from atoll.store.log import LogStore
from atoll.store.sqlite import SQLiteStore

_GO_DSN = re.compile(r"^(?P<cred>.*)@(?P<proto>tcp|unix)\((?P<addr>[^)]*)\)/(?P<db>[^?]*)(?:\?.*)?$")


@dataclass(frozen=True, slots=True)
class MySQLParams:
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    db: str = ""


def open_store(endpoint: str | None, data_dir: Path, **options: Any) -> LogStore:
    """A store for ``endpoint``, not started yet: ``await store.start()`` / ``await store.close()``
    (or ``async with open_store(...) as store``). ``options`` go to ``LogStore`` (queue_size,
    poll_interval, gap_timeout, ...)."""
    kind, target = parse_endpoint(endpoint)
    if kind == "sqlite":
        return SQLiteStore(Path(target) if target else data_dir / "state.db", **options)
    if kind == "postgresql":
        from atoll.store.postgres import PostgresStore  # drivers load only when used

        return PostgresStore(target, **options)
    from atoll.store.mysql import MySQLStore

    interval = poll_interval(target)
    if interval is not None:
        options.setdefault("poll_interval", interval)
    return MySQLStore(mysql_params(target), **options)


def poll_interval(url: str) -> float | None:
    """``pollInterval`` of a MySQL endpoint's query (``50ms``, ``0.05s`` or ``0.05``), if any."""
    values = parse_qs(url.partition("?")[2]).get("pollInterval")
    if not values:
        return None
    raw = values[-1].strip().lower()
    try:
        seconds = float(raw[:-2]) / 1000 if raw.endswith("ms") else float(raw.removesuffix("s"))
    except ValueError:
        raise StoreError(f"datastore endpoint: pollInterval={values[-1]!r} is not a duration (e.g. 50ms)") from None
    if not 0.005 <= seconds <= 10:
        raise StoreError(f"datastore endpoint: pollInterval={values[-1]!r} must be between 5ms and 10s")
    return seconds


def parse_endpoint(endpoint: str | None) -> tuple[str, str]:
    """``(kind, target)``: kind is sqlite/postgresql/mysql; target a path ("" = default) or URL."""
    ep = (endpoint or "").strip()
    if ep in ("", "sqlite"):
        return "sqlite", ""
    scheme, sep, rest = ep.partition("://")
    if not sep:
        raise StoreError(f"datastore endpoint {ep!r}: expected sqlite://, postgresql:// or mysql://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        path = rest.split("?", 1)[0]
        if not path:
            raise StoreError(f"datastore endpoint {ep!r}: missing database file path")
        return "sqlite", unquote(path)
    if scheme in ("postgres", "postgresql"):
        return "postgresql", "postgresql://" + rest
    if scheme == "mysql":
        return "mysql", ep
    raise StoreError(f"datastore endpoint {ep!r}: unsupported scheme {scheme!r}")


def mysql_params(url: str) -> MySQLParams:
    """Parse ``mysql://user:pw@host:port/db`` or ``mysql://user:pw@tcp(host:port)/db``."""
    rest = url.partition("://")[2]
    m = _GO_DSN.match(rest)
    if m:
        user, _, password = m["cred"].partition(":")
        if m["proto"] != "tcp":
            raise StoreError(f"datastore endpoint: only tcp(...) addresses are supported, got {m['proto']}")
        host, _, port = m["addr"].rpartition(":") if ":" in m["addr"] else (m["addr"], "", "")
        db = m["db"]
    else:
        parts = urlsplit("mysql://" + rest)
        user, password = parts.username or "", parts.password or ""
        host, port, db = parts.hostname or "127.0.0.1", str(parts.port or ""), parts.path.lstrip("/")
    return MySQLParams(
        host=host or "127.0.0.1",
        port=int(port) if port else 3306,
        user=unquote(user) or "root",
        password=unquote(password),
        db=unquote(db),
    )


async def ensure_database(endpoint: str) -> None:
    """Create the PostgreSQL/MySQL database named in ``endpoint`` if it is missing."""
    await _admin(endpoint, create=True)


async def drop_database(endpoint: str) -> None:
    """Drop the PostgreSQL/MySQL database named in ``endpoint`` (tests clean up with it)."""
    await _admin(endpoint, create=False)


async def _admin(endpoint: str, *, create: bool) -> None:
    kind, target = parse_endpoint(endpoint)
    if kind == "postgresql":
        from atoll.store import admin

        await admin.postgres_database(target, create=create)
    elif kind == "mysql":
        from atoll.store import admin

        await admin.mysql_database(mysql_params(target), create=create)
