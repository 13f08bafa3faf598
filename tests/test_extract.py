"""Extraction against the hand-written gold of the bundled pages, and refusal of non-HTML input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.errors import DocumentError
from pipeline.extract import clean_author, decode_html, extract
from pipeline.records import Page
from tests.conftest import CORPUS

GOLD = sorted((CORPUS / "gold").glob("*.json"))


@pytest.mark.parametrize("gold_path", GOLD, ids=[p.stem for p in GOLD])
def test_metadata_matches_gold(gold_path: Path) -> None:
    gold = json.loads(gold_path.read_text(encoding="utf-8"))
    page = CORPUS / gold["file"]
    doc = extract(Page(url=page.resolve().as_uri(), html=decode_html(page.read_bytes()), source=str(page)))
    assert doc.url == gold["url"]
    assert (doc.language, doc.title, doc.published, doc.author) == (
        gold["language"],
        gold["title"],
        gold["published"],
        gold["author"],
    )
    assert doc.text.startswith(doc.title + "\n\n")
    for ent in gold["entities"]:
        assert any(name in doc.text for name in ent["names"]), ent


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Haber: Selin Karabulut | AA", "Selin Karabulut"),
        ("Müəllif: Rauf Səfərli Mənbə: APA", "Rauf Səfərli"),
        ("By Daniel Whitcombe with AFP", "Daniel Whitcombe"),
        ("Muhabir: Orhan Yeşiltepe", "Orhan Yeşiltepe"),
        ("AA", None),
    ],
)
def test_byline_cleaning(raw: str, name: str | None) -> None:
    assert clean_author(raw) == name


def test_charset_only_in_meta_is_honoured() -> None:
    html = '<html><head><meta charset="windows-1254"><title>t</title></head><body>Ağ şığ</body></html>'
    assert "Ağ şığ" in decode_html(html.encode("cp1254"))


@pytest.mark.parametrize("data", [b"", b"   \n", os.urandom(2048), b"\x00\x01\x02<html>"])
def test_empty_or_binary_input_is_refused(data: bytes) -> None:
    with pytest.raises(DocumentError):
        decode_html(data)


def test_page_without_article_text_is_refused() -> None:
    with pytest.raises(DocumentError, match="no main text"):
        extract(Page(url="https://x.example/", html="<html><body><nav>Home</nav></body></html>"))
