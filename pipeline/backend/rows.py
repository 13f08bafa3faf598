"""The rows a store returns, as typed records.

They are ``TypedDict``s: at run time the plain dicts the CLI prints as JSON and the app renders
(same keys on both backends, so output is unchanged), while mypy checks every key a caller reads.
Values decoded from JSON columns (``parties``, ``aliases``, a run's ``report``) come decoded.
"""

from __future__ import annotations

from typing import TypeAlias, TypedDict

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None
JsonObject: TypeAlias = dict[str, Json]
FrontierValue: TypeAlias = str | int | None  # what a frontier column holds


class DocumentMeta(TypedDict):
    doc_id: str
    url: str
    title: str
    language: str
    published: str | None


class DocumentRow(DocumentMeta):
    """A ``documents`` listing row (``defintel documents``)."""

    author: str | None
    duplicate_of: str | None
    source: str
    first_seen: str
    last_seen: str
    story_id: str | None


class StoredDocument(DocumentMeta):
    """One document with its text (everything but its MinHash signature)."""

    source: str
    html_lang: str | None
    author: str | None
    text: str
    content_hash: str
    text_hash: str
    duplicate_of: str | None
    first_seen: str
    last_seen: str


class WatchDocument(DocumentMeta):
    author: str | None
    duplicate_of: str | None
    text: str


class MentionRow(TypedDict):
    start: int
    end: int
    text: str
    label: str
    entity_id: str
    canonical: str | None


class AgreementFacts(TypedDict):
    agreement_id: str
    doc_id: str
    type: str
    parties: list[str]
    party_ids: list[str]
    signed: str | None
    amount: float | None
    currency: str | None
    subject: str | None
    quantity: str | None
    local_content_pct: float | None
    evidence_text: str
    evidence_start: int
    evidence_end: int


class AgreementRow(AgreementFacts):
    """An agreement with its document's url, title, language and date."""

    url: str
    title: str
    language: str
    published: str | None


class WatchAgreement(AgreementFacts):
    watch_key: str  # its change-log key (pipeline/watch.py)


class EntitySummary(TypedDict):
    """An ``entities`` row in the INTERFACE shape: counts of mentions and documents."""

    id: str
    canonical: str
    label: str
    aliases: list[str]
    mentions: int
    documents: int


class EntityRow(EntitySummary):
    qid: str | None
    in_registry: bool


class EntityNode(TypedDict):
    """What the graph export keeps of an entity."""

    label: str
    canonical: str
    qid: str | None
    in_registry: bool


class ChunkRow(TypedDict):
    chunk_id: str
    doc_id: str
    n: int
    vec_id: int
    text: str
    start: int
    end: int


class TitledChunk(ChunkRow):
    title: str


class RunRow(TypedDict):
    run_id: int
    started: str
    finished: str | None
    report: JsonObject | None
    status: str | None
    pid: int | None


class FrontierRow(TypedDict):
    url: str
    source: str
    status: str
    attempts: int
    next_try: str | None
    last_error: str | None
    etag: str | None
    last_modified: str | None
    final_url: str | None
    doc_id: str | None
    updated_at: str
    kind: str
    lastmod: str | None
    fetched_at: str | None
    http_status: int | None
    first_seen: str | None


class FrontierError(TypedDict):
    """A URL's last error while it has not made it into the store (the app's failures page)."""

    url: str
    status: str
    attempts: int
    http_status: int | None
    last_error: str
    next_try: str | None


class RevisitCandidate(TypedDict):
    url: str
    fetched_at: str | None
    first_seen: str | None
    published: str | None


class WatchedEntityJson(TypedDict):
    name: str
    canonical: str
    ids: list[str]


class WatchlistRow(TypedDict):
    name: str
    entities: list[WatchedEntityJson]
    queries: list[str]
    types: list[str]
    created: str
    updated: str
    mark: int
    start_mark: int
    visit_mark: int
    last_digest: str | None


class WatchEvent(TypedDict):
    seq: int
    kind: str
    key: str
    doc_id: str
    at: str


class GraphDocument(TypedDict):
    doc_id: str
    url: str
    title: str
    language: str
    published: str | None
