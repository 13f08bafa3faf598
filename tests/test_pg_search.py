"""Search on PostgreSQL (pgvector HNSW + BM25 over tsvector) against the embedded searcher on the
bundled corpus: the same top documents for every query of the corpus query set, with and without
filters (hashing embedder; a real server from tests/pg_support.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pipeline.backend import open_searcher, open_store
from pipeline.backend.pg.migrate import migrate_to_postgres
from pipeline.backend.pg.search import PgSearcher
from pipeline.backend.pg.store import PgStore
from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.index.search import Filters, Searcher
from tests.conftest import CORPUS, make_settings
from tests.pg_support import create_database, drop_database

FILTERS = (
    Filters(),
    Filters(languages=("tr",)),
    Filters(languages=("az", "en"), since="2024-06-01"),
    Filters(entity="Azərsilah"),
    Filters(agreement_type="licence_production"),
)


def corpus_queries() -> list[str]:
    return [
        q["q"] for p in sorted((CORPUS / "gold").glob("*.json")) for q in json.loads(p.read_text())["queries"]
    ]


@pytest.fixture(scope="module")
def both(ingested: Settings, pg_server: str) -> Iterator[tuple[Searcher, PgSearcher]]:
    """The embedded searcher over the ingested corpus, and the PostgreSQL one over its copy."""
    url = create_database(pg_server)
    assert migrate_to_postgres(ingested, url).ok
    pg_settings = make_settings(ingested.data_path, **{"store.database_url": url})
    pg_store = open_store(pg_settings, readonly=True)
    assert isinstance(pg_store, PgStore)
    pg = open_searcher(pg_settings, pg_store)
    assert isinstance(pg, PgSearcher)
    yield Searcher(ingested, Store(ingested.data_path, readonly=True)), pg
    pg_store.close()
    drop_database(pg_server, url)


@pytest.mark.parametrize(
    "flt", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in vars_of(f).items()) or "none"
)
def test_same_top_documents_as_the_embedded_backend(both: tuple[Searcher, PgSearcher], flt: Filters) -> None:
    embedded, pg = both
    queries = corpus_queries()
    assert len(queries) >= 60
    for q in queries:
        a = embedded.search(q, k=5, filters=flt)
        b = pg.search(q, k=5, filters=flt)
        assert [h.doc_id for h in b] == [h.doc_id for h in a], q
        assert [h.score for h in b] == pytest.approx([h.score for h in a], rel=1e-4), q
    assert pg.allowed_count(flt) == embedded.allowed_count(flt)


def test_dense_and_lexical_rankings_match_too(both: tuple[Searcher, PgSearcher]) -> None:
    embedded, pg = both
    for q in corpus_queries():
        a, b = embedded.search(q, k=5, mode="dense"), pg.search(q, k=5, mode="dense")
        assert [h.doc_id for h in b] == [h.doc_id for h in a], q
        # BM25 over the tsvector gives bm25s' scores (the order of equal scores may differ)
        a, b = embedded.search(q, k=5, mode="lexical"), pg.search(q, k=5, mode="lexical")
        assert [h.score for h in b] == pytest.approx([h.score for h in a], rel=1e-4), q


def test_hits_carry_the_same_snippets_and_matched_words(both: tuple[Searcher, PgSearcher]) -> None:
    embedded, pg = both
    a, b = embedded.search("Azərsilah patron istehsalı", k=3), pg.search("Azərsilah patron istehsalı", k=3)
    assert [(h.snippet, h.matched_terms, h.url, h.title, h.published) for h in b] == [
        (h.snippet, h.matched_terms, h.url, h.title, h.published) for h in a
    ]
    assert b[0].matched_terms


def test_filters_apply_before_ranking_and_bad_input_is_refused(both: tuple[Searcher, PgSearcher]) -> None:
    _, pg = both
    hits = pg.search("Azersilah", k=5, filters=Filters(languages=("az",)))
    assert len(hits) == 5 and {h.language for h in hits} == {"az"}
    assert pg.search("Azersilah", filters=Filters(since="2099-01-01")) == []
    for bad in (dict(query=""), dict(query="x", k=0), dict(query="x", mode="nope")):
        with pytest.raises(UsageError):
            pg.search(**bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown agreement type"):
        pg.search("x", filters=Filters(agreement_type="nope"))


def vars_of(f: Filters) -> dict[str, object]:
    return {
        k: getattr(f, k) for k in ("languages", "since", "until", "entity", "agreement_type") if getattr(f, k)
    }


def test_language_statistics_are_stored_and_reused_while_current(both: tuple[Searcher, PgSearcher]) -> None:
    import numpy as np

    from pipeline.backend.pg import stats

    _, pg = both
    counts = stats.vector_counts(pg.store)
    fresh = stats.compute(pg.store, counts)
    stored = stats.load(pg.store, counts)  # `migrate` refreshed them
    assert set(stored) == set(fresh) == set(pg.stats) and "*" in stored
    for lang in fresh:
        assert np.allclose(stored[lang].cov, fresh[lang].cov) and np.allclose(
            stored[lang].mean, fresh[lang].mean
        )
    stale = {**counts, "tr": counts["tr"] + 1}  # another ingest since: computed again, not read
    assert set(stats.load(pg.store, stale)) == set(fresh)
