"""Creating and dropping PostgreSQL/MySQL databases (set-up and tests, never the hot path)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import aiomysql
import asyncpg

from atoll.store.base import StoreError
from atoll.store.endpoint import MySQLParams

_IDENT = re.compile(r"^[A-Za-z0-9_$-]{1,63}$")


def _ident(name: str, quote: str) -> str:
    if not _IDENT.match(name):
        raise StoreError(f"database name {name!r}: use letters, digits, '_', '$' or '-'")
    return f"{quote}{name}{quote}"


async def postgres_database(url: str, *, create: bool) -> None:
    parts = urlsplit(url)
    db = parts.path.lstrip("/")
    if not db:
        raise StoreError(f"{url}: no database name")
    conn = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db)
        if create and not exists:
            try:
                await conn.execute(f"CREATE DATABASE {_ident(db, chr(34))}")
            except asyncpg.DuplicateDatabaseError:
                pass
        elif not create and exists:
            await conn.execute(f"DROP DATABASE IF EXISTS {_ident(db, chr(34))} WITH (FORCE)")
    finally:
        await conn.close()


async def mysql_database(params: MySQLParams, *, create: bool) -> None:
    if not params.db:
        raise StoreError("mysql endpoint: no database name")
    conn = await aiomysql.connect(
        host=params.host, port=params.port, user=params.user, password=params.password, autocommit=True
    )
    try:
        async with conn.cursor() as cur:
            name = _ident(params.db, "`")
            if create:
                await cur.execute(f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4")
            else:
                await cur.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        conn.close()
