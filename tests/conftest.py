"""Shared fixtures: settings on the hashing embedder, and one ingested copy of the bundled corpus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from pipeline.config import Settings, load_settings
from tests.pg_support import pg_server, pg_url  # noqa: F401  (PostgreSQL fixtures, see pg_support.py)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": str(data_dir),
        "index.embedder": "hashing",
        "nlp.models_dir": str(ROOT / "models"),
        "ingest.workers": 0,  # in-process; tests/test_ingest_pool.py covers the worker processes
    }
    values.update(overrides)
    return load_settings(env={}, overrides=values)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bundled corpus ingested once (hashing embedder) for read-only tests."""
    from pipeline.jobs import ingest

    settings = make_settings(tmp_path_factory.mktemp("data"))
    report = ingest(settings, [str(CORPUS)])
    assert report.failed == 0, report.failures
    return settings


@pytest.fixture()
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the CLI as a subprocess against a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINTEL_")}
    env["DEFINTEL_INDEX__EMBEDDER"] = "hashing"
    env["DEFINTEL_DATA_DIR"] = str(tmp_path / "data")
    env["DEFINTEL_NLP__MODELS_DIR"] = str(ROOT / "models")
    env["DEFINTEL_INGEST__WORKERS"] = "0"
    return env


@pytest.fixture()
def site() -> Iterator[HTTPServer]:
    """A local HTTP server on 127.0.0.1 for crawler tests (threaded: the crawler fetches hosts in parallel)."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()
