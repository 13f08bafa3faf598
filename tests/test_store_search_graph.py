"""The store over the ingested corpus (hashing embedder); search is in test_search.py, the graph in test_graph.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.backend.sqlite import MIGRATIONS, Store
from pipeline.config import Settings


def test_schema_migrations_recorded_and_idempotent(ingested: Settings) -> None:
    store = Store(ingested.data_path)
    assert store.migrations() == [name for name, _ in MIGRATIONS]
    assert store.migrate() == []
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_readonly_store_reads_but_refuses_writes(ingested: Settings) -> None:
    reader = Store(ingested.data_path, readonly=True)
    before = len(reader.documents())
    assert before > 0
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.db.execute("DELETE FROM documents")
    assert len(Store(ingested.data_path).documents()) == before


def test_every_page_stored_once_with_republications_marked(ingested: Settings, corpus_dir: Path) -> None:
    docs = Store(ingested.data_path).documents()
    assert len(docs) == len(list(corpus_dir.glob("*.html")))
    assert len({d["url"] for d in docs}) == len(docs)
    gold = {
        json.loads(p.read_text())["url"]: json.loads(p.read_text())
        for p in (corpus_dir / "gold").glob("*.json")
    }
    by_file = {g["file"]: url for url, g in gold.items()}
    by_url = {d["url"]: d for d in docs}
    dup_pairs = {(url, by_file[g["duplicate_of"]]) for url, g in gold.items() if g["duplicate_of"]}
    found = {
        (d["url"], by_url_doc["url"])
        for d in docs
        if d["duplicate_of"]
        for by_url_doc in docs
        if by_url_doc["doc_id"] == d["duplicate_of"]
    }
    assert dup_pairs and found == dup_pairs
    assert all(by_url[u]["language"] == g["language"] for u, g in gold.items())
