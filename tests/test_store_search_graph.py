"""Store, search and graph over the ingested corpus (hashing embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.graph import build_graph, export
from pipeline.index.embedders import HashingEmbedder
from pipeline.index.search import Filters, Searcher
from pipeline.store import MIGRATIONS, Store


def test_schema_migrations_recorded_and_idempotent(ingested: Settings) -> None:
    store = Store(ingested.data_path)
    assert store.migrations() == [name for name, _ in MIGRATIONS]
    assert store.migrate() == []
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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


def test_search_finds_the_mke_mka_azersilah_story(ingested: Settings) -> None:
    hits = Searcher(ingested, Store(ingested.data_path)).search("Azersilah", k=10)
    assert len(hits) == 10
    assert len({h.doc_id for h in hits}) == 10
    assert all(h.snippet for h in hits)
    assert any("MKA" in h.title or "MKE" in h.title for h in hits)


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


def test_entity_filter_accepts_any_alias(ingested: Settings) -> None:
    searcher = Searcher(ingested, Store(ingested.data_path))
    for alias in ("Azersilah", "Azərsilahın", "Azersilah'a"):
        hits = searcher.search("production line", k=30, filters=Filters(entity=alias))
        assert hits
        for h in hits:
            text = Store(ingested.data_path).document(h.doc_id)
            assert text is not None and ("Azersilah" in text["text"] or "Azərsilah" in text["text"])


def test_index_built_with_another_embedder_is_refused(ingested: Settings) -> None:
    other = HashingEmbedder(dim=256)
    with pytest.raises(UsageError, match="built with embedder"):
        Searcher(ingested, Store(ingested.data_path), embedder=other)


def test_graph_round_trips(ingested: Settings, tmp_path: Path) -> None:
    g = build_graph(Store(ingested.data_path))
    assert {"mke", "mka", "azersilah"} <= set(g.nodes)
    assert any(d["kind"] == "agreement" for _, _, d in g.edges(data=True))
    path = export(g, "graphml", tmp_path / "g.graphml")
    back = nx.read_graphml(path)
    assert back.number_of_nodes() == g.number_of_nodes()
    assert back.nodes["azersilah"]["name"] == "Azersilah"
    assert "Azərsilah" in json.loads(back.nodes["azersilah"]["aliases"])
    gexf = nx.read_gexf(export(g, "gexf", tmp_path / "g.gexf"))
    assert gexf.number_of_nodes() == g.number_of_nodes()
    cy = nx.cytoscape_graph(json.loads(export(g, "cytoscape", tmp_path / "g.json").read_text()))
    assert cy.number_of_edges() == g.number_of_edges()
    with pytest.raises(UsageError, match="does not exist"):
        export(g, "graphml", tmp_path / "missing" / "g.graphml")
