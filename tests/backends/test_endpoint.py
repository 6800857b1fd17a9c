"""Endpoint strings (kuscia.yaml ``datastoreEndpoint``) to stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.store.base import StoreError
from atoll.store.endpoint import mysql_params, open_store, parse_endpoint
from atoll.store.mysql import MySQLParams, MySQLStore
from atoll.store.postgres import PostgresStore
from atoll.store.sqlite import SQLiteDriver, SQLiteStore


@pytest.mark.parametrize("endpoint", [None, "", "sqlite", "  sqlite "])
def test_default_is_sqlite_in_data_dir(endpoint: str | None, tmp_path: Path) -> None:
    store = open_store(endpoint, tmp_path)
    assert isinstance(store, SQLiteStore)
    assert isinstance(store.driver, SQLiteDriver) and store.driver.path == tmp_path / "state.db"


def test_sqlite_url(tmp_path: Path) -> None:
    store = open_store("sqlite:///var/lib/atoll/x.db", tmp_path)
    assert isinstance(store.driver, SQLiteDriver) and store.driver.path == Path("/var/lib/atoll/x.db")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres(scheme: str, tmp_path: Path) -> None:
    assert parse_endpoint(f"{scheme}://u:p%40ss@db:5432/k") == ("postgresql", "postgresql://u:p%40ss@db:5432/k")
    assert isinstance(open_store(f"{scheme}://u@h/k", tmp_path), PostgresStore)


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("mysql://root@127.0.0.1:3306/", MySQLParams("127.0.0.1", 3306, "root", "", "")),
        ("mysql://u:p%40ss@db.local:3307/kine", MySQLParams("db.local", 3307, "u", "p@ss", "kine")),
        ("mysql://u:pwd@tcp(10.0.0.1:3306)/kuscia", MySQLParams("10.0.0.1", 3306, "u", "pwd", "kuscia")),
        ("mysql://u:p@ss:x@tcp(h)/d?charset=utf8", MySQLParams("h", 3306, "u", "p@ss:x", "d")),
        ("mysql://u:p%2Fw@tcp(h:1)/d", MySQLParams("h", 1, "u", "p/w", "d")),
    ],
)
def test_mysql_forms(url: str, want: MySQLParams, tmp_path: Path) -> None:
    assert mysql_params(url) == want
    assert isinstance(open_store(url, tmp_path), MySQLStore)


@pytest.mark.parametrize("bad", ["etcd://x", "sqlite://", "/just/a/path", "mysql://u@unix(/s)/d"])
def test_bad_endpoints(bad: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_store(bad, tmp_path)


@pytest.mark.parametrize(("query", "seconds"), [("", 0.15), ("?pollInterval=50ms", 0.05), ("?pollInterval=0.02", 0.02),
                                                ("?x=1&pollInterval=1s", 1.0)])
def test_mysql_poll_interval(query: str, seconds: float, tmp_path: Path) -> None:
    for url in (f"mysql://u@db:3306/kine{query}", f"mysql://u:pw@tcp(db:3306)/kine{query}"):
        store = open_store(url, tmp_path)
        assert store._interval == seconds and mysql_params(url).db == "kine"


@pytest.mark.parametrize("value", ["fast", "1ms", "60s"])
def test_bad_poll_interval(value: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="pollInterval"):
        open_store(f"mysql://u@db/kine?pollInterval={value}", tmp_path)
