"""The app's Watchlists page (AppTest): create a list, what is new since the last visit with the
evidence sentence and a link to the document page, crawled text escaped, "mark all as seen"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.watch import save_watchlist
from tests.conftest import ROOT, make_settings

EVIL = "<script>alert('x')</script>"


@pytest.fixture()
def data(ingested: Settings, tmp_path: Path) -> Settings:
    """A copy of the ingested corpus with one title made hostile, and a watchlist whose last visit
    was before the corpus was stored."""
    shutil.copytree(ingested.data_path, tmp_path / "data")
    settings = make_settings(tmp_path / "data")
    store = Store(settings.data_path)
    try:
        doc = store.db.execute(
            "SELECT doc_id FROM mentions WHERE entity_id = 'azersilah' ORDER BY doc_id LIMIT 1"
        ).fetchone()[0]
        store.db.execute("UPDATE documents SET title = ? WHERE doc_id = ?", (EVIL + " Azersilah", doc))
        save_watchlist(store, settings, "caspian", ["Azərsilah"], [], ["contract"])
        store.set_visit_mark("caspian", 0)
    finally:
        store.close()
    return settings


def _app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings) -> AppTest:
    cfg = tmp_path / "app.toml"
    cfg.write_text(
        f'data_dir = "{settings.data_dir}"\n[index]\nembedder = "hashing"\n[nlp]\nmodels_dir = "{ROOT / "models"}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DEFINTEL_CONFIG", str(cfg))
    monkeypatch.delenv("DEFINTEL_DATA_DIR", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["page"] = "watch"
    return at


def test_watchlists_page(data: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _app(monkeypatch, tmp_path, data)
    at.run()
    assert not at.exception, at.exception
    cards = [
        m.value
        for m in at.markdown
        if "?page=document&amp;doc=" in m.value or "?page=document&doc=" in m.value
    ]
    assert cards, [m.value[:80] for m in at.markdown]
    joined = "".join(cards)
    assert "entity:Azersilah" in joined and "background:#fff3b0" in joined  # why + evidence sentence
    assert EVIL not in joined and "&lt;script&gt;" in joined
    assert any("New since your last visit" in s.value for s in at.subheader)

    at.button(key="watch_seen").click().run()
    assert not at.exception, at.exception
    assert any("Nothing new since your last visit" in c.value for c in at.caption)

    # A new list from the form; a bad entity is a message, not a crash.
    at.selectbox(key="watch_pick").set_value("➕ New list").run()
    at.text_input(key="watch_name").input("ships")
    at.text_area(key="watch_entities").input("Nosuchcompanyatall")
    at.button(key="FormSubmitter:watch_form-Save").click().run()
    assert not at.exception and any("unknown entity" in e.value for e in at.error)
    at.text_area(key="watch_entities").input("Roketsan")
    at.text_area(key="watch_queries").input("unmanned surface vessel")
    at.button(key="FormSubmitter:watch_form-Save").click().run()
    assert not at.exception, at.exception
    store = Store(data.data_path, readonly=True)
    try:
        row = store.watchlist("ships")
    finally:
        store.close()
    assert row is not None and row["queries"] == ["unmanned surface vessel"]
    assert row["entities"][0]["ids"] == ["roketsan"]
