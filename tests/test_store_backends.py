"""The store seam (``pipeline/backend/protocols.py``) on both backends: every test here runs once
on the embedded SQLite store and once on PostgreSQL, through ``open_store`` and the Protocol
only, so the two return the same records by test, not only by construction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.backend import open_store
from pipeline.backend.protocols import Store
from pipeline.config import load_settings
from pipeline.records import Agreement, Analysis, Chunk, Document, Entity, Mention, Money, Span


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each backend."""
    env = {"DEFINTEL_DATA_DIR": str(tmp_path / "data"), "DEFINTEL_INDEX__EMBEDDER": "hashing"}
    if request.param == "postgres":
        env["DEFINTEL_DATABASE_URL"] = request.getfixturevalue("pg_url")
    settings = load_settings(env=env, overrides={"store.backend": request.param})
    s = open_store(settings, readonly=False)
    yield s
    s.close()


TEXT = "MKE and Azersilah signed a contract worth 10 million USD in Baku."


def _analysis(doc_id: str = "d1", *, published: str | None = "2024-05-01", text: str = TEXT) -> Analysis:
    doc = Document(doc_id, f"https://x.example/{doc_id}", "en", f"Title {doc_id}", published, None, text)
    mke = Entity("mke", "ORG", "MKE", ("MKE",))
    azs = Entity("azersilah", "ORG", "Azersilah", ("Azersilah",), None, False)
    mentions = (
        Mention("MKE", "ORG", "MKE", "mke", 0, 3),
        Mention("Azersilah", "ORG", "Azersilah", "azersilah", 8, 17),
    )
    ag = Agreement(
        "contract",
        ("MKE", "Azersilah"),
        ("mke", "azersilah"),
        Span(text[: len(text) - 1], 0, len(text) - 1),
        signed=published,
        value=Money(10_000_000.0, "USD"),
    )
    return Analysis(doc, mentions, (ag,), (mke, azs))


def _save(store: Store, analysis: Analysis, duplicate_of: str | None = None) -> None:
    with store.atomic():
        store.save_analysis(
            analysis,
            text_hash="h-" + analysis.document.doc_id,
            minhash=b"\x01\x02",
            duplicate_of=duplicate_of,
        )


def test_migrations_recorded_and_idempotent(store: Store) -> None:
    assert store.migrations() and store.migrate() == []


def test_migrations_recorded_under_their_old_names_are_renamed_not_run_again(store: Store) -> None:
    impl: Any = store  # the schema bookkeeping is below the Protocol
    with impl.atomic():
        for old, new in impl.renamed.items():
            impl.db.execute("UPDATE schema_migrations SET name = ? WHERE name = ?", (old, new))
    assert store.migrate() == []
    assert store.migrations() == [name for name, _ in impl.schema]


def test_the_two_migration_histories_share_only_the_shared_migrations() -> None:
    from pipeline.backend.pg.schema import MIGRATIONS as PG
    from pipeline.backend.sqlite import MIGRATIONS as SQLITE

    both = {n for n, _ in SQLITE} & {n for n, _ in PG}
    assert (
        both
        == {n for n, _ in SQLITE if n.startswith("shared_")}
        == {n for n, _ in PG if n.startswith("shared_")}
    )
    assert all(n.startswith(("sqlite_", "shared_")) for n, _ in SQLITE)
    assert all(n.startswith(("pg_", "shared_")) for n, _ in PG)


def test_a_saved_analysis_reads_back_as_records(store: Store) -> None:
    _save(store, _analysis())
    assert store.document_state("d1") == (_analysis().document.content_hash, None)
    [row] = store.documents()
    assert (row["doc_id"], row["title"], row["published"], row["story_id"]) == (
        "d1",
        "Title d1",
        "2024-05-01",
        None,
    )
    doc = store.document("d1")
    assert doc is not None and doc["text"] == TEXT and "minhash" not in doc
    assert store.document_meta(["d1", "nope"]) == {
        "d1": {
            "doc_id": "d1",
            "url": "https://x.example/d1",
            "title": "Title d1",
            "language": "en",
            "published": "2024-05-01",
        }
    }
    assert [(m["entity_id"], m["canonical"], m["start"], m["end"]) for m in store.mentions("d1")] == [
        ("mke", "MKE", 0, 3),
        ("azersilah", "Azersilah", 8, 17),
    ]
    [ag] = store.agreements()
    assert (ag["parties"], ag["party_ids"], ag["amount"], ag["currency"]) == (
        ["MKE", "Azersilah"],
        ["mke", "azersilah"],
        10_000_000.0,
        "USD",
    )
    assert {e["id"]: (e["mentions"], e["documents"], e["in_registry"]) for e in store.entities()} == {
        "mke": (1, 1, True),
        "azersilah": (1, 1, False),
    }
    assert store.entity_exists("mke") and not store.entity_exists("nope")
    assert store.entity_canonical("azersilah") == "Azersilah"
    assert store.entity_nodes()["mke"] == {
        "label": "ORG",
        "canonical": "MKE",
        "qid": None,
        "in_registry": True,
    }
    assert ("mke", ["MKE", "MKE"]) in store.entity_names()
    assert store.surface_forms() == [("d1", "azersilah", "Azersilah", 1), ("d1", "mke", "MKE", 1)]
    assert store.cooccurrences() == [("d1", "azersilah", "2024-05-01"), ("d1", "mke", "2024-05-01")]
    assert sorted(store.doc_entity_pairs()) == [("azersilah", "d1"), ("mke", "d1")]
    assert store.doc_agreement_types() == [("contract", "d1")]
    assert store.content_hashes() == [("d1", _analysis().document.content_hash)]
    assert [(d, bytes(m), p) for d, m, p in store.minhashes(exclude="x")] == [
        ("d1", b"\x01\x02", "2024-05-01")
    ]
    assert store.find_by_text_hash("h-d1", exclude="x") == "d1"


