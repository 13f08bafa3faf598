"""Amounts of money and percentages written the local way in Turkish, Azerbaijani and English.

``412 milyon dolarlık`` → 412000000 USD · ``23,4 milyon avroluk`` → 23400000 EUR ·
``1,2 milyar TL`` → 1200000000 TRY · ``78,6 milyon ABŞ dolları`` → 78600000 USD ·
``$48.5 million`` · ``€31.2m`` · ``USD 12 mln`` · ``1.250.000 dolar``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.records import Money

_NUM = r"\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_SCALE_WORDS = {
    "thousand": 1e3, "bin": 1e3, "min": 1e3, "k": 1e3,
    "million": 1e6, "milyon": 1e6, "mln": 1e6, "m": 1e6, "mn": 1e6,
    "billion": 1e9, "milyar": 1e9, "mlrd": 1e9, "bn": 1e9, "b": 1e9,
}  # fmt: skip
_SCALE = r"(?:thousand|million|billion|milyon\w*|milyar\w*|mlrd\.?|mln\.?|mn|bn|bin|min|m|b|k)(?![\w])"
_CUR_WORDS = [
    (r"abş\s+dollar\w*|abd\s+dolar\w*|amerikan\s+dolar\w*|us\s+dollar\w*|dolar\w*|dollar\w*|usd", "USD"),
    (r"avro\w*|euro\w*|eur", "EUR"),
    (r"türk\s+lira\w*|lira\w*|tl|try", "TRY"),
    (r"manat\w*|azn", "AZN"),
    (r"rubl\w*|ruble\w*|rub", "RUB"),
    (r"sterlin\w*|pound\w*|gbp", "GBP"),
]
_CUR_SYMBOLS = {"$": "USD", "us$": "USD", "€": "EUR", "₺": "TRY", "₼": "AZN", "£": "GBP"}
_CUR_WORD = "|".join(p for p, _ in _CUR_WORDS)
_SYMBOL = r"US\$|\$|€|₺|₼|£"
_CODE = r"USD|EUR|AZN|TRY|GBP|RUB"
_AFTER = re.compile(rf"(?P<num>{_NUM})\s*(?P<scale>{_SCALE})?\s*(?P<cur>{_CUR_WORD})(?![\w])", re.IGNORECASE)
_BEFORE = re.compile(
    rf"(?P<cur>{_SYMBOL}|(?<![\w])(?:{_CODE}))\s?(?P<num>{_NUM})\s*(?P<scale>{_SCALE})?", re.IGNORECASE
)
# "11 milyon 950 bin 760 dolarlık": an amount spelled as a chain of scaled parts, summed.
_CHAIN = re.compile(
    rf"(?P<num>(?:\d+(?:[.,]\d+)?\s+(?:milyar|milyon|bin|min|billion|million|thousand)\s+){{2,3}}\d*)"
    rf"\s*(?P<cur>{_CUR_WORD})(?![\w])",
    re.IGNORECASE,
)
_CHAIN_PART = re.compile(
    r"(\d+(?:[.,]\d+)?)\s+(milyar|milyon|bin|min|billion|million|thousand)|(\d+)\s*$", re.I
)
_PERCENT = re.compile(
    r"(?:%\s?(?P<a>\d+(?:[.,]\d+)?)|(?P<b>\d+(?:[.,]\d+)?)\s?(?:%|per\s?cent|percent|faiz))"
)
_PERCENT_TR = re.compile(r"yüzde\s+(?P<c>\d+(?:[.,]\d+)?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MoneyMatch:
    start: int
    end: int
    money: Money


def parse_number(raw: str, language: str, has_scale: bool) -> float | None:
    """A number in local format: ``23,4`` (tr/az decimal comma), ``1.250.000``, ``48.5``, ``1,250,000``."""
    s = raw.replace(" ", "").replace("\u00a0", "")
    if "," in s and "." in s:
        dec = "," if s.rfind(",") > s.rfind(".") else "."
        s = s.replace("." if dec == "," else ",", "").replace(dec, ".")
    elif "," in s or "." in s:
        sep = "," if "," in s else "."
        parts = s.split(sep)
        thousands = len(parts) > 2 or (len(parts[-1]) == 3 and not has_scale)
        if sep == "," and language in ("tr", "az") and len(parts) == 2 and has_scale:
            thousands = False
        if sep == "," and language == "en" and len(parts[-1]) == 3 and len(parts) >= 2 and not has_scale:
            thousands = True
        s = s.replace(sep, "") if thousands else s.replace(sep, ".")
    try:
        return float(s)
    except ValueError:
        return None


def _scale(word: str | None) -> float:
    if not word:
        return 1.0
    w = word.lower().rstrip(".")
    for key in ("milyon", "milyar"):
        if w.startswith(key):
            return _SCALE_WORDS[key]
    return _SCALE_WORDS.get(w, 1.0)


def _currency(token: str) -> str | None:
    t = token.lower()
    if t in _CUR_SYMBOLS:
        return _CUR_SYMBOLS[t]
    for pattern, code in _CUR_WORDS:
        if re.fullmatch(pattern, t):
            return code
    return None


def find_money(text: str, language: str) -> list[MoneyMatch]:
    """Every amount with a currency in ``text``, in order, non-overlapping."""
    found: list[MoneyMatch] = []
    for m in _CHAIN.finditer(text):
        currency = _currency(m.group("cur"))
        total = 0.0
        for part in _CHAIN_PART.finditer(m.group("num")):
            raw, word, units = part.groups()
            number = parse_number(raw or units, language, bool(word))
            total += (number or 0.0) * (_scale(word) if word else 1.0)
        if currency is not None and total:
            found.append(MoneyMatch(m.start(), m.end(), Money(round(total, 2), currency)))
    for pattern in (_BEFORE, _AFTER):
        for m in pattern.finditer(text):
            if any(m.start() < f.end and f.start < m.end() for f in found):
                continue
            scale_word = m.group("scale")
            if scale_word and scale_word.lower() in ("m", "b", "k") and pattern is _AFTER:
                continue  # "5 m dollars" is rare; "m" after a number usually means metres
            number = parse_number(m.group("num"), language, bool(scale_word))
            currency = _currency(m.group("cur"))
            if number is None or currency is None:
                continue
            amount = round(number * _scale(scale_word), 2)
            found.append(MoneyMatch(m.start(), m.end(), Money(amount, currency)))
    return sorted(found, key=lambda f: f.start)


def find_percentages(text: str) -> list[tuple[int, int, float]]:
    """(start, end, value) of each percentage: ``%60``, ``55%``, ``yüzde 55``, ``40 faiz``, ``45 per cent``."""
    out = []
    for pattern in (_PERCENT, _PERCENT_TR):
        for m in pattern.finditer(text):
            raw = next(g for g in m.groups() if g)
            out.append((m.start(), m.end(), float(raw.replace(",", "."))))
    return sorted(out)
