"""Dates written the local way in Turkish, Azerbaijani and English news.

Month names come from CLDR (babel), so every spelling a locale uses is covered, abbreviations
included. Formats: ``9 Nisan 2024``, ``5 fevral 2025-ci il``, ``2024-cü il 18 oktyabr``,
``2024-cü il oktyabrın 18-də``, ``October 8, 2024``, ``Mar 3, 2025``, ``20.02.2025``, ``2025-02-20``;
a day and month without a year (``3 Mart'ta``, ``fevralın 4-də``, ``February 4``) take the year of a
reference date. Month names must end the word or carry a case ending (``Martta``, ``oktyabrda``), so
``3 Marketing`` or ``5 Mayonez`` are no dates; abbreviations are only read with a year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal

from pipeline.textnorm import fold


@lru_cache(maxsize=1)
def month_table() -> dict[str, int]:
    """Folded month name or abbreviation → month number, for tr/az/en."""
    return {**_month_names("abbreviated"), **_month_names("wide")}


@lru_cache(maxsize=2)
def _month_names(width: Literal["abbreviated", "wide"]) -> dict[str, int]:
    from babel.dates import get_month_names

    table: dict[str, int] = {}
    for locale in ("tr", "az", "en"):
        for context in ("format", "stand-alone"):
            for num, name in get_month_names(width, context, locale=locale).items():
                key = fold(name).rstrip(".")
                if len(key) >= 3:
                    table[key] = int(num)
    if width == "abbreviated":
        table["sept"] = 9
    return table


def _alternation(names: set[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


# Case endings written straight onto a full month name (folded: ı→i, ə→e): Turkish "Martta",
# "Ekimde", "Haziran'dan" (the apostrophe form needs nothing), Azerbaijani "oktyabrda", "fevralın".
_MONTH_CASE = r"(?:inda|inde|unda|unde|indan|inden|nin|nun|tan|ten|dan|den|ta|te|da|de|in|un)"
# Azerbaijani ordinal and case endings after years and days: 2025-ci, 2024-cü, 18-i, 18-də.
_NUM_SFX = r"(?:\s*-\s*(?:inci|nci|ncu|ci|cu|i|u|de|da|nde|nda|si|su)\b)?"


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    full = set(_month_names("wide"))
    abbr = set(_month_names("abbreviated")) - full
    # A full name may carry a case ending; an abbreviation must end the word ("3 Mar", "3 Mar.",
    # never the "Mar" of "3 Marketing"), and so must a full name ("5 Mayonez" is no date).
    named = rf"(?:(?P<month>{_alternation(full)}){_MONTH_CASE}?|(?P<abbr>{_alternation(abbr)})\.?)(?!\w)"
    full_only = rf"(?P<month>{_alternation(full)}){_MONTH_CASE}?(?!\w)"
    genitive = rf"(?P<month>{_alternation(full)})(?:in|un|nin|nun)(?!\w)"
    year = r"(?P<year>(?:19|20)\d\d)"
    year_az = rf"{year}{_NUM_SFX}(?:\s+il(?:in|de|da)?)?"
    day = rf"(?P<day>\d{{1,2}}){_NUM_SFX}"
    return [
        # 2024-cü il 18 oktyabr · 2024-cü ildə 18 oktyabrda
        (re.compile(rf"\b{year_az},?\s+{day}\s+{full_only}"), "ydm"),
        # 2024-cü il oktyabrın 18-də (Azerbaijani genitive month)
        (re.compile(rf"\b{year_az},?\s+{genitive}\s+{day}"), "ymd"),
        # 9 Nisan 2024 · 5 fevral 2025-ci il · 8 October 2024 · 3 Mar. 2025
        (re.compile(rf"\b{day}\.?\s+{named},?\s+{year}\b"), "dmy"),
        # October 8, 2024 · Mar 3, 2025
        (re.compile(rf"\b{named}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+{year}\b"), "mdy"),
        (re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<mon>\d\d)-(?P<day>\d\d)(?!\d)"), "iso"),
        (re.compile(r"\b(?P<day>\d{1,2})[./](?P<mon>\d{1,2})[./](?P<year>(?:19|20)\d\d)\b"), "num"),
        # without a year, only full names: "3 Mart'ta", "fevralın 4-də", "4 February", "February 4"
        (re.compile(rf"\b{genitive}\s+(?P<day>\d{{1,2}})\s*-\s*(?:de|da|i|u|si|su|nde|nda)\b"), "gmd"),
        (re.compile(rf"\b{day}\s+{full_only}(?!\s*,?\s*\d)"), "dm"),
        (
            re.compile(
                rf"\b(?P<month>{_alternation(full)})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?![.,:]?\d)"
            ),
            "md",
        ),
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
            found.append(DateMatch(hit.start(), hit.end(), parsed, kind not in ("dm", "md", "gmd")))
    return sorted(found, key=lambda d: d.start)


def _to_date(hit: re.Match[str], kind: str, default_year: int | None) -> date | None:
    groups = hit.groupdict()
    name = groups.get("month") or groups.get("abbr")
    month = month_table().get(name) if name else int(groups["mon"])
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
