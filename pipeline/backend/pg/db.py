"""A small connection adapter that lets SQL written for ``sqlite3`` run on PostgreSQL.

``PgDb.execute(sql, params)`` takes ``?`` placeholders (translated to psycopg's ``%s``) and returns
rows that behave like ``sqlite3.Row`` (index, column name, ``dict(row)``), fetched eagerly so the
connection goes back to the pool at once. That is what lets ``graph.py``, ``dedup.py`` and
``app/queries.py`` keep reaching the database through ``store.db.execute`` on either backend.

Connections come from a ``psycopg_pool.ConnectionPool`` (the Streamlit app shares one store between
sessions and threads). Outside a transaction every statement autocommits; ``transaction()`` pins one
connection to the calling thread until the block ends, and nested blocks become savepoints.
A read-only store's connections refuse writes at the server (``default_transaction_read_only``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool

from pipeline.config import redact_dsn
from pipeline.errors import UsageError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
_QMARK = re.compile(r"\?")


class Row(tuple[Any, ...]):
    """A result row addressed by position or column name, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __new__(cls, values: Iterable[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._index[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {d.name: i for i, d in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class Result:
    """What ``execute`` returns: the fetched rows, ``rowcount`` and ``fetchone``/``fetchall``."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount
        self._pos = 0

    def __iter__(self) -> Iterator[Row]:
        rest, self._pos = self.rows[self._pos :], len(self.rows)
        return iter(rest)

    def fetchone(self) -> Row | None:
        if self._pos >= len(self.rows):
            return None
        self._pos += 1
        return self.rows[self._pos - 1]

    def fetchall(self) -> list[Row]:
        return list(self)


def translate(sql: str) -> str:
    """sqlite3 placeholders to psycopg ones (``?`` → ``%s``; a literal ``%`` doubled)."""
    return _QMARK.sub("%s", sql.replace("%", "%%"))


def connect_check(dsn: str) -> None:
    """Fail fast with one clear line when the server cannot be reached (the pool would retry for long)."""
    try:
        psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot connect to {redact_dsn(dsn)}: {first}") from None


class PgDb:
    """Pooled connections to one PostgreSQL database with a ``sqlite3``-like ``execute``."""

    def __init__(
        self,
        dsn: str,
        *,
        readonly: bool = False,
        pool_size: int = 4,
        configure: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.readonly = readonly
        self._configure_extra = configure
        self._local = threading.local()
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=self._configure,
            open=True,
            name="defintel",
        )
        self.pool.wait(timeout=30.0)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.row_factory = _row_factory
        if self.readonly:
            conn.execute("SET default_transaction_read_only = on")
        if self._configure_extra is not None:
            self._configure_extra(conn)

    # -- connections ------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection of the current transaction, or one borrowed from the pool."""
        pinned: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on one connection for this thread; nested calls are savepoints."""
        pinned: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if pinned is not None:
            with pinned.transaction():
                yield pinned
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._local.conn = None

    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    # -- statements -------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Run one statement written with ``?`` placeholders; rows are fetched before returning."""
        query = translate(sql) if params is not None else sql
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall() if cur.description is not None else []
            return Result(rows, cur.rowcount)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> int:
        params = list(seq)
        if not params:
            return 0
        with self.connection() as conn, conn.cursor() as cur:
            cur.executemany(translate(sql), params)
            return int(cur.rowcount)

    def pg(self, query: str | pgsql.Composable, params: Sequence[Any] | None = None) -> list[Row]:
        """Run native psycopg SQL (``%s`` placeholders) and return every row."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []

    def commit(self) -> None:
        """Statements autocommit outside ``transaction()``: kept for sqlite3-style callers."""

    def close(self) -> None:
        self.pool.close()
