"""Frozen records passed between stages. JSON appears only at the edges (CLI, store, export)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

LABELS = ("ORG", "PERSON", "GPE")
AGREEMENT_TYPES = (
    "contract",
    "joint_venture",
    "mou",
    "technology_transfer",
    "licence_production",
    "export",
    "training",
    "other",
)


def sha1(*parts: object) -> str:
    """Content-derived id: sha1 over the parts joined by a separator that cannot occur in them."""
    h = hashlib.sha1(usedforsecurity=False)
    for i, part in enumerate(parts):
        if i:
            h.update(b"\x1f")
        h.update(str(part).encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Page:
    """Raw HTML as fetched or read, before extraction."""

    url: str
    html: str
    source: str = ""
    fetched_at: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """Main text and metadata of one page. ``text`` = title + blank line + body; offsets index it."""

    doc_id: str
    url: str
    language: str
    title: str
    published: str | None
    author: str | None
    text: str
    source: str = ""
    html_lang: str | None = None

    @property
    def content_hash(self) -> str:
        return sha1(self.title, self.text)


@dataclass(frozen=True, slots=True)
class Mention:
    """One entity mention: the span as written (with suffix) and its canonical entity."""

    text: str
    label: str
    canonical: str
    entity_id: str
    start: int
    end: int

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "canonical": self.canonical,
            "id": self.entity_id,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True, slots=True)
class Entity:
    """A canonical entity from the registry, or one derived from unlisted mentions."""

    entity_id: str
    label: str
    canonical: str
    aliases: tuple[str, ...] = ()
    qid: str | None = None
    in_registry: bool = True


@dataclass(frozen=True, slots=True)
class Money:
    amount: float
    currency: str


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Agreement:
    type: str
    parties: tuple[str, ...]
    party_ids: tuple[str, ...]
    evidence: Span
    signed: str | None = None
    value: Money | None = None
    subject: str | None = None
    quantity: str | None = None
    local_content_pct: float | None = None

    @property
    def agreement_id(self) -> str:
        return sha1(self.type, self.evidence.start, self.evidence.text)

    def as_json(self) -> dict[str, Any]:
        lc = self.local_content_pct
        return {
            "type": self.type,
            "parties": list(self.parties),
            "party_ids": list(self.party_ids),
            "signed": self.signed,
            "value": None if self.value is None else asdict(self.value),
            "subject": self.subject,
            "quantity": self.quantity,
            "local_content_pct": int(lc) if lc is not None and float(lc).is_integer() else lc,
            "evidence": asdict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class Analysis:
    """A document with what the NLP stage found in it."""

    document: Document
    mentions: tuple[Mention, ...] = ()
    agreements: tuple[Agreement, ...] = ()
    entities: tuple[Entity, ...] = ()

    def as_json(self) -> dict[str, Any]:
        d = self.document
        return {
            "doc_id": d.doc_id,
            "url": d.url,
            "language": d.language,
            "title": d.title,
            "published": d.published,
            "author": d.author,
            "text": d.text,
            "entities": [m.as_json() for m in self.mentions],
            "agreements": [a.as_json() for a in self.agreements],
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    doc_id: str
    n: int
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result row: a document with its best chunk as the snippet."""

    doc_id: str
    url: str
    title: str
    language: str
    published: str | None
    score: float
    snippet: str
    matched_terms: tuple[str, ...] = ()
    story_id: str | None = None
    # The story's other documents when results are collapsed by story (``collapse_stories``).
    story: tuple[StoryMember, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "doc_id": self.doc_id,
            "url": self.url,
            "title": self.title,
            "language": self.language,
            "published": self.published,
            "score": round(self.score, 6),
            "snippet": self.snippet,
            "matched_terms": list(self.matched_terms),
        }
        if self.story_id is not None:
            out["story_id"] = self.story_id
            out["story_reports"] = [
                {
                    "doc_id": m.doc_id,
                    "url": m.url,
                    "title": m.title,
                    "language": m.language,
                    "published": m.published,
                }
                for m in self.story
            ]
        return out


