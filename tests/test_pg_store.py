"""The PostgreSQL store against a real server (tests/pg_support.py): schema, the sqlite-style SQL
adapter, read-only connections, and the bundled corpus ingested into PostgreSQL giving the same
documents, entities, agreements and graph as the embedded store."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pipeline.jobs
from pipeline.backend import open_store
from pipeline.backend.pg.db import translate
from pipeline.backend.pg.schema import MIGRATIONS
from pipeline.backend.pg.store import PgStore
from pipeline.backend.pg.vectors import PgVectorIndex
from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.graph import GraphFilter, build_graph, summary
from tests.conftest import CORPUS, make_settings
from tests.pg_support import create_database, drop_database


def pg_settings(data_dir: Path, url: str) -> Settings:
    return make_settings(data_dir, **{"store.database_url": url})


def ingest_into_postgres(settings: Settings, sources: list[str]) -> Any:
    """``ingest`` on the store the settings pick (PostgreSQL: ``store.database_url`` is set)."""
    return pipeline.jobs.ingest(settings, sources)


@pytest.fixture(scope="module")
def pg_ingested(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The bundled corpus ingested straight into a PostgreSQL database (hashing embedder)."""
    url = create_database(pg_server)
    settings = pg_settings(tmp_path_factory.mktemp("pgdata"), url)
    report = ingest_into_postgres(settings, [str(CORPUS)])
    assert (report.new, report.failed) == (len(list(CORPUS.glob("*.html"))), 0), report.failures
    yield settings
    drop_database(pg_server, url)


# -- schema and adapter ----------------------------------------------------------------------
def test_migrations_recorded_idempotent_and_safe_to_run_twice(pg_url: str) -> None:
    first = PgStore(pg_url)
    second = PgStore(pg_url)  # a second worker starting on the same database
    assert first.migrations() == [name for name, _ in MIGRATIONS]
    assert first.migrate() == [] and second.migrate() == []
    # Text sorts by code point, as in SQLite, whatever the database locale.
    coll = first.db.execute(
        "SELECT collation_name FROM information_schema.columns WHERE table_name = 'entities' AND column_name = 'canonical'"
    ).fetchone()
    assert coll is not None and coll[0] == "C"
    first.close()
    second.close()


def test_the_sqlite_style_adapter(pg_url: str) -> None:
    assert translate("SELECT ? WHERE x LIKE '%a'") == "SELECT %s WHERE x LIKE '%%a'"
    store = PgStore(pg_url)
    row = store.db.execute("SELECT ? AS a, ? AS b", (1, "x")).fetchone()
    assert row is not None and (row[0], row["b"], dict(row)) == (1, "x", {"a": 1, "b": "x"})
    assert store.db.execute("SELECT 1 WHERE FALSE").fetchone() is None
    with pytest.raises(ZeroDivisionError), store.atomic():
        store.frontier_insert([("https://a.example/1", "s", "page", None)])
        raise ZeroDivisionError
    assert store.frontier_row("https://a.example/1") is None  # rolled back
    store.frontier_insert([("https://a.example/1", "s", "page", None)])
    assert store.frontier_requeue("s", "page") == 0
    store.frontier_set("https://a.example/1", status="done")
    assert store.frontier_requeue("s", "page") == 1
    assert store.frontier_counts(["s"]) == {"pending": 1}
    with pytest.raises(ValueError, match="unknown frontier columns"):
        store.frontier_set("https://a.example/1", nope=1)
    store.close()


def test_read_only_store_refuses_writes_and_needs_a_schema(pg_url: str) -> None:
    with pytest.raises(UsageError, match="no defintel schema"):
        PgStore(pg_url, readonly=True)
    PgStore(pg_url).close()
    ro = PgStore(pg_url, readonly=True)
    assert ro.documents() == []
    with pytest.raises(Exception, match="read-only"):
        ro.frontier_insert([("https://a.example/", "s", "page", None)])
    ro.close()


def test_unreachable_database_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot connect"):
        PgStore(f"postgresql://nobody:secret@/nodb?host={tmp_path}")


def test_vector_column_follows_the_first_embedder_and_refuses_another(pg_url: str) -> None:
    store = PgStore(pg_url)
    assert store.embedding_dim() == 384  # multilingual-e5-small's, from the migration
    PgVectorIndex(store, "hashing", 512)
    assert store.embedding_dim() == 512 and store.embedder() == ("hashing", 512)
    with pytest.raises(UsageError, match="come from embedder 'hashing'"):
        PgVectorIndex(store, "e5-small", 384)
    store.close()


def test_workers_recording_the_embedder_together_do_not_deadlock(pg_url: str) -> None:
    """Two ingest workers start on a fresh database with a non-default embedder: one resizes the
    vector column, the other waits for it and finds the embedder recorded."""
    stores = [PgStore(pg_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def record(store: PgStore) -> None:
        start.wait()
        try:
            store.ensure_embedder("hashing", 512)
        except (psycopg.Error, UsageError) as exc:  # a deadlock is psycopg.errors.DeadlockDetected
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert all(s.embedder() == ("hashing", 512) and s.embedding_dim() == 512 for s in stores)
    for store in stores:
        store.close()


# -- the corpus ingested into PostgreSQL ----------------------------------------------------
def _without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("first_seen", "last_seen")} for r in rows]


