"""The Streamlit app, run in-process with AppTest: every page, filters, and escaping of page text."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.app.views import FILTERS_OPEN, STORE_KEY, SharedSearcher
from pipeline.backend.sqlite import DB_NAME, Store
from pipeline.config import Settings
from tests.conftest import ROOT

RATES = "[app.usd_rates]\nEUR = 1.08\nAZN = 0.588\nTRY = 0.029\n"
BADGE = re.compile(r'class="di-badge"[^>]*>([A-Z?]+)<')


def _config(tmp: Path, data_dir: str, extra: str = "") -> Path:
    cfg = tmp / "app.toml"
    cfg.write_text(
        f'data_dir = "{data_dir}"\n[index]\nembedder = "hashing"\n[nlp]\nmodels_dir = "{ROOT / "models"}"\n'
        + extra,
        encoding="utf-8",
    )
    return cfg


def _app(monkeypatch: pytest.MonkeyPatch, cfg: Path, **params: str) -> AppTest:
    monkeypatch.setenv("DEFINTEL_CONFIG", str(cfg))
    monkeypatch.delenv("DEFINTEL_DATA_DIR", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    return at


@pytest.fixture()
def open_app(ingested: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> object:
    """``open_app(page=..., doc=...)``: the app on the ingested corpus, run once."""
    cfg = _config(tmp_path, ingested.data_dir, RATES)

    def run(**params: str) -> AppTest:
        at = _app(monkeypatch, cfg, **params)
        at.run()
        assert not at.exception, at.exception
        return at

    return run


def _cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if 'class="di-card"' in m.value]


# AppTest does not expose a dataframe's key: find each table by a column only it has.
TABLE_COLUMNS = {
    "ent_aliases": "aliases",
    "ent_agreements": "title",
    "ag_table": "evidence",
    "tl_table": "pair",
    "runs_table": "run_id",
}


def _frame(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    column = TABLE_COLUMNS[key]
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _store(settings: Settings) -> Store:
    return Store(settings.data_path, readonly=True)


def test_search_page_without_query_shows_counts(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    assert at.info and "documents" in at.info[0].value
    assert at.sidebar.radio(key="nav").value == "search"


def test_search_cards_collapse_a_story_into_one_card(open_app, ingested: Settings) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    at.text_input(key="query").input("Baykar TB2 Bakü lisanslı üretim").run()
    assert not at.exception
    cards = _cards(at)
    docs = [re.search(r"doc=([0-9a-f]{40})", c).group(1) for c in cards]  # type: ignore[union-attr]
    stories = _store(ingested).story_ids(docs)
    assert len(set(stories.values())) == len(docs)  # one card per story
    folded = next(c for c in cards if "<details" in c)
    assert re.search(r"\+\d+ reports in \d languages", folded)


def test_cross_lingual_search_shows_cards_with_highlights_and_facts(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    at.text_input(key="query").input("Azərsilah patron istehsalı").run()
    assert not at.exception
    cards = _cards(at)
    assert len(cards) >= 5
    langs = {b for c in cards for b in BADGE.findall(c)}
    assert {"TR", "AZ", "EN"} <= langs  # one Azerbaijani query finds pages in all three languages
    assert any("<mark>" in c for c in cards)
    assert any("?page=entity&amp;id=" in c for c in cards)  # entity chips link to entity pages
    assert any("Agreements:" in c for c in cards)
    assert all("?page=document&amp;doc=" in c for c in cards)


def test_search_filters_language_type_entity_and_dates(open_app, ingested: Settings) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    assert not at.multiselect  # the filters are drawn only once their expander is opened
    at.session_state[FILTERS_OPEN] = True
    at.text_input(key="query").input("cartridge line").run()
    at.multiselect(key="langs").set_value(["az"])
    at.selectbox(key="atype").set_value("contract").run()
    assert not at.exception
    cards = _cards(at)
    assert cards and all(BADGE.findall(c) == ["AZ"] for c in cards)
    assert all("contract" in c.split("Agreements:")[1] for c in cards)

    at.multiselect(key="langs").set_value([])
    at.selectbox(key="atype").set_value("")
    at.selectbox(key="entity").set_value("Aselsan").run()
    store = _store(ingested)
    aselsan = next(e["id"] for e in store.entities() if e["canonical"] == "Aselsan")
    docs = [re.search(r"doc=([0-9a-f]{40})", c).group(1) for c in _cards(at)]  # type: ignore[union-attr]
    assert docs and all(aselsan in {m["entity_id"] for m in store.mentions(d)} for d in docs)

    import datetime as dt

    at.selectbox(key="entity").set_value("")
    at.date_input(key="s_since").set_value(dt.date(2025, 3, 1))
    at.date_input(key="s_until").set_value(dt.date(2025, 12, 31)).run()
    dates = [re.search(r"· (\d{4}-\d\d-\d\d|undated)</div>", c) for c in _cards(at)]
    assert dates and all(d and "2025-03-01" <= d.group(1) <= "2025-12-31" for d in dates)


def test_search_filters_stay_applied_while_their_expander_is_closed(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    at.session_state[FILTERS_OPEN] = True
    at.run()
    at.multiselect(key="langs").set_value(["tr"])
    at.text_input(key="query").input("Azersilah").run()
    at.session_state[FILTERS_OPEN] = False
    at.run()
    assert not at.exception and not at.multiselect
    assert any(c.value == "Filters: Türkçe" for c in at.caption)
    cards = _cards(at)
    assert cards and all(BADGE.findall(c) == ["TR"] for c in cards)
    at.session_state[FILTERS_OPEN] = True
    at.run()
    assert at.multiselect(key="langs").value == ["tr"]  # reopened with the kept value


def test_document_view_highlights_entities_and_evidence(open_app, ingested: Settings) -> None:  # type: ignore[no-untyped-def]
    store = _store(ingested)
    doc_id = next(a["doc_id"] for a in store.agreements() if a["amount"])
    at = open_app(page="document", doc=doc_id)
    assert at.selectbox(key="doc").value == doc_id
    html = "\n".join(m.value for m in at.markdown)
    assert 'class="di-ent"' in html and "?page=entity&amp;id=" in html
    assert "border-bottom:2px solid" in html  # the evidence sentence is marked in the text
    assert 'target="_blank"' in html  # link to the original page
    frames = [d.value for d in at.dataframe]
    assert any("evidence" in f.columns and len(f) == len(store.agreements(doc_id)) for f in frames)
    assert any("value_usd" in f.columns for f in frames)


def test_document_view_lists_near_duplicates(open_app, ingested: Settings) -> None:  # type: ignore[no-untyped-def]
    store = _store(ingested)
    copy = next(d for d in store.documents() if d["duplicate_of"])
    at = open_app(page="document", doc=copy["duplicate_of"])
    dup_html = "\n".join(m.value for m in at.markdown if "<li>" in m.value)
    assert f"doc={copy['doc_id']}" in dup_html and "(copy)" in dup_html


def test_entity_page(open_app, ingested: Settings) -> None:  # type: ignore[no-untyped-def]
    store = _store(ingested)
    ent = next(e for e in store.entities() if e["canonical"] == "Azersilah")
    at = open_app(page="entity", id=ent["id"])
    html = "\n".join(m.value for m in at.markdown)
    assert "<h3>Azersilah" in html
    aliases = _frame(at, "ent_aliases")
    assert set(aliases["language"]) == {"en", "tr", "az"}
    assert "Azərsilah" in " ".join(aliases["aliases"])
    assert html.count("?page=document&amp;doc=") >= ent["documents"]
    assert "MKE" in html  # co-occurring entity chip
    assert len(_frame(at, "ent_agreements")) >= 3
    assert at.get("vega_lite_chart")  # documents over time


def test_agreements_table_with_usd_and_filters(open_app, ingested: Settings) -> None:  # type: ignore[no-untyped-def]
    total = len(_store(ingested).deals())  # one row per deal, however many pages report it
    assert total < len(_store(ingested).agreements())
    at = open_app(page="agreements")
    table = _frame(at, "ag_table")
    assert len(table) == total
    # a deal several pages report: its report count and languages, conflicts marked, sources listed
    baykar = table[table["parties"].str.contains("Baykar") & (table["type"] == "licence_production")]
    assert baykar["reports"].max() == 5 and "⚠ value" in set(baykar["conflicts"])
    labels = [e.label for e in at.expander]
    assert any("Baykar" in label and "5 reports (az, en, tr)" in label and "⚠" in label for label in labels)
    sources = "\n".join(m.value for m in at.markdown)
    assert "94,000,000 USD (1 report)" in sources and "96,000,000 USD (4 reports)" in sources
    eur = table[table["currency"] == "EUR"].iloc[0]
    assert eur["value_usd"] == pytest.approx(eur["value"] * 1.08)
    at.multiselect(key="ag_types").set_value(["contract"]).run()
    table = _frame(at, "ag_table")
    assert 0 < len(table) < total and set(table["type"]) == {"contract"}
    at.text_input(key="ag_party").input("aselsan").run()
    assert all("aselsan" in p.lower() for p in _frame(at, "ag_table")["parties"])


def test_agreements_without_rates_have_no_usd_column(
    ingested: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = _app(monkeypatch, _config(tmp_path, ingested.data_dir), page="agreements")
    at.run()
    assert not at.exception
    assert "value_usd" not in _frame(at, "ag_table").columns


def test_timeline_page(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app(page="timeline")
    assert at.get("vega_lite_chart")
    events = _frame(at, "tl_table")
    assert len(events) > 5
    assert any("MKA" in p and "Azersilah" in p for p in events["pair"])
    at.selectbox(key="tl_kind").set_value("countries").run()
    assert not at.exception
    if at.dataframe:
        assert set(_frame(at, "tl_table")["kind"]) == {"countries"}


def test_graph_page_filters_and_export(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app(page="graph")
    assert at.get("vega_lite_chart")
    full = int(re.match(r"(\d+) entities", at.caption[0].value).group(1))  # type: ignore[union-attr]
    at.multiselect(key="g_types").set_value(["ORG"]).run()
    orgs = int(re.match(r"(\d+) entities", at.caption[0].value).group(1))  # type: ignore[union-attr]
    assert 0 < orgs < full
    at.selectbox(key="g_fmt").set_value("gexf").run()
    assert not at.exception
    assert at.get("download_button")


def test_status_page(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app(page="status")
    runs = _frame(at, "runs_table")
    assert len(runs) >= 1 and runs.iloc[0]["status"] == "finished"
    assert next(m.value for m in at.metric) == "finished"


def test_sidebar_navigation_switches_pages(open_app) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    at.sidebar.radio(key="nav").set_value("agreements").run()
    assert not at.exception
    assert at.header[0].value == "Agreements"
    assert at.query_params["page"] == ["agreements"] or at.query_params["page"] == "agreements"


# -- untrusted page text --------------------------------------------------------------------------
EVIL_TITLE = '<script>alert("pwned")</script> Baykar <img src=x onerror=alert(1)>'
# A lone \r pair is a blank line to Markdown: it would end the HTML block around the text.
EVIL_BODY = "\n\n<script>document.cookie</script>\r\r<iframe src=javascript:alert(2)></iframe>\r"


@pytest.fixture()
def evil_app(ingested: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[AppTest, str]:
    """The app on a copy of the store where one crawled page carries HTML/JS in title and body."""
    data = tmp_path / "data"
    shutil.copytree(ingested.data_path / "index", data / "index")
    src = sqlite3.connect(ingested.data_path / DB_NAME)
    dst = sqlite3.connect(data / DB_NAME)
    src.backup(dst)
    src.close()
    doc_id = dst.execute(
        "SELECT doc_id FROM documents WHERE language = 'en' AND title LIKE '%Azersilah%' LIMIT 1"
    ).fetchone()[0]
    dst.execute(
        "UPDATE documents SET title = ?, text = text || ?, url = ? WHERE doc_id = ?",
        (EVIL_TITLE, EVIL_BODY, "javascript:alert(3)", doc_id),
    )
    dst.commit()
    dst.close()
    return _app(monkeypatch, _config(tmp_path, str(data))), doc_id


def _no_live_html(html: str) -> None:
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert 'href="javascript' not in html
    assert "\r" not in html  # Markdown would read it as a line break inside the HTML


def test_crawled_script_in_title_and_body_is_shown_as_text(evil_app: tuple[AppTest, str]) -> None:
    at, doc_id = evil_app
    at.run()
    at.text_input(key="query").input("Azersilah").run()
    assert not at.exception
    card = next(c for c in _cards(at) if doc_id in c)
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; Baykar &lt;img" in card
    _no_live_html(card)

    at.query_params["page"] = "document"
    at.query_params["doc"] = doc_id
    at.session_state["nav"] = "document"
    at.run()
    assert not at.exception
    html = "\n".join(m.value for m in at.markdown)
    assert "&lt;script&gt;document.cookie&lt;/script&gt;" in html
    assert "<span>javascript:alert(3)</span>" in html  # a non-http URL is never a link
    _no_live_html(html)


# -- start-up cost and sessions -------------------------------------------------------------------
HEAVY = ("pandas", "numpy", "pyarrow", "altair", "networkx", "faiss", "onnxruntime", "torch", "spacy")
FIRST_PAGE = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60)
at.run()
assert not at.exception, at.exception
loaded = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(",") or m.startswith("pipeline.index"))
print(json.dumps({"info": [i.value for i in at.info], "loaded": loaded}))
"""


