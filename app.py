"""defintel analyst app (Streamlit). Thin: every query goes through the ``pipeline`` library.

Run with ``defintel app`` or ``streamlit run app.py``; the data dir comes from
``DEFINTEL_DATA_DIR`` (default ./data) and an optional ``DEFINTEL_CONFIG`` TOML file.
Crawled text is untrusted: it is only ever rendered as plain text, never as HTML.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from pipeline.config import Settings, load_settings
from pipeline.errors import DefintelError
from pipeline.index.search import Filters, Searcher
from pipeline.store import Store

LANGS = {"tr": "Türkçe", "az": "Azərbaycanca", "en": "English"}


@st.cache_resource(show_spinner=False)
def _settings() -> Settings:
    return load_settings(os.environ.get("DEFINTEL_CONFIG") or None)


@st.cache_resource(show_spinner="Loading the index…")
def _searcher(data_dir: str) -> Searcher:
    settings = _settings()
    return Searcher(settings, Store(settings.data_path, readonly=True))


def _card(hit: dict[str, Any]) -> None:
    with st.container(border=True):
        st.markdown(f"**{_md_escape(hit['title'])}**")
        st.caption(f"{hit['language']} · {hit['published'] or 'undated'} · {hit['url']}")
        st.text(hit["snippet"])


def _md_escape(text: str) -> str:
    """Markdown-escape untrusted text so it renders literally (Streamlit never renders its HTML)."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>~" else c for c in text)


def main() -> None:
    st.set_page_config(page_title="defintel", layout="wide")
    st.title("defintel")
    st.caption(
        "Türkiye–Azerbaijan defence-industry cooperation: search news in Turkish, Azerbaijani and English"
    )
    settings = _settings()
    try:
        searcher = _searcher(settings.data_dir)
    except DefintelError as exc:
        st.error(str(exc))
        return
    query = st.text_input("Search in any language", key="query", placeholder="e.g. Azersilah cartridge line")
    langs = st.multiselect("Languages", list(LANGS), format_func=lambda c: LANGS[c], key="langs")
    k = st.slider("Results", 1, 30, settings.app.page_size, key="k")
    if not query.strip():
        st.info(f"{len({c['doc_id'] for c in searcher.chunks})} documents indexed. Type a query to search.")
        return
    with st.spinner("Searching…"):
        hits = searcher.search(query, k=k, filters=Filters(languages=tuple(langs)))
    st.subheader(f"{len(hits)} result{'s' if len(hits) != 1 else ''}")
    for hit in hits:
        _card(hit.as_json())


main()
