"""The Streamlit page, run in-process with AppTest."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.config import Settings
from tests.conftest import ROOT


@pytest.fixture()
def app(
    ingested: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> AppTest:
    cfg = tmp_path_factory.mktemp("cfg") / "app.toml"
    cfg.write_text(
        f'data_dir = "{ingested.data_dir}"\n[index]\nembedder = "hashing"\n'
        f'[nlp]\nmodels_dir = "{ROOT / "models"}"\n'
    )
    monkeypatch.setenv("DEFINTEL_CONFIG", str(cfg))
    monkeypatch.delenv("DEFINTEL_DATA_DIR", raising=False)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def test_search_for_azersilah_shows_mke_mka_documents(app: AppTest) -> None:
    app.run()
    assert not app.exception
    app.text_input(key="query").input("Azersilah").run()
    assert not app.exception
    titles = [m.value for m in app.markdown]
    assert len(titles) >= 5
    assert any("MKA" in t or "MKE" in t for t in titles)


def test_language_filter(app: AppTest) -> None:
    app.run()
    app.text_input(key="query").input("cartridge line")
    app.multiselect(key="langs").set_value(["az"]).run()
    assert not app.exception
    assert app.caption and all(c.value.startswith("az ·") for c in app.caption if "·" in c.value)
