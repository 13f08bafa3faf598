"""Concluded agreements per sentence, with parties, value, date, quantity and local content.

A sentence states an agreement when it names an instrument (trigger lexicon per type), says it
was concluded (signed, set up, awarded…) and carries no negation or modality cue (talks, plans,
"is expected to", a denial). Later sentences about the same instrument fill in fields the first
one lacked. Lexicons are data: ``models/agreements.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.dates import find_dates
from pipeline.errors import UsageError
from pipeline.nlp.money import find_money, find_percentages, parse_number
from pipeline.records import Agreement, Document, Mention, Money, Span
from pipeline.segment import sentences
from pipeline.textnorm import fold

_RELATIVE = {
    0: ("bugün", "bu gün", "today", "this morning"),
    1: ("dün", "dünən", "yesterday"),
}


@dataclass(frozen=True, slots=True)
class Lexicon:
    priority: tuple[str, ...]
    triggers: dict[str, tuple[str, ...]]
    concluded: tuple[str, ...]
    negation: tuple[str, ...]
    quantity: re.Pattern[str]
    local_cues: tuple[str, ...]
    ownership_cues: tuple[str, ...]


@lru_cache(maxsize=4)
def load_lexicon(models_dir: str) -> Lexicon:
    path = Path(models_dir) / "agreements.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read agreement patterns {path}: {exc}") from None
    units = sorted({fold(u) for u in data["quantity_units"]}, key=len, reverse=True)
    number = r"\d[\d.,]*(?:\s+(?:milyon|million|milyar|billion|bin|thousand|min|mln))?"
    quantity = re.compile(
        # Greedy: the furthest unit word within four words ("120 milyon adet fişek", "36 adet zırhlı araç").
        rf"(?<![\w.,]){number}\s+(?:[\w.,-]+\s+){{0,4}}(?:{'|'.join(map(re.escape, units))})\w*"
    )
    return Lexicon(
        priority=tuple(data["priority"]),
        triggers={k: tuple(fold(t) for t in v) for k, v in data["triggers"].items()},
        concluded=tuple(fold(c) for c in data["concluded"]),
        negation=tuple(fold(n) for n in data["negation"]),
        quantity=quantity,
        local_cues=tuple(fold(c) for c in data["local_content_cues"]),
        ownership_cues=tuple(fold(c) for c in data["ownership_cues"]),
    )


def _has(folded: str, cues: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![\w]){re.escape(c)}", folded) for c in cues)


def _type_of(folded: str, lex: Lexicon) -> str | None:
    for kind in lex.priority:
        if _has(folded, lex.triggers.get(kind, ())):
            return kind
    return None


def _weekdays() -> dict[str, int]:
    from babel.dates import get_day_names

    out: dict[str, int] = {}
    for locale in ("tr", "az", "en"):
        for num, name in get_day_names("wide", locale=locale).items():
            out[fold(name)] = int(num)
    return out


def _signed(sentence: str, published: date | None) -> str | None:
    hits = find_dates(sentence, default_year=published.year if published else None)
    if hits:
        return hits[0].value.isoformat()
    if published is None:
        return None
    folded = fold(sentence)
    for back, words in _RELATIVE.items():
        if any(re.search(rf"(?<![\w]){re.escape(fold(w))}(?![\w])", folded) for w in words):
            return (published - timedelta(days=back)).isoformat()
    for name, weekday in _weekdays().items():
        if re.search(rf"(?<![\w]){re.escape(name)}", folded):
            back = (published.weekday() - weekday) % 7
            return (published - timedelta(days=back)).isoformat()
    return None


def _local_content(sentence: str, lex: Lexicon) -> float | None:
    folded = fold(sentence)
    for start, end, value in find_percentages(sentence):
        window = folded[max(0, start - 70) : end + 70]
        if _has(window, lex.local_cues):
            return value
    return None


def _quantity(sentence: str, lex: Lexicon, money_spans: list[tuple[int, int]]) -> str | None:
    for m in lex.quantity.finditer(fold(sentence)):
        if any(m.start() < e and s < m.end() for s, e in money_spans):
            continue
        if parse_number(m.group(0).split()[0], "en", False) is None:
            continue
        return sentence[m.start() : m.end()]
    return None


def _parties(kind: str, mentions: list[Mention], countries: frozenset[str]) -> list[Mention]:
    orgs = [m for m in mentions if m.label == "ORG"]
    places = [m for m in mentions if m.entity_id in countries]
    chosen = orgs + places if kind == "export" or len(orgs) < 2 else orgs
    unique: dict[str, Mention] = {}
    for m in chosen:
        unique.setdefault(m.entity_id, m)
    return list(unique.values())


def extract_agreements(
    doc: Document, mentions: list[Mention], models_dir: str, countries: frozenset[str] = frozenset()
) -> list[Agreement]:
    lex = load_lexicon(models_dir)
    published = date.fromisoformat(doc.published) if doc.published else None
    body_start = len(doc.title) + 2 if doc.text.startswith(doc.title) else 0
    found: list[Agreement] = []
    for start, end in sentences(doc.text):
        if start < body_start:
            continue
        sentence = doc.text[start:end]
        folded = fold(sentence)
        kind = _type_of(folded, lex)
        if kind is None or _has(folded, lex.negation):
            continue
        money = find_money(sentence, doc.language)
        inside = [m for m in mentions if start <= m.start and m.end <= end]
        fields: dict[str, Any] = {
            "value": money[0].money if money else None,
            "signed": _signed(sentence, published),
            "quantity": _quantity(sentence, lex, [(m.start, m.end) for m in money]),
            "local_content_pct": _local_content(sentence, lex),
        }
        parties = _parties(kind, inside, countries)
        ids = tuple(p.entity_id for p in parties)
        previous = next(
            (a for a in found if a.type == kind and (set(a.party_ids) & set(ids) or not ids)), None
        )
        if previous is not None:
            # The same instrument again: fill what the first statement did not say.
            merged = {
                k: getattr(previous, k) if getattr(previous, k) is not None else v for k, v in fields.items()
            }
            found[found.index(previous)] = replace(previous, **merged)
            continue
        if not _has(folded, lex.concluded) or not parties:
            continue
        value: Money | None = fields["value"]
        found.append(
            Agreement(
                type=kind,
                parties=tuple(p.canonical for p in parties),
                party_ids=ids,
                evidence=Span(sentence, start, end),
                signed=fields["signed"],
                value=value,
                quantity=fields["quantity"],
                local_content_pct=fields["local_content_pct"],
            )
        )
    return found
