"""Text normalisation shared by matching, linking, search and scoring.

``fold`` keeps the string's length (one character in, one out), so a match found in the folded
text has the same offsets in the original. ``normalize`` is the comparison key of SCORING.md:
casefold, ı→i, ə→e, diacritics stripped, quotes and dashes unified, whitespace collapsed.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_QUOTES = {"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"'}
_DASHES = {"–": "-", "—": "-", "‑": "-", "‒": "-", "−": "-"}


@lru_cache(maxsize=4096)
def fold_char(ch: str) -> str:
    """One character → one lower-case ASCII-ish character (Turkish-aware: I/İ/ı → i, ə → e)."""
    if ch in "Iİı":
        return "i"
    if ch in "Əə":
        return "e"
    if ch in _QUOTES:
        return _QUOTES[ch]
    if ch in _DASHES:
        return "-"
    low = ch.lower()
    if len(low) != 1:
        return ch
    base = "".join(c for c in unicodedata.normalize("NFKD", low) if not unicodedata.combining(c))
    return base if len(base) == 1 else low


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds each code point on first sight and keeps the answer."""

    def __missing__(self, code: int) -> str:
        folded = fold_char(chr(code))
        self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Length-preserving fold for matching with exact offsets (C-speed: a ``str.translate`` table)."""
    return text.translate(_FOLD_TABLE)


def normalize(text: str) -> str:
    """Comparison key: folded and whitespace-collapsed."""
    return " ".join(fold(text).split())
