"""The app's library side without Streamlit: HTML escaping, highlighting, USD rates, queries."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from pipeline.app import queries, render
from pipeline.app.rates import UsdRates, load_app_settings, parse_rates
from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.graph import build_graph
from tests.conftest import CORPUS


def test_highlight_escapes_and_marks_accent_insensitively() -> None:
    out = render.highlight_terms("<b>Azərsilah</b> & MKE'nin\nline", ["Azersilah", "mke"])
    assert out == "&lt;b&gt;<mark>Azərsilah</mark>&lt;/b&gt; &amp; <mark>MKE</mark>&#x27;nin<br>line"


def test_highlight_cannot_be_tricked_by_a_term_with_markup() -> None:
    out = render.highlight_terms("a <script> b", ["<script>"])
    assert out == "a <mark>&lt;script&gt;</mark> b"


def test_document_html_marks_entities_and_evidence_and_escapes() -> None:
    text = "Title\n\n<i>MKE</i> signed with Azersilah."
    s = text.index("MKE")
    mentions = [
        render.Marked(s, s + 3, "ORG", "id1"),
        render.Marked(text.index("Azer"), len(text) - 1, "ORG", "i&2"),
    ]
    evidence = [render.Marked(text.index("<i>"), len(text), title='contract: "x"')]
    out = render.document_html(text, mentions, evidence)
    assert "<i>" not in out and "&lt;i&gt;" in out
    assert 'href="?page=entity&amp;id=id1"' in out and "id=i%262" in out
    assert out.count('class="di-lab"') == 2
    assert 'title="contract: &quot;x&quot;"' in out
    assert "\n" not in out


@pytest.mark.parametrize("text", ["a\rb", "a\r\rb", "a\r\nb", "a\n\rb", "\r"])
def test_line_breaks_never_leave_a_carriage_return(text: str) -> None:
    """A lone \\r is a line break to Markdown (two end the HTML block): every kind becomes <br>."""
    for out in (render.document_html(text, [], []), render.highlight_terms(text, ["a"])):
        assert "\r" not in out and "\n" not in out
    assert render.highlight_terms("a\rb", []) == "a<br>b"
    assert render.highlight_terms("a\r\nb", []) == "a<br>b"


def test_overlapping_and_out_of_range_mentions_are_dropped() -> None:
    out = render.document_html(
        "abcdef",
        [render.Marked(0, 4, "ORG", "a"), render.Marked(2, 5, "GPE", "b"), render.Marked(3, 99, "GPE", "c")],
        [],
    )
    assert out.count("di-ent") == 1


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://x.example/a", True),
        ("http://x", True),
        ("javascript:alert(1)", False),
        ("data:x", False),
        ("", False),
    ],
)
def test_only_http_urls_become_links(url: str, ok: bool) -> None:
    assert (render.safe_url(url) is not None) is ok
    assert ("<a " in render.external_link(url)) is ok


def test_rates_convert_and_validate() -> None:
    rates = parse_rates({"eur": 1.1, "AZN": 0.5})
    assert rates.to_usd(100, "EUR") == 110.0
    assert rates.to_usd(100, "USD") == 100.0
    assert rates.to_usd(100, "GBP") is None and rates.to_usd(None, "EUR") is None
    assert not UsdRates()
    for bad in ({"EURO": 1.0}, {"EUR": -1}, {"EUR": "x"}, {"EUR": True}, [1]):
        with pytest.raises(UsageError):
            parse_rates(bad)


def test_rates_come_from_the_config_file_and_env_still_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'data_dir = "from-file"\n[index]\nembedder = "hashing"\n[app]\npage_size = 7\n'
        "[app.usd_rates]\nEUR = 1.08\n",
        encoding="utf-8",
    )
    settings, rates = load_app_settings(cfg, env={"DEFINTEL_DATA_DIR": "from-env"})
    assert settings.data_dir == "from-env" and settings.app.page_size == 7
    assert settings.index.embedder == "hashing" and rates.to_usd(1, "EUR") == 1.08
    plain = tmp_path / "p.toml"
    plain.write_text("[app]\npage_size = 3\n", encoding="utf-8")
    settings, rates = load_app_settings(plain, env={})
    assert settings.app.page_size == 3 and not rates
    with pytest.raises(UsageError, match="not found"):
        load_app_settings(tmp_path / "missing.toml", env={})


def test_csv_is_utf8_and_defuses_formulas() -> None:
    data = queries.csv_bytes([{"a": "=HYPERLINK(1)", "b": "Azərsilah", "c": None}], ["a", "b", "c"])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["a", "b", "c"], ["'=HYPERLINK(1)", "Azərsilah", ""]]


def test_queries_over_the_ingested_corpus(ingested: Settings) -> None:
    store = Store(ingested.data_path, readonly=True)
    rows = queries.agreement_rows(store, parse_rates({"EUR": 2.0}))
    assert len(rows) == len(store.agreements())
    eur = next(r for r in rows if r["currency"] == "EUR")
    assert eur["value_usd"] == eur["value"] * 2
    only = queries.filter_agreements(rows, types=["mou"], party="ministry")
    assert only and all(r["type"] == "mou" and "ministry" in r["parties"].lower() for r in only)
    events = queries.timeline_events(store)
    assert events == sorted(events, key=lambda e: (e["date"], e["pair"]))
    assert {e["kind"] for e in queries.timeline_events(store, "organisations")} == {"organisations"}
    g = build_graph(store, models_dir=ingested.nlp.models_dir)
    nodes, edges = queries.graph_frames(g)
    assert len(nodes) == g.number_of_nodes() and len(edges) == 2 * g.number_of_edges()
    name, data, mime = queries.export_bytes(g, "csv")
    assert name.endswith(".zip") and mime == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == ["edges.csv", "nodes.csv"]
    assert queries.export_bytes(g, "graphml")[1].startswith(b"<?xml")
    runs = queries.run_rows(store)
    assert runs[0]["status"] == "finished" and runs[0]["new"] == len(list(CORPUS.glob("*.html")))
    assert queries.run_failures(store) == []


def test_overview_counts_and_sorted_entity_names(ingested: Settings) -> None:
    store = Store(ingested.data_path, readonly=True)
    seen = queries.overview(store)
    assert (seen.documents, seen.entities, seen.agreements) == (
        len(store.documents()),
        len(store.entities()),
        len(store.agreements()),
    )
    assert list(seen.entity_names) == sorted({e["canonical"] for e in store.entities()})


def test_page_fragments_escape_what_the_pages_say() -> None:
    evil = '<script>x</script>"'
    doc = {"language": "en", "doc_id": evil, "title": evil, "published": evil, "duplicate_of": None}
    fragments = [
        render.document_header(evil, "en", render.esc(evil), "javascript:alert(1)"),
        render.duplicate_list([doc]),
        render.entity_header(evil, "ORG", False, evil),
        render.story_list([[doc, doc]]),
        render.conflict_line(evil, [(evil, 2)]),
        render.deal_sources([{**doc, "evidence": evil}]),
        render.cooccurring([{"name": evil, "documents": 1, "type": "ORG", "entity_id": evil}]),
    ]
    for html in fragments:
        assert "<script" not in html and 'href="javascript' not in html
    assert "(2 reports)" in fragments[4] and "(first seen)" in fragments[1]