def test_views_import_no_heavy_modules() -> None:
    code = f"import sys, pipeline.app.views; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_first_page_loads_no_model_index_or_table_library(ingested: Settings, tmp_path: Path) -> None:
    """The search page before a query: no embedder, FAISS, pandas or charts (run in a fresh process)."""
    cfg = _config(tmp_path, ingested.data_dir)
    env = {"DEFINTEL_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", FIRST_PAGE, str(ROOT / "app.py"), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    assert shown["info"] and "documents" in shown["info"][0]
    assert shown["loaded"] == []


def test_each_session_has_its_own_store_connection(open_app) -> None:  # type: ignore[no-untyped-def]
    first, second = open_app(), open_app()
    store = first.session_state[STORE_KEY][1]
    assert isinstance(store, Store)
    assert second.session_state[STORE_KEY][1] is not store  # sessions never share a connection
    first.sidebar.radio(key="nav").set_value("agreements").run()
    assert not first.exception
    assert first.session_state[STORE_KEY][1] is store  # reruns of a session reuse it


def test_shared_searcher_serves_one_query_at_a_time() -> None:
    """Sessions share one searcher (one model, one store connection): queries never overlap in it."""
    import threading
    import time

    class Probe:
        running = 0
        most = 0

        def search(self, query: str, k: int, filters: object) -> list[object]:
            Probe.running += 1
            Probe.most = max(Probe.most, Probe.running)
            time.sleep(0.01)
            Probe.running -= 1
            return []

    shared = SharedSearcher(Probe(), threading.Lock())  # type: ignore[arg-type]
    threads = [threading.Thread(target=shared.search, args=("q", 5, None)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Probe.most == 1