def test_saving_again_replaces_mentions_and_agreements_and_merges_aliases(store: Store) -> None:
    _save(store, _analysis())
    again = _analysis()
    with store.atomic():
        store.upsert_entities([Entity("mke", "ORG", "MKE", ("Makina ve Kimya",))])
        store.save_analysis(again, text_hash="h-d1", minhash=None, duplicate_of=None)
    assert len(store.agreements()) == 1 and len(store.mentions("d1")) == 2
    assert store.entity_row("mke") is not None
    row = store.entity_row("mke")
    assert row is not None and row["aliases"] == ["MKE", "Makina ve Kimya"]


def test_filters_and_duplicates(store: Store) -> None:
    _save(store, _analysis("d1", published="2024-05-01"))
    _save(store, _analysis("d2", published="2023-01-01", text=TEXT + " Again."))
    store.mark_duplicate("d1", "d2")
    assert store.document_state("d1") == (_analysis().document.content_hash, "d2")
    assert store.filter_doc_ids() == {"d1", "d2"}
    assert store.filter_doc_ids(since="2024-01-01") == {"d1"}
    assert store.filter_doc_ids(languages=["tr"]) == set()
    assert store.filter_doc_ids(entity_ids=[]) == set()
    assert store.filter_doc_ids(entity_ids=["mke"], agreement_type="contract") == {"d1", "d2"}
    kept = store.graph_documents(include_duplicates=False, since=None, until=None)
    assert [d["doc_id"] for d in kept] == ["d2"]
    assert [
        d["doc_id"] for d in store.graph_documents(include_duplicates=True, since="2024-01-01", until=None)
    ] == ["d1"]


def test_chunks_replace_and_count(store: Store) -> None:
    _save(store, _analysis())
    chunks = [Chunk("a" * 40, "d1", 0, "MKE and", 0, 7), Chunk("b" * 40, "d1", 1, "Azersilah", 8, 17)]
    with store.atomic():
        removed, added = store.replace_chunks("d1", chunks)
    assert removed == [] and len(added) == 2
    assert [c["chunk_id"] for c in store.chunks()] == sorted(c.chunk_id for c in chunks)
    with store.atomic():
        removed2, added2 = store.replace_chunks("d1", chunks[:1])
    assert sorted(removed2) == sorted(added) and len(added2) == 1
    assert store.chunk_count() == 1 and store.entity_count() == 2
    assert store.counts()["chunks"] == 1


def test_frontier_rows_due_set_and_errors(store: Store) -> None:
    store.frontier_insert([("https://x.example/a", "https://x.example/", "page", None)])
    store.frontier_insert([("https://x.example/a", "other", "link", None)])  # known: left as it is
    row = store.frontier_row("https://x.example/a")
    assert row is not None and (row["source"], row["kind"], row["status"], row["attempts"]) == (
        "https://x.example/",
        "page",
        "pending",
        0,
    )
    assert [r["url"] for r in store.frontier_due(["https://x.example/"], "9999")] == ["https://x.example/a"]
    store.frontier_set("https://x.example/a", status="retry", last_error="boom", next_try="2999-01-01")
    assert store.frontier_due(["https://x.example/"], "2030-01-01") == []
    assert store.frontier_counts(["https://x.example/"]) == {"retry": 1}
    assert store.frontier_counts([]) == {}
    [err] = store.frontier_errors()
    assert (err["url"], err["last_error"], err["status"]) == ("https://x.example/a", "boom", "retry")
    with pytest.raises(ValueError, match="unknown frontier columns"):
        store.frontier_set("https://x.example/a", lease_until="x")


def test_runs_record_their_report(store: Store) -> None:
    run_id = store.start_run()
    store.finish_run(run_id, {"new": 2, "failures": [{"source": "a", "error": "b"}]})
    run = store.last_run()
    assert run is not None and run["run_id"] == run_id and run["status"] == "finished"
    assert run["report"] == {"new": 2, "failures": [{"source": "a", "error": "b"}]}


def test_watchlists_and_change_log(store: Store) -> None:
    _save(store, _analysis())
    mark = store.watch_mark()
    assert [e["kind"] for e in store.watch_events(0, mark)] == ["document", "agreement"]
    store.save_watchlist("w", [{"name": "MKE", "canonical": "MKE", "ids": ["mke"]}], ["tank"], ["contract"])
    [wl] = store.watchlists()
    assert (wl["name"], wl["entities"][0]["ids"], wl["queries"], wl["mark"]) == ("w", ["mke"], ["tank"], mark)
    store.set_watch_mark("w", mark, "2024-06-01")
    store.set_visit_mark("w", mark)
    row = store.watchlist("w")
    assert row is not None and row["last_digest"] == "2024-06-01"
    assert store.watch_documents(["d1"])["d1"]["text"] == TEXT
    assert store.watch_mentions(["d1"]) == [("d1", "mke", 0, 3), ("d1", "azersilah", 8, 17)]
    [wa] = store.watch_agreements(["d1"])
    assert wa["watch_key"].startswith("d1|contract|")
    assert set(store.entities_first_seen(["mke"])) == {"mke"}
    assert [r["id"] for r in store.entity_rows(["mke", "azersilah"])] == ["azersilah", "mke"]
    assert store.delete_watchlist("w") and not store.delete_watchlist("w")
