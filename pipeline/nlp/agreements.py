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
from pipeline.records import Agreement, Document, Mention, Span
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
    same_day: tuple[str, ...]
    subjects: tuple[tuple[str, tuple[str, ...]], ...]
    pending_cues: tuple[str, ...]
    last_week: tuple[str, ...]
    reference_nouns: tuple[tuple[str, ...], ...]
    separate: tuple[str, ...]
    counters: tuple[str, ...]


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
        same_day=tuple(fold(c) for c in data["same_day"]),
        subjects=tuple((phrase, tuple(fold(c) for c in cues)) for phrase, cues in data["subjects"].items()),
        pending_cues=tuple(fold(c) for c in data["pending_cues"]),
        last_week=tuple(fold(c) for c in data["last_week"]),
        reference_nouns=tuple(tuple(fold(c) for c in v) for v in data["reference_nouns"].values()),
        separate=tuple(fold(c) for c in data["separate_cues"]),
        counters=tuple(fold(c) for c in data["counter_words"]),
    )


@lru_cache(maxsize=256)
def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled alternation per cue list: each cue matches at a word start."""
    return re.compile(rf"(?<![\w])(?:{'|'.join(re.escape(c) for c in cues) or '(?!)'})")


def _has(folded: str, cues: tuple[str, ...]) -> bool:
    return _cue_pattern(cues).search(folded) is not None


GENERIC = ("contract", "other")


def _first_pos(folded: str, cues: tuple[str, ...]) -> int | None:
    m = _cue_pattern(cues).search(folded)
    return None if m is None else m.start()


def _type_of(folded: str, lex: Lexicon) -> tuple[str | None, bool]:
    """(type, specific): the earliest specific instrument named in the sentence ("signed a memorandum
    … on training" is an MoU), else contract, else other. Generic words (agreement, saziş) often
    refer back to an instrument named earlier."""
    best: tuple[int, str] | None = None
    for kind in lex.priority:
        if kind in GENERIC:
            continue
        pos = _first_pos(folded, lex.triggers.get(kind, ()))
        if pos is not None and (best is None or pos < best[0]):
            best = (pos, kind)
    if best is not None:
        return best[1], True
    for kind in GENERIC:
        if _has(folded, lex.triggers.get(kind, ())):
            return kind, False
    return None, False


def _weekdays() -> dict[str, int]:
    from babel.dates import get_day_names

    out: dict[str, int] = {}
    for locale in ("tr", "az", "en"):
        for num, name in get_day_names("wide", locale=locale).items():
            out[fold(name)] = int(num)
    return out


def _signed(sentence: str, published: date | None, lex: Lexicon) -> str | None:
    hits = find_dates(sentence, default_year=published.year if published else None)
    if hits:
        day = hits[0].value
        if not hits[0].has_year and published is not None and day > published:
            day = day.replace(year=day.year - 1)  # "signed on 28 December" in a January article
        return day.isoformat()
    if published is None:
        return None
    folded = fold(sentence)
    for back, words in _RELATIVE.items():
        if any(re.search(rf"(?<![\w]){re.escape(fold(w))}(?![\w])", folded) for w in words):
            return (published - timedelta(days=back)).isoformat()
    last_week = _first_pos(folded, lex.last_week)
    for name, weekday in _weekdays().items():
        m = re.search(rf"(?<![\w]){re.escape(name)}", folded)
        if m is None:
            continue
        if last_week is not None:
            if not 0 <= m.start() - last_week <= 30:
                continue  # "signed last week, the company said on Tuesday": Tuesday is not the signing
            monday = published - timedelta(days=published.weekday())
            return (monday - timedelta(days=7 - weekday)).isoformat()
        back = (published.weekday() - weekday) % 7
        return (published - timedelta(days=back)).isoformat()
    return None  # "last week" alone names no day


def _local_content(sentence: str, lex: Lexicon) -> float | None:
    folded = fold(sentence)
    for start, end, value in find_percentages(sentence):
        window = folded[max(0, start - 70) : end + 70]
        if _has(window, lex.local_cues):
            return value
    return None


_MEASURE = re.compile(r"(?<![\w])(?:mm|cm|km|kg|millimet\w*|milimet\w*|calibre|caliber|çaplı\w*)(?![\w])")


def _quantity(sentence: str, lex: Lexicon, taken: list[tuple[int, int]]) -> str | None:
    """The verbatim "how many" phrase; amounts of money, dates and calibres ("12,7 mm") are not quantities."""
    for m in lex.quantity.finditer(fold(sentence)):
        if any(m.start() < e and s < m.end() for s, e in taken) or _MEASURE.search(m.group(0)):
            continue
        if parse_number(m.group(0).split()[0], "en", False) is None:
            continue
        return sentence[m.start() : m.end()]
    return None


def _parties(mentions: list[Mention], countries: frozenset[str]) -> list[Mention]:
    orgs = [m for m in mentions if m.label == "ORG"]
    places = [m for m in mentions if m.entity_id in countries]
    # A country is a party when no organisation stands for it (an export "to Azerbaijan"); a lone
    # country with no organisation is a place name, not the sides of a deal.
    if not orgs and len({p.entity_id for p in places}) < 2:
        return []
    chosen = orgs + places if len(orgs) < 2 else orgs
    unique: dict[str, Mention] = {}
    for m in chosen:
        unique.setdefault(m.entity_id, m)
    return list(unique.values())


def _blank(sentence: str, offset: int, mentions: list[Mention]) -> str:
    """The sentence with entity names blanked out (same length), to read only its own words."""
    chars = list(sentence)
    for m in mentions:
        chars[m.start - offset : m.end - offset] = " " * (m.end - m.start)
    return "".join(chars)


def _attach_details(last: Agreement, sentence: str, lex: Lexicon) -> Agreement:
    """A sentence naming no instrument after a signing can still state its local content or its
    counted quantity ("Yılda 120 milyon adet fişek üretilecek")."""
    if last.local_content_pct is None:
        lc = _local_content(sentence, lex)
        if lc is not None:
            last = replace(last, local_content_pct=lc)
    if last.quantity is None:
        q = _quantity(sentence, lex, [(d.start, d.end) for d in find_dates(sentence, default_year=2000)])
        if q is not None and _has(fold(q), lex.counters):
            last = replace(last, quantity=q)
    return last


def _reference(folded: str, lex: Lexicon) -> tuple[str, ...]:
    """The kind of organisation a sentence points at without naming it ("the ministry will pay")."""
    for nouns in lex.reference_nouns:
        if _has(folded, nouns):
            return nouns
    return ()


def _salient_org(mentions: list[Mention], exclude: set[str], noun: tuple[str, ...] = ()) -> Mention | None:
    """The organisation the article talks about most (of the kind the sentence refers to, if any)."""
    counts: dict[str, int] = {}
    first: dict[str, Mention] = {}
    for m in mentions:
        if m.label == "ORG" and m.entity_id not in exclude:
            counts[m.entity_id] = counts.get(m.entity_id, 0) + 1
            first.setdefault(m.entity_id, m)
    if noun:
        fitting = {
            k: v
            for k, v in counts.items()
            if any(n in fold(first[k].canonical + " " + first[k].text) for n in noun)
        }
        counts = fitting or counts
    if not counts:
        return None
    return first[max(counts, key=lambda k: (counts[k], -first[k].start))]


def _stated(a: Agreement) -> int:
    """How much a statement says; the signing date weighs most (the evidence is the signing sentence)."""
    return 2 * (a.signed is not None) + sum(x is not None for x in (a.value, a.quantity, a.local_content_pct))


def _conflicts(a: Agreement, b: Agreement) -> bool:
    """Two statements with different amounts or signing dates are two instruments."""
    return (a.value is not None and b.value is not None and a.value != b.value) or (
        a.signed is not None and b.signed is not None and a.signed != b.signed
    )


def _same_instrument(
    found: list[Agreement], candidate: Agreement, specific: bool, countries: frozenset[str]
) -> int | None:
    """Index of an earlier agreement this sentence talks about again, if any (most recent first).

    Same type (or a generic word such as "the contract"), organisations that are a subset or a
    superset of the earlier ones, and no conflicting amount or date: "Otokar signed an export
    contract with Azerbaijan" followed by "the contract with Azerbaijan's Ministry of Defence…" is
    one instrument."""
    orgs = {i for i in candidate.party_ids if i not in countries}
    for i in range(len(found) - 1, -1, -1):
        a = found[i]
        prev = {p for p in a.party_ids if p not in countries}
        if _conflicts(a, candidate):
            continue
        if (a.type == candidate.type or not specific) and (orgs <= prev or (prev and prev <= orgs)):
            return i
        if not specific and len(prev) < 2 and orgs:
            return i  # "The contract, signed with the ministry…" names the other side of the one before
    return None


def _merge(old: Agreement, new: Agreement, concluded: bool, countries: frozenset[str]) -> Agreement:
    """Fill what the first statement did not say; keep the more specific parties; the evidence is
    the concluding sentence that states the most about the instrument."""
    merged = replace(
        old,
        **{
            k: getattr(old, k) if getattr(old, k) is not None else getattr(new, k)
            for k in ("signed", "value", "quantity", "local_content_pct", "subject")
        },
    )
    pairs = dict(zip(old.party_ids, old.parties, strict=True)) | dict(
        zip(new.party_ids, new.parties, strict=True)
    )
    if sum(1 for i in pairs if i not in countries) >= 2:
        pairs = {i: n for i, n in pairs.items() if i not in countries} or pairs
    merged = replace(merged, party_ids=tuple(pairs), parties=tuple(pairs.values()))
    if concluded and _stated(new) > _stated(old):
        merged = replace(merged, evidence=new.evidence)
    return merged


def extract_agreements(
    doc: Document, mentions: list[Mention], models_dir: str, countries: frozenset[str] = frozenset()
) -> list[Agreement]:
    lex = load_lexicon(models_dir)
    published = date.fromisoformat(doc.published) if doc.published else None
    body_start = len(doc.title) + 2 if doc.text.startswith(doc.title) else 0
    found: list[Agreement] = []
    pending: Agreement | None = None  # concluded, but its parties are only "the sides" so far
    for start, end in sentences(doc.text):
        if start < body_start:
            continue
        sentence = doc.text[start:end]
        folded = fold(sentence)
        kind, specific = _type_of(folded, lex)
        if kind == "other" and _subject(folded, lex) == "training":
            kind = "training"  # "the protocol under which 250 officers will be trained"
        if kind is None:
            # "Local content will reach 40%" after the signing sentence belongs to that agreement.
            if found:
                found[-1] = _attach_details(found[-1], sentence, lex)
            continue
        concluded = _has(folded, lex.concluded)
        if _has(folded, lex.negation) or (not concluded and _has(folded, lex.pending_cues)):
            continue
        money = find_money(sentence, doc.language)
        signed = _signed(sentence, published, lex)
        if signed is None and found and _has(folded, lex.same_day):
            signed = found[-1].signed
        parties = _parties([m for m in mentions if start <= m.start and m.end <= end], countries)
        candidate = Agreement(
            type=kind,
            parties=tuple(p.canonical for p in parties),
            party_ids=tuple(p.entity_id for p in parties),
            evidence=Span(sentence, start, end),
            signed=signed,
            value=money[0].money if money else None,
            quantity=_quantity(
                sentence,
                lex,
                [(m.start, m.end) for m in money]
                + [(d.start, d.end) for d in find_dates(sentence, default_year=2000)],
            ),
            local_content_pct=_local_content(sentence, lex),
            subject=_subject(folded, lex),
        )
        if pending is not None and parties and (not specific or kind == pending.type):
            found.append(_merge(pending, candidate, False, countries))
            pending = None
            continue
        separate = _has(folded, lex.separate)
        previous = (
            _same_instrument(found, candidate, specific, countries)
            if (parties or not concluded) and not separate
            else None
        )
        if previous is not None:
            found[previous] = _merge(found[previous], candidate, concluded, countries)
            continue
        if not concluded:
            continue
        if not parties:
            same = next(
                (
                    i
                    for i in range(len(found) - 1, -1, -1)
                    if found[i].type == kind and not _conflicts(found[i], candidate)
                ),
                None,
            )
            if separate:
                same = None
            if same is not None:  # "the memorandum was signed on 24 June": the one named before
                found[same] = _merge(found[same], candidate, concluded, countries)
            else:
                pending = candidate
            continue
        if len(parties) < 2:
            outside = fold(
                _blank(sentence, start, [m for m in mentions if start <= m.start and m.end <= end])
            )
            extra = _salient_org(mentions, set(candidate.party_ids), _reference(outside, lex))
            if extra is not None:
                candidate = replace(
                    candidate,
                    parties=(*candidate.parties, extra.canonical),
                    party_ids=(*candidate.party_ids, extra.entity_id),
                )
        found.append(candidate)
    if pending is not None and found:
        # Nobody named the sides again: they are the ones of the instrument signed just before.
        found.append(replace(pending, parties=found[-1].parties, party_ids=found[-1].party_ids))
    return found


def _subject(folded: str, lex: Lexicon) -> str | None:
    for phrase, cues in lex.subjects:
        if _has(folded, cues):
            return phrase
    return None
