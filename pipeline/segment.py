"""Sentence segmentation shared by agreement extraction and chunking (spans index the text)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? … followed by space and an upper-case letter, a digit or a quote,
# or at a paragraph break. Abbreviations such as "A.Ş." or "Dr." are not sentence ends.
_ABBREV = re.compile(
    r"(?:\b(?:[A-ZÇĞİÖŞÜƏ]\.){1,3}|\b(?:Dr|Mr|Ms|Mrs|St|No|vs|etc|Prof|Gen|Col|Lt|bkz|vb|Ltd|Şti|Inc|Co|Corp|Jr|Sr|Doç|Av|Müh|Uzm|Yrd|Cav)\.)$"
)
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+(?=[\"'“‘(]?[A-ZÇĞİÖŞÜƏ0-9])|\n\s*\n")


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; spans index ``text`` and never include surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group(0).strip() == "" and "\n" not in m.group(0) and _ABBREV.search(text[start : m.start()]):
            continue
        _add(text, start, m.start(), spans)
        start = m.end()
    _add(text, start, len(text), spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
