"""Search and the vector index: hybrid ranking, filters before ranking, incremental updates,
deletes, reload after a restart, embedder mismatch, HNSW (hashing embedder throughout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.index.embedders import HashingEmbedder
from pipeline.index.search import Filters, Searcher, TermNormaliser, index_dir
from pipeline.index.vectors import VectorIndex
from pipeline.jobs import ingest
from pipeline.textnorm import fold
from tests.conftest import CORPUS, make_settings

PAGES = ("tr-05-otokar-zirhli-arac-ihracati.html", "az-03-aselsan-gence-birge-muessise.html")
PAGES += ("en-06-havelsan-simulator-export.html",)


def index_ids(settings: Settings) -> set[int]:
    return VectorIndex.load(index_dir(settings), "hashing", HashingEmbedder().dim).ids()


def store_ids(settings: Settings) -> set[int]:
    return {c["vec_id"] for c in Store(settings.data_path).chunks()}


@pytest.fixture()
def small(tmp_path: Path) -> tuple[Settings, Path]:
    """Three corpus pages copied to a folder and ingested into a fresh data dir."""
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in PAGES:
        shutil.copy(CORPUS / name, pages / name)
    settings = make_settings(tmp_path / "data")
    report = ingest(settings, [str(pages)])
    assert (report.new, report.failed) == (3, 0)
    return settings, pages


# -- ranking and snippets --------------------------------------------------------------------
def test_search_finds_the_mke_mka_azersilah_story(ingested: Settings) -> None:
    hits = Searcher(ingested, Store(ingested.data_path)).search("Azersilah", k=10)
    assert len(hits) == 10
    assert len({h.doc_id for h in hits}) == 10
    assert all(h.snippet for h in hits)
    assert any("MKA" in h.title or "MKE" in h.title for h in hits)


def test_snippet_shows_the_matched_words_as_written(ingested: Settings) -> None:
    hits = Searcher(ingested, Store(ingested.data_path)).search("Azersilah patron", k=5, mode="lexical")
    assert hits
    for h in hits:
        assert h.matched_terms, h.title
        assert all(word in h.snippet for word in h.matched_terms)
        assert all(fold(word).startswith(("azersi", "patron")) for word in h.matched_terms)


def test_terms_fold_turkish_and_azerbaijani_letters_and_can_drop_suffixes() -> None:
    text = "Azərsilahın MKE'nin İSTANBUL ışık MKA-nın joint-venture"
    assert fold(text) == "azersilahin mke'nin istanbul isik mka-nin joint-venture"
    assert TermNormaliser(drop_suffixes=True).terms(text) == [
        "azersi",
        "mke",
        "istanb",
        "isik",
        "mka",
        "joint",
        "ventur",
    ]
    assert "nin" in TermNormaliser(drop_suffixes=False).terms(text)


def test_search_modes_and_bad_queries(ingested: Settings) -> None:
    searcher = Searcher(ingested, Store(ingested.data_path))
    for mode in ("hybrid", "dense", "lexical"):
        assert searcher.search("Otokar armoured vehicles", k=3, mode=mode)
    with pytest.raises(UsageError, match="unknown search mode"):
        searcher.search("x", mode="semantic")
    with pytest.raises(UsageError, match="empty query"):
        searcher.search("   ")
    with pytest.raises(UsageError, match="unknown agreement type"):
        searcher.search("x", filters=Filters(agreement_type="alliance"))


# -- filters before ranking -------------------------------------------------------------------
def test_filters_apply_before_ranking(ingested: Settings) -> None:
    searcher = Searcher(ingested, Store(ingested.data_path))
    unfiltered = searcher.search("Azersilah cartridge line", k=5)
    excluded = {h.language for h in unfiltered[:3]}
    keep = tuple(sorted({"tr", "az", "en"} - excluded)) or ("az",)
    filtered = searcher.search("Azersilah cartridge line", k=5, filters=Filters(languages=keep))
    assert len(filtered) == 5
    assert all(h.language in keep for h in filtered)
    dated = searcher.search("contract", k=3, filters=Filters(since="2025-01-01", until="2025-03-31"))
    assert dated and all("2025-01-01" <= (h.published or "") <= "2025-03-31" for h in dated)


def test_a_filter_excluding_the_top_hits_still_returns_k(ingested: Settings) -> None:
    store = Store(ingested.data_path)
    searcher = Searcher(ingested, store)
    top = searcher.search("Azersilah cartridge production line in Baku", k=10)
    # Only the five latest documents (a date filter that excludes most of the top-5 unfiltered hits).
    dates = sorted(d["published"] for d in store.documents() if d["published"])
    since = dates[-6] + "z"  # sorts after that date, before the next day
    allowed = [d for d in store.documents() if (d["published"] or "") > since]
    k = min(5, len(allowed))
    assert k >= 3, "the corpus should hold a few later documents"
    excluded = {h.doc_id for h in top[:5] if (h.published or "") <= since}
    assert len(excluded) >= 3, "the filter should exclude most of the top hits"
    hits = searcher.search("Azersilah cartridge production line in Baku", k=k, filters=Filters(since=since))
    assert len(hits) == k
    assert not {h.doc_id for h in hits} & excluded and all((h.published or "") > since for h in hits)
    for mode in ("dense", "lexical"):
        got = searcher.search("Azersilah cartridge", k=k, filters=Filters(since=since), mode=mode)
        assert all((h.published or "") > since for h in got)


def test_entity_filter_accepts_any_alias(ingested: Settings) -> None:
    searcher = Searcher(ingested, Store(ingested.data_path))
    for alias in ("Azersilah", "Azərsilahın", "Azersilah'a"):
        hits = searcher.search("production line", k=30, filters=Filters(entity=alias))
        assert hits
        for h in hits:
            text = Store(ingested.data_path).document(h.doc_id)
            assert text is not None and ("Azersilah" in text["text"] or "Azərsilah" in text["text"])


def test_a_filter_nothing_passes_returns_nothing(ingested: Settings) -> None:
    searcher = Searcher(ingested, Store(ingested.data_path))
    assert searcher.search("Azersilah", filters=Filters(since="2999-01-01")) == []


# -- index lifecycle --------------------------------------------------------------------------
def test_reingesting_a_changed_document_replaces_its_chunks(small: tuple[Settings, Path]) -> None:
    settings, pages = small
    before = store_ids(settings)
    assert index_ids(settings) == before
    page = pages / PAGES[0]
    html = page.read_text(encoding="utf-8")
    marker = "Teslimatlar Otokar'ın Sakarya'daki fabrikasından yapılacak."
    assert marker in html
    page.write_text(
        html.replace(marker, marker + " Zyxwvut kalkan modülü de pakete eklendi.", 1), encoding="utf-8"
    )
    report = ingest(settings, [str(pages)])
    assert (report.updated, report.unchanged, report.new) == (1, 2, 0)
    after = store_ids(settings)
    assert index_ids(settings) == after  # no orphan vectors, none missing
    assert len(after) == len(before) or after != before
    hits = Searcher(settings, Store(settings.data_path)).search("zyxwvut", k=3, mode="lexical")
    assert hits and "Otokar" in hits[0].title


def test_deleted_documents_leave_no_orphan_vectors(small: tuple[Settings, Path]) -> None:
    settings, pages = small
    store = Store(settings.data_path)
    gone = next(d for d in store.documents() if d["language"] == "az")
    with store.atomic():
        store.db.execute("DELETE FROM documents WHERE doc_id = ?", (gone["doc_id"],))
    (pages / PAGES[1]).unlink()
    assert index_ids(settings) != store_ids(settings)
    ingest(settings, [str(pages)])  # every run reconciles the index with the store first
    assert index_ids(settings) == store_ids(settings)
    hits = Searcher(settings, Store(settings.data_path)).search("Aselsan Gəncə birgə müəssisə", k=10)
    assert gone["doc_id"] not in {h.doc_id for h in hits}


def test_index_reloads_after_restart_with_the_same_results(ingested: Settings) -> None:
    first = Searcher(ingested, Store(ingested.data_path)).search("Roketsan technology transfer", k=5)
    again = Searcher(ingested, Store(ingested.data_path)).search("Roketsan technology transfer", k=5)
    assert [h.as_json() for h in first] == [h.as_json() for h in again]
    root = index_dir(ingested)
    config = json.loads((root / (root / "CURRENT").read_text().strip() / "config.json").read_text())
    assert config["embedder"] == "hashing" and config["dimension"] == HashingEmbedder().dim
    assert config["metric"] == "inner_product" and config["kind"] == "flat"
    assert config["count"] == Store(ingested.data_path).chunk_count()


def test_index_built_with_another_embedder_is_refused(ingested: Settings, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="built with embedder"):
        Searcher(ingested, Store(ingested.data_path), embedder=HashingEmbedder(dim=256))
    other = make_settings(ingested.data_path, **{"index.embedder": "e5-small"})
    with pytest.raises(UsageError, match="built with embedder 'hashing'"):
        Searcher(other, Store(ingested.data_path))  # refused before any model is loaded
    VectorIndex("e5-small", 384).save(tmp_path / "index")
    with pytest.raises(UsageError, match="built with embedder 'e5-small'"):
        VectorIndex.load(tmp_path / "index", "hashing", 512)


def test_hnsw_index_searches_reloads_and_handles_removals(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = list(range(1000, 1300))
    index = VectorIndex("test", 16, hnsw_threshold=200)
    index.add(ids, vectors)
    index.save(tmp_path)
    assert index.kind == "hnsw"
    loaded = VectorIndex.load(tmp_path, "test", 16, hnsw_threshold=200)
    assert loaded.kind == "hnsw" and loaded.ids() == set(ids)
    assert loaded.search(vectors[7], 1)[0][0] == 1007
    allowed = ids[150:]  # a filter on an HNSW index: only allowed ids come back
    assert {i for i, _ in loaded.search(vectors[7], 10, allowed)} <= set(allowed)
    assert loaded.remove([1007, 1008]) == 2
    assert loaded.kind == "flat"  # FAISS HNSW cannot remove: exact search until the next save
    assert 1007 not in {i for i, _ in loaded.search(vectors[7], 10)}
    loaded.save(tmp_path)
    again = VectorIndex.load(tmp_path, "test", 16, hnsw_threshold=200)
    assert again.kind == "hnsw" and again.ids() == set(ids) - {1007, 1008}
    assert 1007 not in {i for i, _ in again.search(vectors[7], 10)}
    with pytest.raises(UsageError, match="unknown index kind"):
        VectorIndex("test", 16, kind="ivf")


# -- the ranking functions both backends share -----------------------------------------------
def test_score_fusion_normalises_bm25_within_each_passage_language() -> None:
    from pipeline.index.search import Fusion, fuse

    z = np.array([1.0, 0.9, 0.8, 0.0], dtype=np.float32)
    lex = np.array([0.0, 8.0, 2.0, 1.0], dtype=np.float32)
    lang = np.array([0, 0, 1, 1])
    fused = fuse(z, lex, lang, 2, Fusion("score", 1.0, True), n_cand=10, rrf_k=60)
    # Each language's best BM25 chunk gets the full weight, whatever the other language's scores.
    assert fused.tolist() == pytest.approx([1.0, 1.9, 1.8, 0.5])
    pooled = fuse(z, lex, lang, 2, Fusion("score", 1.0, False), n_cand=10, rrf_k=60)
    assert pooled.tolist() == pytest.approx([1.0, 1.9, 1.05, 0.125])
    rrf = fuse(z, lex, lang, 2, Fusion("rrf", 0.5, True), n_cand=10, rrf_k=60)
    assert rrf[1] == pytest.approx(1 / 62 + 0.5 / 61) and rrf[0] == pytest.approx(1 / 61)


def test_best_per_document_keeps_each_documents_best_chunk_in_order() -> None:
    from pipeline.index.search import best_per_document

    docs = np.array([3, 1, 3, 2, 1] * 40)
    scores = np.arange(200, dtype=np.float32)[::-1].copy()  # candidate 0 best
    assert best_per_document(docs, scores, 2) == [0, 1]
    assert best_per_document(docs, scores, 10) == [0, 1, 3]  # only three documents exist
    ties = np.zeros(200, dtype=np.float32)
    assert best_per_document(docs, ties, 3) == [0, 1, 3]  # equal scores keep the candidates' order