@dataclass(slots=True)
class IngestReport:
    """Counters of one ingest run (mutable while the run goes, frozen into JSON at the end)."""

    seen: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    failed: int = 0
    skipped_robots: int = 0
    not_modified: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True, slots=True)
class DealReport:
    """One document's statement of a deal: the agreement it extracted, with the page's metadata."""

    agreement_id: str
    doc_id: str
    url: str
    language: str
    published: str | None
    evidence: Span

    def as_json(self) -> dict[str, object]:
        return {
            "doc_id": self.doc_id,
            "url": self.url,
            "language": self.language,
            "published": self.published,
            "evidence": asdict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class ConflictValue:
    """One of the values the reports of a deal give for a field, and the documents giving it."""

    value: str | float | dict[str, float | str]
    doc_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field the reports of one deal disagree on (every value kept, side by side)."""

    field: str
    values: tuple[ConflictValue, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "field": self.field,
            "values": [{"value": v.value, "doc_ids": list(v.doc_ids)} for v in self.values],
        }


@dataclass(frozen=True, slots=True)
class Deal:
    """An agreement consolidated across every document that reports it.

    The field values are the ones most reports give (ties: the earliest report's); values that
    disagree are all kept in ``conflicts``. ``first_seen`` / ``updated`` are when the store first
    held the deal and when its content last changed (what watchlists ask for)."""

    deal_id: str
    type: str
    parties: tuple[str, ...]
    party_ids: tuple[str, ...]
    signed: str | None
    value: Money | None
    quantity: str | None
    local_content_pct: float | None
    subject: str | None
    first_reported: str | None
    last_reported: str | None
    reports: tuple[DealReport, ...]
    conflicts: tuple[Conflict, ...] = ()
    first_seen: str | None = None
    updated: str | None = None
    lead: str | None = None  # agreement id of the report whose figures the deal shows

    @property
    def lead_report(self) -> DealReport:
        return next((r for r in self.reports if r.agreement_id == self.lead), self.reports[0])

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({r.language for r in self.reports}))

    def as_json(self) -> dict[str, object]:
        lc = self.local_content_pct
        return {
            "deal_id": self.deal_id,
            "type": self.type,
            "parties": list(self.parties),
            "party_ids": list(self.party_ids),
            "signed": self.signed,
            "value": None if self.value is None else asdict(self.value),
            "quantity": self.quantity,
            "local_content_pct": int(lc) if lc is not None and float(lc).is_integer() else lc,
            "subject": self.subject,
            "first_reported": self.first_reported,
            "last_reported": self.last_reported,
            "reports": [r.as_json() for r in self.reports],
            "conflicts": [c.as_json() for c in self.conflicts],
        }


@dataclass(frozen=True, slots=True)
class StoredAgreement:
    """An agreement row as the store holds it, with its document's metadata: what deal matching reads."""

    agreement_id: str
    doc_id: str
    type: str
    parties: tuple[str, ...]
    party_ids: tuple[str, ...]
    signed: str | None
    value: Money | None
    quantity: str | None
    local_content_pct: float | None
    subject: str | None
    evidence: Span
    url: str
    language: str
    published: str | None
    duplicate_of: str | None = None

    def report(self) -> DealReport:
        return DealReport(
            self.agreement_id, self.doc_id, self.url, self.language, self.published, self.evidence
        )


@dataclass(frozen=True, slots=True)
class StoryDoc:
    """A stored document with what story clustering compares: date, duplicate link, entities, deals."""

    doc_id: str
    language: str
    title: str
    published: str | None
    duplicate_of: str | None
    minhash: bytes | None
    entity_ids: frozenset[str] = frozenset()
    deal_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StoryMember:
    """One document of a story, as search cards and entity pages list them."""

    story_id: str
    doc_id: str
    url: str
    title: str
    language: str
    published: str | None