def test_corpus_in_postgres_has_the_same_documents_entities_agreements(
    pg_ingested: Settings, ingested: Settings
) -> None:
    pg = open_store(pg_ingested, readonly=True)
    lite = Store(ingested.data_path, readonly=True)
    assert _without_times(pg.documents()) == _without_times(lite.documents())
    assert pg.entities() == lite.entities()
    key = lambda a: a["agreement_id"]  # noqa: E731
    assert sorted(pg.agreements(), key=key) == sorted(lite.agreements(), key=key)
    assert pg.cooccurrences() == lite.cooccurrences()
    untimed = lambda deals: [dataclasses.replace(d, first_seen=None, updated=None) for d in deals]  # noqa: E731
    assert untimed(pg.deals()) == untimed(lite.deals()) and len(pg.deals()) > 0
    doc = lite.documents()[0]["doc_id"]
    assert pg.mentions(doc) == lite.mentions(doc)
    assert {k: v for k, v in (pg.document(doc) or {}).items() if not k.endswith("_seen")} == {
        k: v for k, v in (lite.document(doc) or {}).items() if not k.endswith("_seen")
    }
    assert [c["chunk_id"] for c in pg.chunks()] == [c["chunk_id"] for c in lite.chunks()]
    assert PgVectorIndex(pg, "hashing", 512).ids() == {c["vec_id"] for c in lite.chunks()}
    run = pg.last_run()
    assert run is not None and run["status"] == "finished" and run["report"]["new"] == len(pg.documents())
    pg.close()


def test_graph_and_app_queries_match_the_embedded_store(pg_ingested: Settings, ingested: Settings) -> None:
    pg = open_store(pg_ingested, readonly=True)
    lite = Store(ingested.data_path, readonly=True)
    for flt in (GraphFilter(), GraphFilter(since="2024-01-01", include_duplicates=True)):
        g_pg = build_graph(pg, flt, models_dir=pg_ingested.nlp.models_dir)
        g_lite = build_graph(lite, flt, models_dir=ingested.nlp.models_dir)
        assert summary(g_pg) == summary(g_lite)
        assert sorted(g_pg.nodes(data=True)) == sorted(g_lite.nodes(data=True))
    from pipeline.app.queries import run_failures

    assert run_failures(pg) == []
    pg.close()


def test_second_ingest_changes_nothing(pg_ingested: Settings) -> None:
    report = ingest_into_postgres(pg_ingested, [str(CORPUS)])
    assert (report.new, report.updated, report.failed) == (0, 0, 0)
    assert report.unchanged == len(list(CORPUS.glob("*.html")))
    store = open_store(pg_ingested, readonly=False)
    assert [d for d in store.documents() if d["duplicate_of"]]
    assert json.dumps(store.runs(2)[0]["report"]["unchanged"]) == str(report.unchanged)
    store.close()


def test_search_over_the_ingested_database_matches_the_embedded_store(
    pg_ingested: Settings, ingested: Settings
) -> None:
    from pipeline.backend import open_searcher
    from pipeline.index.search import Filters, Searcher

    pg = open_store(pg_ingested, readonly=True)
    pg_search = open_searcher(pg_ingested, pg)
    lite = Searcher(ingested, Store(ingested.data_path, readonly=True))
    for q, flt in (
        ("Azərsilah patron istehsalı", Filters()),
        ("Otokar zırhlı araç ihracatı", Filters(languages=("tr", "en"))),
        ("simulator training agreement", Filters(since="2024-01-01")),
    ):
        assert [h.doc_id for h in pg_search.search(q, k=5, filters=flt)] == [
            h.doc_id for h in lite.search(q, k=5, filters=flt)
        ], q
    pg.close()


def test_a_database_from_an_older_schema_is_upgraded_in_place(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PgStore, "schema", MIGRATIONS[:2])
    old = PgStore(pg_url)
    old.db.execute(
        """INSERT INTO documents (doc_id, url, language, title, text, content_hash, text_hash, first_seen, last_seen)
           VALUES ('d1', 'https://x.example/1', 'en', 'T', 'x', 'h', 'h', 't', 't')"""
    )
    old.db.execute(
        """INSERT INTO chunks (chunk_id, doc_id, n, vec_id, text, start, "end", terms, n_terms)
           VALUES ('c1', 'd1', 0, 1, 'x', 0, 1, '''a'':1,3 ''b'':2'::tsvector, 3)"""
    )
    old.close()
    monkeypatch.setattr(PgStore, "schema", MIGRATIONS)
    new = PgStore(pg_url)
    assert new.migrations() == [name for name, _ in MIGRATIONS]
    row = new.db.execute("SELECT tf FROM chunks WHERE chunk_id = 'c1'").fetchone()
    assert row is not None and row[0] == {"a": 2, "b": 1}
    new.close()
