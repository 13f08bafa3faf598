"""Deals: the agreements several documents report (languages, outlets, republications, follow-ups)
consolidated into one record each, with every report as a source and disagreeing values kept.

Matching is a score over pairs of stored agreements, then average-linkage clustering:

* hard limits: never two agreements of one document (a page that states two instruments between
  the same parties — a contract and its training protocol, two MoUs of one day — states two deals);
  compatible types only; the parties must overlap; signing dates at most ``SIGNED_WINDOW_DAYS``
  apart; a report cannot be published well before the other's signing date.
* signals, added up: party overlap, same type, same signing date, publication dates close
  together, equal value / quantity / local content (disagreeing ones subtract a little — two outlets
  often disagree on a figure, and the deal keeps both), a republication link between the two
  documents, and the similarity of the evidence sentences in the embedder the index uses (e5 is
  cross-lingual; the lexical ``hashing`` test embedder helps within a language only, so the
  similarity is one bounded signal among several, scaled per embedder).

Pairs are merged best first; two groups merge when no hard limit is broken between any of their
reports and their average pair score reaches ``THRESHOLD`` (so one strong pair cannot chain two
different deals together). The benchmark is ``benchmarks/deals_bench.py``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt

from pipeline.linkage import average_linkage
from pipeline.records import Conflict, ConflictValue, Deal, Money, StoredAgreement, sha1

if TYPE_CHECKING:
    from pipeline.backend.deal_queries import DealStoryQueries

SIGNED_WINDOW_DAYS = 7
# A report published this many days before the other report's signing date is of another instrument.
EARLY_SLACK_DAYS = 3
PUBLISHED_CLOSE_DAYS = 3
THRESHOLD = 2.0

# Types one outlet may call what another calls by the other name (an export contract, a licence
# that transfers technology); "other" is what the extractor says when it cannot tell, except for
# training protocols and memoranda, which outlets name as such.
_COMPATIBLE = {
    frozenset({"contract", "export"}),
    frozenset({"licence_production", "technology_transfer"}),
}
_NOT_OTHER = frozenset({"training", "mou"})

# Evidence similarity: cosine below ``lo`` adds nothing, at ``hi`` and above the full weight.
# multilingual-e5 puts unrelated sentences of one domain near 0.8; hashing near 0.
SIMILARITY_SCALE: dict[str, tuple[float, float]] = {"e5-small": (0.84, 0.93), "hashing": (0.25, 0.75)}
DEFAULT_SCALE = (0.5, 0.9)

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")
_NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")
_MULTIPLIERS = {
    "million": 1e6,
    "milyon": 1e6,
    "mln": 1e6,
    "milyonluk": 1e6,
    "billion": 1e9,
    "milyar": 1e9,
    "milyard": 1e9,
    "bin": 1e3,
    "min": 1e3,
    "thousand": 1e3,
}


def compatible_types(a: str, b: str) -> bool:
    if a == b or frozenset({a, b}) in _COMPATIBLE:
        return True
    other, kind = (a, b) if a == "other" else (b, a)
    return other == "other" and kind not in _NOT_OTHER


@functools.lru_cache(maxsize=65536)
def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _days_apart(a: str | None, b: str | None) -> int | None:
    da, db = _day(a), _day(b)
    return None if da is None or db is None else abs((da - db).days)


@functools.lru_cache(maxsize=65536)
def quantity_number(phrase: str | None) -> float | None:
    """The number a quantity phrase states (``120 milyon adet fişek`` → 120e6), any language."""
    if not phrase:
        return None
    m = _NUMBER.search(phrase)
    if m is None:
        return None
    raw = re.sub(r"\s", "", m.group(0))
    # 1.200 / 1,200 are thousands; 7,62 / 5.56 decimals (two digits after the mark).
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", raw):
        number = float(re.sub(r"[.,]", "", raw))
    else:
        number = float(raw.replace(",", "."))
    rest = phrase[m.end() :].split()
    if rest and rest[0].casefold().strip(".,") in _MULTIPLIERS:
        number *= _MULTIPLIERS[rest[0].casefold().strip(".,")]
    return number


def same_value(a: Money, b: Money) -> bool:
    return a.currency == b.currency and abs(a.amount - b.amount) <= 0.005 * max(a.amount, b.amount)


def similarity_bonus(cosine: float, embedder: str) -> float:
    lo, hi = SIMILARITY_SCALE.get(embedder, DEFAULT_SCALE)
    return float(min(1.0, max(0.0, (cosine - lo) / (hi - lo))))


def republication_root(doc_id: str, duplicate_of: dict[str, str | None]) -> str:
    """The original a document republishes, following ``duplicate_of`` links (cycles stop)."""
    seen = {doc_id}
    while (nxt := duplicate_of.get(doc_id)) and nxt not in seen:
        seen.add(nxt)
        doc_id = nxt
    return doc_id


@dataclass(frozen=True, slots=True)
class PairContext:
    """What pair scoring knows beyond the two agreements."""

    republished: bool = False  # one document republishes the other (or both the same original)
    similarity: float = 0.0  # the evidence similarity bonus, 0..1


def pair_score(a: StoredAgreement, b: StoredAgreement, ctx: PairContext) -> float | None:
    """How strongly two agreements look like reports of one deal; None: they cannot be."""
    if a.doc_id == b.doc_id or not compatible_types(a.type, b.type):
        return None
    pa, pb = set(a.party_ids), set(b.party_ids)
    shared = pa & pb
    if not shared:
        return None
    apart = _days_apart(a.signed, b.signed)
    if apart is not None and apart > SIGNED_WINDOW_DAYS:
        return None
    for x, y in ((a, b), (b, a)):
        sx, py = _day(x.signed), _day(y.published)
        if sx is not None and py is not None and (sx - py).days > EARLY_SLACK_DAYS:
            return None
    # Parties, type and wording alone do not make two reports one deal: at least one stated fact
    # (signing date, value, quantity, local content), a republication or reporting days apart must agree.
    concrete = ctx.republished
    score = len(shared) / len(pa | pb)
    if pa <= pb or pb <= pa:
        score = max(score, 0.75)
    score += 0.5 if a.type == b.type else 0.0
    if apart is not None:
        # One day apart: time zones, "yesterday"; more: outlets rarely misdate a signing, so two
        # dates that far apart need the other signals to outweigh them.
        score += 1.0 if apart == 0 else 0.5 if apart == 1 else -0.5
        concrete |= apart <= 1
    published = _days_apart(a.published, b.published)
    if published is not None and published <= PUBLISHED_CLOSE_DAYS:
        score += 0.5
        concrete = True
    if a.value is not None and b.value is not None:
        score += 1.0 if same_value(a.value, b.value) else -0.5
        concrete |= same_value(a.value, b.value)
    qa, qb = quantity_number(a.quantity), quantity_number(b.quantity)
    if qa is not None and qb is not None:
        score += 0.5 if qa == qb else -0.25
        concrete |= qa == qb
    if a.local_content_pct is not None and b.local_content_pct is not None:
        score += 0.5 if a.local_content_pct == b.local_content_pct else -0.25
        concrete |= a.local_content_pct == b.local_content_pct
    if ctx.republished:
        score += 2.0
    score += ctx.similarity
    return score if concrete else min(score, THRESHOLD - 0.25)


def cluster_agreements(
    agreements: Sequence[StoredAgreement],
    vectors: dict[str, Vectors],
    embedder: str,
) -> list[list[StoredAgreement]]:
    """Group agreements into deals (see the module docstring). Deterministic for a given input."""
    items = sorted(agreements, key=lambda a: a.agreement_id)
    dup = {a.doc_id: a.duplicate_of for a in items}
    roots = [republication_root(a.doc_id, dup) for a in items]
    # Evidence similarities as one matrix product; row of each item (-1: no vector).
    row = [-1] * len(items)
    have = [i for i, a in enumerate(items) if a.agreement_id in vectors]
    for r, i in enumerate(have):
        row[i] = r
    sims = np.stack([vectors[items[i].agreement_id] for i in have]) if have else np.zeros((0, 1), np.float32)
    sims = sims @ sims.T
    scores: dict[tuple[int, int], float | None] = {}
    by_party: dict[str, list[int]] = {}
    for i, a in enumerate(items):
        for p in set(a.party_ids):
            by_party.setdefault(p, []).append(i)
    candidates: set[tuple[int, int]] = set()
    for block in by_party.values():
        candidates.update((i, j) for i in block for j in block if i < j)
    for i, j in sorted(candidates):
        a, b = items[i], items[j]
        cos = float(sims[row[i], row[j]]) if row[i] >= 0 and row[j] >= 0 else None
        ctx = PairContext(
            republished=roots[i] == roots[j],
            similarity=0.0 if cos is None else similarity_bonus(cos, embedder),
        )
        scores[(i, j)] = pair_score(a, b, ctx)

    # A pair with no shared party is not a hard "no" (extraction may name a party differently): 0.
    clusters = average_linkage(
        len(items), scores, THRESHOLD, missing=0.0, exclusive=[a.doc_id for a in items]
    )
    return [[items[i] for i in c] for c in clusters]


def _report_order(a: StoredAgreement) -> tuple[str, str, str]:
    return (a.published or "9999", a.doc_id, a.agreement_id)


def _pick(
    values: Iterable[tuple[T, StoredAgreement]], same: Callable[[T, T], bool]
) -> list[tuple[T, list[str]]]:
    """Distinct values (by ``same``) with the documents giving them, most reported first."""
    groups: list[tuple[T, list[str]]] = []
    for value, a in values:
        for v, docs in groups:
            if same(v, value):
                if a.doc_id not in docs:
                    docs.append(a.doc_id)
                break
        else:
            groups.append((value, [a.doc_id]))
    # Stable: ties keep the earliest report's value first.
    return sorted(groups, key=lambda g: -len(g[1]))


def build_deal(reports: Sequence[StoredAgreement]) -> Deal:
    """One deal from its reports: majority values, every disagreement kept in ``conflicts``."""
    ordered = sorted(reports, key=_report_order)
    first = ordered[0]
    # The type most reports give ("other" only when no report says more); ties: the earliest's.
    types = Counter(a.type for a in ordered if a.type != "other") or Counter(a.type for a in ordered)
    deal_type = max(types, key=lambda t: types[t])
    # Parties: those named by at least half the reports, in the order they were first named.
    counts: Counter[str] = Counter(p for a in ordered for p in set(a.party_ids))
    names: dict[str, str] = {}
    for a in ordered:
        for pid, name in zip(a.party_ids, a.parties, strict=False):
            names.setdefault(pid, name)
    party_ids = [
        p for p in dict.fromkeys(p for a in ordered for p in a.party_ids) if counts[p] * 2 >= len(ordered)
    ]
    conflicts: list[Conflict] = []

    signed = _pick([(a.signed, a) for a in ordered if a.signed], lambda x, y: x == y)
    value = _pick([(a.value, a) for a in ordered if a.value is not None], same_value)
    quantity = _pick(
        [(a.quantity, a) for a in ordered if a.quantity],
        lambda x, y: x == y or (quantity_number(x) is not None and quantity_number(x) == quantity_number(y)),
    )
    local = _pick(
        [(a.local_content_pct, a) for a in ordered if a.local_content_pct is not None], lambda x, y: x == y
    )
    subject = _pick([(a.subject, a) for a in ordered if a.subject], lambda x, y: x == y)
    for name, picked in (
        ("signed", signed),
        ("value", value),
        ("quantity", quantity),
        ("local_content_pct", local),
    ):
        if len(picked) > 1:
            conflicts.append(
                Conflict(name, tuple(ConflictValue(_conflict_value(v), tuple(docs)) for v, docs in picked))
            )
    published = sorted(a.published for a in ordered if a.published)
    anchor = min(ordered, key=lambda a: (a.published or "9999", a.agreement_id))
    return Deal(
        deal_id=sha1("deal", anchor.agreement_id),
        type=deal_type,
        parties=tuple(names[p] for p in party_ids),
        party_ids=tuple(party_ids),
        signed=signed[0][0] if signed else None,
        value=value[0][0] if value else None,
        quantity=quantity[0][0] if quantity else None,
        local_content_pct=local[0][0] if local else None,
        subject=subject[0][0] if subject else first.subject,
        first_reported=published[0] if published else None,
        last_reported=published[-1] if published else None,
        reports=tuple(a.report() for a in ordered),
        conflicts=tuple(conflicts),
        lead=_lead(ordered, value[0][1] if value else []),
    )


def _lead(ordered: Sequence[StoredAgreement], value_docs: list[str]) -> str:
    """The report whose figures the deal shows: the earliest original (not a republication) stating
    its value, else the earliest stating it, else the earliest original, else the earliest."""
    ranked = sorted(ordered, key=lambda a: (a.doc_id not in value_docs, a.duplicate_of is not None))
    return ranked[0].agreement_id  # sorted() is stable: the earliest of the best kind


def _conflict_value(v: object) -> str | float | dict[str, float | str]:
    if isinstance(v, Money):
        return {"amount": v.amount, "currency": v.currency}
    if isinstance(v, float) and v.is_integer():
        return int(v)
    assert isinstance(v, str | float | int)
    return v


def entity_ids_named(store: DealStoryQueries, name: str, models_dir: str) -> list[str]:
    """Entity ids a NAME argument names: an id, a canonical name or any alias, suffixes allowed
    (``Azərsilahın`` → azersilah); none when nothing matches."""
    from pathlib import Path

    from pipeline.index.snapshot import NameVariants
    from pipeline.nlp.registry import load_suffixes
    from pipeline.textnorm import normalize

    variants = NameVariants(load_suffixes(Path(models_dir)))
    return sorted({name, *store.entity_ids_matching(set(variants(name)), normalize)})


def deal_table_row(deal: Deal) -> dict[str, str | int | None]:
    """A deal as one line of the ``defintel deals`` table."""
    value = None if deal.value is None else f"{deal.value.amount:,.0f} {deal.value.currency}"
    return {
        "signed": deal.signed or (f"~{deal.first_reported}" if deal.first_reported else None),
        "type": deal.type,
        "parties": " / ".join(deal.parties),
        "value": value,
        "reports": len(deal.reports),
        "languages": ",".join(deal.languages),
        "conflicts": ",".join(c.field for c in deal.conflicts) or None,
    }


def could_match(a: StoredAgreement, b: StoredAgreement) -> bool:
    """Whether two agreements could reach the threshold at all (best evidence similarity, no
    republication link): the cheap test that picks the candidates an ingest re-matches."""
    if a.doc_id == b.doc_id:
        return True  # the same document's other instruments: kept apart, but re-clustered together
    best = pair_score(a, b, PairContext(similarity=1.0))
    return best is not None and best >= THRESHOLD
