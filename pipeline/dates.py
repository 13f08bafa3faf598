"""Dates written the local way in Turkish, Azerbaijani and English news.

Month names come from CLDR (babel), so every spelling a locale uses is covered, abbreviations
included. Formats: ``9 Nisan 2024``, ``5 fevral 2025-ci il``, ``2024-cü il 18 oktyabr``,
``October 8, 2024``, ``Mar 3, 2025``, ``20.02.2025``, ``2025-02-20``; a day and month without a year
take the year of a reference date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from pipeline.textnorm import fold


@lru_cache(maxsize=1)
def month_table() -> dict[str, int]:
    """Folded month name or abbreviation → month number, for tr/az/en."""
    from babel.dates import get_month_names

    table: dict[str, int] = {}
    for locale in ("tr", "az", "en"):
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for num, name in get_month_names(width, context, locale=locale).items():
                    key = fold(name).rstrip(".")
                    if len(key) >= 3:
                        table[key] = int(num)
    table["sept"] = 9
    return table


def _month_alternation() -> str:
    names = sorted(month_table(), key=len, reverse=True)
    return "|".join(re.escape(n) for n in names)


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    m = rf"(?P<month>{_month_alternation()})\.?"
    # Azerbaijani ordinal suffixes after years/days: 2025-ci, 2024-cü, 18-i, 2023-cü ildə.
    sfx = r"(?:\s*-\s*(?:ci|cı|cu|cü|ci|i|ı|u|ü|nci|ncı|ncu|ncü|inci)\b)?"
    return [
        (
            re.compile(
                rf"\b(?P<year>(?:19|20)\d\d){sfx}(?:\s+il(?:in|də|de)?)?,?\s+(?P<day>\d{{1,2}}){sfx}\s+{m}"
            ),
            "ydm",
        ),
        (re.compile(rf"\b(?P<day>\d{{1,2}}){sfx}\.?\s+{m},?\s+(?P<year>(?:19|20)\d\d)\b"), "dmy"),
        (re.compile(rf"\b{m}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>(?:19|20)\d\d)\b"), "mdy"),
        (re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<mon>\d\d)-(?P<day>\d\d)(?!\d)"), "iso"),
        (re.compile(r"\b(?P<day>\d{1,2})[./](?P<mon>\d{1,2})[./](?P<year>(?:19|20)\d\d)\b"), "num"),
        (re.compile(rf"\b(?P<day>\d{{1,2}}){sfx}\s+{m}(?!\s*,?\s*\d)"), "dm"),
        # English "on February 27" (no year): a month name, then a day that no year follows.
        (re.compile(rf"\b{m}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*,?\s*\d)"), "md"),
    ]


@dataclass(frozen=True, slots=True)
class DateMatch:
    start: int
    end: int
    value: date
    has_year: bool


def find_dates(text: str, *, default_year: int | None = None) -> list[DateMatch]:
    """Every date written in ``text``, in order; a date without a year needs ``default_year``.

    Matching runs on a folded copy of the text that keeps character positions (folding is 1:1
    for the letters involved), so spans index the original string.
    """
    folded = fold(text)
    found: list[DateMatch] = []
    taken: list[tuple[int, int]] = []
    for pattern, kind in _patterns():
        for hit in pattern.finditer(folded):
            if any(hit.start() < e and s < hit.end() for s, e in taken):
                continue
            if kind == "md" and not text[hit.start()].isupper():
                continue  # English capitalises months; "may 12 units" is not a date
            parsed = _to_date(hit, kind, default_year)
            if parsed is None:
                continue
            taken.append((hit.start(), hit.end()))
            found.append(DateMatch(hit.start(), hit.end(), parsed, kind not in ("dm", "md")))
    return sorted(found, key=lambda d: d.start)


def _to_date(hit: re.Match[str], kind: str, default_year: int | None) -> date | None:
    groups = hit.groupdict()
    month = month_table().get(groups["month"].rstrip(".")) if groups.get("month") else int(groups["mon"])
    year = int(groups["year"]) if groups.get("year") else default_year
    if month is None or year is None:
        return None
    try:
        return date(year, month, int(groups["day"]))
    except ValueError:
        return None


def parse_date(text: str, *, default_year: int | None = None) -> date | None:
    """The first date in ``text``, or None."""
    hits = find_dates(text, default_year=default_year)
    return hits[0].value if hits else None
