"""SQLite store: schema with named migrations, WAL mode, upserts keyed by content-derived ids."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pipeline.backend import rows as typed
from pipeline.backend.deal_queries import DEALS_STORIES_SQL, DealStoryQueries
from pipeline.clock import now
from pipeline.errors import UsageError
from pipeline.nlp.decisions import Decisions, LinkDecision, split_id
from pipeline.records import Analysis, Chunk, Entity

if TYPE_CHECKING:
    from pipeline.backend.protocols import Vectors

log = logging.getLogger(__name__)

DB_NAME = "defintel.sqlite3"

# An agreement's identity for the watch digests (SQL over ``agreements a``, the same on both
# backends): the document and every fact, so a corrected value, date or party is a new key.
# Migrations back-fill with it: never change it.
AGREEMENT_KEY = (
    "a.doc_id || '|' || a.type || '|' || a.party_ids || '|' || COALESCE(a.signed, '') || '|' || "
    "COALESCE(CAST(a.amount AS TEXT), '') || '|' || COALESCE(a.currency, '') || '|' || "
    "COALESCE(a.subject, '') || '|' || COALESCE(a.quantity, '') || '|' || "
    "COALESCE(CAST(a.local_content_pct AS TEXT), '')"
)

# Named migrations, applied in order and recorded in schema_migrations. Never edit one that has
# shipped: add a new one.
# Watchlists (pipeline/watch.py) and the change log their digests read: one event when a document is
# first stored, one when an agreement's facts are first seen (its key: the document and every fact of
# the agreement, so a corrected value is a new event). The events of the documents and agreements
# stored before the migration are back-filled. One text for both backends: {T} text, {I} integer,
# {SEQ} an auto-numbered key (SQLITE_TYPES here, PG_TYPES in pipeline/backend/pg/schema.py).
WATCHLISTS_SQL = (
    """
CREATE TABLE watchlists (
    name {T} PRIMARY KEY,
    entities {T} NOT NULL DEFAULT '[]',
    queries {T} NOT NULL DEFAULT '[]',
    types {T} NOT NULL DEFAULT '[]',
    created {T} NOT NULL,
    updated {T} NOT NULL,
    mark {I} NOT NULL DEFAULT 0,
    start_mark {I} NOT NULL DEFAULT 0,
    visit_mark {I} NOT NULL DEFAULT 0,
    last_digest {T}
);
CREATE TABLE watch_events (
    seq {SEQ},
    kind {T} NOT NULL,
    key {T} NOT NULL,
    doc_id {T} NOT NULL,
    at {T} NOT NULL
);
CREATE UNIQUE INDEX watch_events_key ON watch_events(kind, key);
CREATE INDEX watch_events_doc ON watch_events(doc_id);
INSERT INTO watch_events (kind, key, doc_id, at)
    SELECT 'document', doc_id, doc_id, first_seen FROM documents ORDER BY first_seen, doc_id;
INSERT INTO watch_events (kind, key, doc_id, at)
    SELECT 'agreement', """
    + AGREEMENT_KEY.replace("{", "{{").replace("}", "}}")
    + """, a.doc_id, d.first_seen
    FROM agreements a JOIN documents d USING (doc_id) WHERE true
    ORDER BY d.first_seen, a.doc_id, a.evidence_start
    ON CONFLICT (kind, key) DO NOTHING
"""
)
# An analyst's linking decisions (pipeline/nlp/decisions.py), replayed on every ingest.
LINK_DECISIONS_SQL = """
CREATE TABLE link_decisions (
    seq {SEQ},
    action {T} NOT NULL,
    entity_id {T} NOT NULL,
    other {T} NOT NULL,
    reason {T} NOT NULL DEFAULT '',
    decided_at {T} NOT NULL
)
"""
SQLITE_TYPES = {"T": "TEXT", "I": "INTEGER", "SEQ": "INTEGER PRIMARY KEY AUTOINCREMENT"}

MIGRATIONS: list[tuple[str, str]] = [
    (
        "sqlite_0001_initial",
        """
        CREATE TABLE documents (
            doc_id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL,
            html_lang TEXT,
            title TEXT NOT NULL,
            published TEXT,
            author TEXT,
            text TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            minhash BLOB,
            duplicate_of TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE INDEX documents_text_hash ON documents(text_hash);
        CREATE INDEX documents_published ON documents(published);
        CREATE TABLE chunks (
            chunk_id TEXT PRIMARY KEY,
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            vec_id INTEGER NOT NULL UNIQUE,
            text TEXT NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL
        );
        CREATE INDEX chunks_doc ON chunks(doc_id);
        CREATE TABLE entities (
            entity_id TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            canonical TEXT NOT NULL,
            aliases TEXT NOT NULL DEFAULT '[]',
            qid TEXT,
            in_registry INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE mentions (
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            text TEXT NOT NULL,
            label TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            PRIMARY KEY (doc_id, start, "end")
        );
        CREATE INDEX mentions_entity ON mentions(entity_id);
        CREATE TABLE agreements (
            agreement_id TEXT PRIMARY KEY,
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            type TEXT NOT NULL,
            parties TEXT NOT NULL,
            party_ids TEXT NOT NULL,
            signed TEXT,
            amount REAL,
            currency TEXT,
            subject TEXT,
            quantity TEXT,
            local_content_pct REAL,
            evidence_text TEXT NOT NULL,
            evidence_start INTEGER NOT NULL,
            evidence_end INTEGER NOT NULL
        );
        CREATE INDEX agreements_doc ON agreements(doc_id);
        CREATE TABLE frontier (
            url TEXT PRIMARY KEY,
            source TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try TEXT,
            last_error TEXT,
            etag TEXT,
            last_modified TEXT,
            final_url TEXT,
            doc_id TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            started TEXT NOT NULL,
            finished TEXT,
            report TEXT
        );
        """,
    ),
    (
        # The crawl frontier grows what a resumable, incremental crawler needs; runs say how they ended.
        "sqlite_0002_crawl_frontier",
        """
        ALTER TABLE frontier ADD COLUMN kind TEXT NOT NULL DEFAULT 'page';
        ALTER TABLE frontier ADD COLUMN lastmod TEXT;
        ALTER TABLE frontier ADD COLUMN fetched_at TEXT;
        ALTER TABLE frontier ADD COLUMN http_status INTEGER;
        ALTER TABLE frontier ADD COLUMN first_seen TEXT;
        CREATE INDEX frontier_due ON frontier(status, next_try);
        CREATE INDEX frontier_source ON frontier(source, status);
        CREATE INDEX frontier_final ON frontier(final_url);
        ALTER TABLE runs ADD COLUMN status TEXT;
        ALTER TABLE runs ADD COLUMN pid INTEGER
        """,
    ),
    ("shared_0001_watchlists", WATCHLISTS_SQL.format(**SQLITE_TYPES)),
    ("shared_0002_link_decisions", LINK_DECISIONS_SQL.format(**SQLITE_TYPES)),
    # Deals consolidated across reports and story clusters (pipeline/backend/deal_queries.py, consolidate.py).
    ("shared_0003_deals_stories", DEALS_STORIES_SQL.format(T="TEXT", B="BLOB")),
]
# Names these migrations had before the two histories were named apart (the same number named a
# different migration in each): a store that recorded an old name has the migration, renamed on open.
RENAMED = {
    "0001_initial": "sqlite_0001_initial",
    "0002_crawl_frontier": "sqlite_0002_crawl_frontier",
    "0003_watchlists": "shared_0001_watchlists",
    "0004_link_decisions": "shared_0002_link_decisions",
    "0005_deals_stories": "shared_0003_deals_stories",
}

FRONTIER_COLUMNS = frozenset(
    {
        "source",
        "status",
        "attempts",
        "next_try",
        "last_error",
        "etag",
        "last_modified",
        "final_url",
        "doc_id",
        "kind",
        "lastmod",
        "fetched_at",
        "http_status",
    }
)


# -- SQL both backends run as written (``?`` placeholders; pipeline/backend/pg/db.py translates them) ------
DOCUMENT_UPSERT = """INSERT INTO documents (doc_id, url, source, language, html_lang, title, published, author,
       text, content_hash, text_hash, minhash, duplicate_of, first_seen, last_seen)
   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
   ON CONFLICT(doc_id) DO UPDATE SET url=excluded.url, source=excluded.source,
       language=excluded.language, html_lang=excluded.html_lang, title=excluded.title,
       published=excluded.published, author=excluded.author, text=excluded.text,
       content_hash=excluded.content_hash, text_hash=excluded.text_hash, minhash=excluded.minhash,
       duplicate_of=excluded.duplicate_of, last_seen=excluded.last_seen"""

MENTION_UPSERT = """INSERT INTO mentions (doc_id, start, "end", text, label, entity_id) VALUES (?,?,?,?,?,?)
   ON CONFLICT (doc_id, start, "end") DO UPDATE SET text = excluded.text, label = excluded.label,
       entity_id = excluded.entity_id"""

ENTITY_UPSERT = """INSERT INTO entities (entity_id, label, canonical, aliases, qid, in_registry) VALUES (?,?,?,?,?,?)
   ON CONFLICT(entity_id) DO UPDATE SET label=excluded.label, canonical=excluded.canonical,
       aliases=excluded.aliases, qid=excluded.qid, in_registry=excluded.in_registry"""

AGREEMENT_UPSERT = """INSERT INTO agreements (agreement_id, doc_id, type, parties, party_ids, signed, amount,
       currency, subject, quantity, local_content_pct, evidence_text, evidence_start, evidence_end)
   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
   ON CONFLICT (agreement_id) DO UPDATE SET doc_id=excluded.doc_id, type=excluded.type,
       parties=excluded.parties, party_ids=excluded.party_ids, signed=excluded.signed, amount=excluded.amount,
       currency=excluded.currency, subject=excluded.subject, quantity=excluded.quantity,
       local_content_pct=excluded.local_content_pct, evidence_text=excluded.evidence_text,
       evidence_start=excluded.evidence_start, evidence_end=excluded.evidence_end"""

# The frontier's columns in the SQLite table's order (PostgreSQL adds lease columns, kept internal).
FRONTIER_SELECT = (
    "url, source, status, attempts, next_try, last_error, etag, last_modified, final_url, doc_id, "
    "updated_at, kind, lastmod, fetched_at, http_status, first_seen"
)
CHUNK_SELECT = 'chunk_id, doc_id, n, vec_id, text, start, "end"'
RUN_SELECT = "run_id, started, finished, report, status, pid"
COUNTED_TABLES = (
    "documents",
    "chunks",
    "entities",
    "mentions",
    "agreements",
    "runs",
    "frontier",
    "watchlists",
    "watch_events",
    "link_decisions",
)


def table_counts(db: Any) -> dict[str, int]:
    """Rows per table: what ``defintel migrate`` compares on both sides."""
    return {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in COUNTED_TABLES}


def _parts(values: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """``values`` in slices that stay under SQLite's bound-parameter limit."""
    for i in range(0, len(values), size):
        yield list(values[i : i + size])


def _watchlist_row(r: Any) -> typed.WatchlistRow:
    row = dict(r)
    for key in ("entities", "queries", "types"):
        row[key] = json.loads(row[key])
    return cast(typed.WatchlistRow, row)


def _with_parties(r: Any) -> dict[str, Any]:
    row = dict(r)
    row["parties"] = json.loads(row["parties"])
    row["party_ids"] = json.loads(row["party_ids"])
    return row


def _entity(r: Any) -> dict[str, Any]:
    row = dict(r)
    row["aliases"] = json.loads(row["aliases"])
    if "in_registry" in row:
        row["in_registry"] = bool(row["in_registry"])
    return row


class StoreQueries(DealStoryQueries):
    """Everything both stores do with the same SQL: the SQLite ``Store`` and
    ``pipeline.backend.pg.store.PgStore`` inherit it, so the two backends return the same rows by
    construction. Where the dialects differ a backend overrides a small hook: ``_any`` (a column
    among a list of values), ``_after_document`` (PostgreSQL keeps copies on the chunk rows),
    ``serialize`` (PostgreSQL advisory locks)."""

    db: Any
    _link_decisions: Decisions | None = None

    # -- dialect hooks -----------------------------------------------------------------------
    def _any(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """SQL for ``column`` being one of ``values`` and its parameters (SQLite: ``IN (?, …)``)."""
        return f"{column} IN ({','.join('?' * len(values)) or 'NULL'})", list(values)

    def _after_document(self, analysis: Analysis) -> None:
        """Called in ``save_analysis`` after the document row is written."""

    def serialize(self, lock: int | None) -> None:
        """Inside ``atomic()``: wait for other processes' transactions holding ``lock`` (a
        PostgreSQL advisory lock); the embedded store has a single writer and needs none."""

    # -- schema ------------------------------------------------------------------------------
    name_collation = ""  # PostgreSQL: byte order for migration names, as SQLite sorts them

    # The backend's named migrations, in order: ``sqlite_``/``pg_`` ones of one backend, then the
    # ``shared_`` ones both run (one SQL text with the dialect's types); and each old migration name →
    # its name now (recorded names are rewritten before migrating).
    schema: ClassVar[Sequence[tuple[str, str]]] = ()
    renamed: ClassVar[Mapping[str, str]] = {}

    def _migrating(self) -> AbstractContextManager[None]:
        """What migrating runs under (PostgreSQL: one transaction holding an advisory lock)."""
        return nullcontext()

    def migrate(self) -> list[str]:
        """Run the migrations not applied yet, each in its own ``atomic()`` block, recording each."""
        with self._migrating():
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                f"(name TEXT{self.name_collation} PRIMARY KEY, applied_at TEXT)"
            )
            done = {r[0] for r in self.db.execute("SELECT name FROM schema_migrations")}
            old = sorted(done & set(self.renamed))
            if old:
                with self.atomic():
                    for name in old:
                        self.db.execute(
                            "UPDATE schema_migrations SET name = ? WHERE name = ?", (self.renamed[name], name)
                        )
                done = (done - set(old)) | {self.renamed[n] for n in old}
            applied = []
            for name, sql in self.schema:
                if name in done:
                    continue
                with self.atomic():
                    for statement in sql.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now()))
                applied.append(name)
                log.info("applied migration %s", name)
            return applied

    def atomic(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def migrations(self) -> list[str]:
        """The applied migrations, in the schema's order (names it does not know last)."""
        order = {name: i for i, (name, _) in enumerate(self.schema)}
        names = [str(r[0]) for r in self.db.execute("SELECT name FROM schema_migrations ORDER BY name")]
        return sorted(names, key=lambda n: order.get(n, len(order)))

    def counts(self) -> dict[str, int]:
        return table_counts(self.db)

    # -- documents ---------------------------------------------------------------------------
    def touch(self, doc_id: str) -> None:
        self.db.execute("UPDATE documents SET last_seen = ? WHERE doc_id = ?", (now(), doc_id))

    def find_by_text_hash(self, text_hash: str, exclude: str) -> str | None:
        row = self.db.execute(
            "SELECT doc_id FROM documents WHERE text_hash = ? AND doc_id != ? ORDER BY first_seen, doc_id LIMIT 1",
            (text_hash, exclude),
        ).fetchone()
        return None if row is None else str(row[0])

    def minhashes(self, exclude: str) -> Iterator[tuple[str, bytes, str | None]]:
        for r in self.db.execute(
            "SELECT doc_id, minhash, published FROM documents WHERE minhash IS NOT NULL AND doc_id != ?",
            (exclude,),
        ):
            yield r[0], bytes(r[1]), r[2]

    def mark_duplicate(self, doc_id: str, original: str) -> None:
        """``doc_id`` is a copy of ``original`` (a republication found after it was stored)."""
        self.db.execute("UPDATE documents SET duplicate_of = ? WHERE doc_id = ?", (original, doc_id))

    def save_analysis(
        self,
        analysis: Analysis,
        *,
        text_hash: str,
        minhash: bytes | None,
        duplicate_of: str | None,
    ) -> None:
        """Upsert a document with its mentions, agreements and entities (caller holds the transaction);
        the analyst's linking decisions are applied first."""
        analysis = self.apply_link_decisions(analysis)
        d = analysis.document
        ts = now()
        self.db.execute(
            DOCUMENT_UPSERT,
            (
                d.doc_id,
                d.url,
                d.source,
                d.language,
                d.html_lang,
                d.title,
                d.published,
                d.author,
                d.text,
                d.content_hash,
                text_hash,
                minhash,
                duplicate_of,
                ts,
                ts,
            ),
        )
        self._after_document(analysis)
        self.db.execute("DELETE FROM mentions WHERE doc_id = ?", (d.doc_id,))
        self.db.executemany(
            MENTION_UPSERT,
            [(d.doc_id, m.start, m.end, m.text, m.label, m.entity_id) for m in analysis.mentions],
        )
        self.upsert_entities(analysis.entities)
        self.db.execute("DELETE FROM agreements WHERE doc_id = ?", (d.doc_id,))
        self.db.executemany(
            AGREEMENT_UPSERT,
            [
                (
                    a.agreement_id,
                    d.doc_id,
                    a.type,
                    json.dumps(list(a.parties), ensure_ascii=False),
                    json.dumps(list(a.party_ids)),
                    a.signed,
                    None if a.value is None else a.value.amount,
                    None if a.value is None else a.value.currency,
                    a.subject,
                    a.quantity,
                    a.local_content_pct,
                    a.evidence.text,
                    a.evidence.start,
                    a.evidence.end,
                )
                for a in analysis.agreements
            ],
        )
        self.record_watch_events(d.doc_id)

    def upsert_entities(self, entities: Iterable[Entity]) -> None:
        for e in entities:
            row = self.db.execute(
                "SELECT aliases FROM entities WHERE entity_id = ?", (e.entity_id,)
            ).fetchone()
            aliases = list(dict.fromkeys([*(json.loads(row[0]) if row else []), *e.aliases]))
            self.db.execute(
                ENTITY_UPSERT,
                (
                    e.entity_id,
                    e.label,
                    e.canonical,
                    json.dumps(aliases, ensure_ascii=False),
                    e.qid,
                    int(e.in_registry),
                ),
            )

    def documents(self) -> list[typed.DocumentRow]:
        rows = self.db.execute(
            """SELECT d.doc_id, d.url, d.language, d.title, d.published, d.author, d.duplicate_of, d.source,
                      d.first_seen, d.last_seen, s.story_id
               FROM documents d LEFT JOIN stories s ON s.doc_id = d.doc_id
               ORDER BY d.published IS NULL, d.published, d.doc_id"""
        )
        return [cast(typed.DocumentRow, dict(r)) for r in rows]

    def document(self, doc_id: str) -> typed.StoredDocument | None:
        row = self.db.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out.pop("minhash", None)
        return cast(typed.StoredDocument, out)

    def document_meta(self, doc_ids: Sequence[str]) -> dict[str, typed.DocumentMeta]:
        out: dict[str, typed.DocumentMeta] = {}
        for part in _parts(doc_ids):
            where, params = self._any("doc_id", part)
            rows = self.db.execute(
                f"SELECT doc_id, url, title, language, published FROM documents WHERE {where}", params
            )
            out.update({r["doc_id"]: cast(typed.DocumentMeta, dict(r)) for r in rows})
        return out

    def document_state(self, doc_id: str) -> tuple[str, str | None] | None:
        """(content_hash, duplicate_of) of a stored document, or None."""
        row = self.db.execute(
            "SELECT content_hash, duplicate_of FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def content_hashes(self) -> list[tuple[str, str]]:
        """(doc_id, content_hash) of every document, by id (what a search snapshot is keyed on)."""
        return [
            (str(r[0]), str(r[1]))
            for r in self.db.execute("SELECT doc_id, content_hash FROM documents ORDER BY doc_id")
        ]

    def graph_documents(
        self, *, include_duplicates: bool, since: str | None, until: str | None
    ) -> list[typed.GraphDocument]:
        """Documents published in [since, until] (copies of another only when asked), by id."""
        where: list[str] = []
        params: list[str] = []
        if not include_duplicates:
            where.append("duplicate_of IS NULL")
        if since:
            where.append("published >= ?")
            params.append(since)
        if until:
            where.append("published <= ?")
            params.append(until)
        sql = "SELECT doc_id, url, title, language, published FROM documents"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY doc_id"
        return [cast(typed.GraphDocument, dict(r)) for r in self.db.execute(sql, params)]

    # -- what the analysis found -------------------------------------------------------------
    def mentions(self, doc_id: str) -> list[typed.MentionRow]:
        rows = self.db.execute(
            """SELECT m.start, m."end", m.text, m.label, m.entity_id, e.canonical FROM mentions m
               LEFT JOIN entities e USING (entity_id) WHERE m.doc_id = ? ORDER BY m.start""",
            (doc_id,),
        )
        return [cast(typed.MentionRow, dict(r)) for r in rows]

    def surface_forms(self) -> list[tuple[str, str, str, int]]:
        """(doc_id, entity_id, text as written, count) for every distinct surface form per document."""
        rows = self.db.execute(
            """SELECT doc_id, entity_id, text, COUNT(*) FROM mentions
               GROUP BY doc_id, entity_id, text ORDER BY doc_id, entity_id, MIN(start)"""
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def agreements(self, doc_id: str | None = None) -> list[typed.AgreementRow]:
        sql = """SELECT a.*, d.url, d.title, d.language, d.published FROM agreements a
                 JOIN documents d USING (doc_id)"""
        params: tuple[str, ...] = ()
        if doc_id is not None:
            sql += " WHERE a.doc_id = ?"
            params = (doc_id,)
        rows = self.db.execute(sql + " ORDER BY d.published NULLS FIRST, a.evidence_start", params)
        return [cast(typed.AgreementRow, _with_parties(r)) for r in rows]

    def entities(self) -> list[typed.EntityRow]:
        rows = self.db.execute(
            """SELECT e.entity_id AS id, e.canonical, e.label, e.aliases, e.qid, e.in_registry,
                      COUNT(m.doc_id) AS mentions, COUNT(DISTINCT m.doc_id) AS documents
               FROM entities e JOIN mentions m USING (entity_id)
               GROUP BY e.entity_id ORDER BY documents DESC, mentions DESC, e.canonical, e.entity_id"""
        )
        return [cast(typed.EntityRow, _entity(r)) for r in rows]

    def entity_row(self, entity_id: str) -> typed.EntityRow | None:
        """One entity as ``entities`` lists it (mention and document counts included), or None."""
        row = self.db.execute(
            """SELECT e.entity_id AS id, e.canonical, e.label, e.aliases, e.qid, e.in_registry,
                      COUNT(m.doc_id) AS mentions, COUNT(DISTINCT m.doc_id) AS documents
               FROM entities e LEFT JOIN mentions m USING (entity_id)
               WHERE e.entity_id = ? GROUP BY e.entity_id, e.canonical, e.label, e.aliases, e.qid, e.in_registry""",
            (entity_id,),
        ).fetchone()
        return None if row is None else cast(typed.EntityRow, _entity(row))

    def entity_exists(self, entity_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM entities WHERE entity_id = ?", (entity_id,)).fetchone() is not None
        )

    def entity_canonical(self, entity_id: str) -> str | None:
        row = self.db.execute("SELECT canonical FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
        return None if row is None else str(row[0])

    def entity_nodes(self) -> dict[str, typed.EntityNode]:
        """What the graph export shows of every entity, by id."""
        rows = self.db.execute("SELECT entity_id, label, canonical, qid, in_registry FROM entities")
        return {
            r[0]: typed.EntityNode(label=r[1], canonical=r[2], qid=r[3], in_registry=bool(r[4])) for r in rows
        }

    def entity_names(self) -> list[tuple[str, list[str]]]:
        """(entity_id, [canonical, *aliases]) of every entity (a broken alias list reads as none)."""
        out = []
        for entity_id, canonical, aliases in self.db.execute(
            "SELECT entity_id, canonical, aliases FROM entities"
        ):
            try:
                names = [canonical, *json.loads(aliases)]
            except ValueError:
                names = [canonical]
            out.append((str(entity_id), [str(n) for n in names]))
        return out

    def cooccurrences(self) -> list[tuple[str, str, str]]:
        """(doc_id, entity_id, published) for every distinct entity in every document."""
        rows = self.db.execute(
            """SELECT DISTINCT m.doc_id, m.entity_id, d.published FROM mentions m JOIN documents d USING (doc_id)
               ORDER BY m.doc_id, m.entity_id"""
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def doc_entity_pairs(self) -> list[tuple[str, str]]:
        """(entity_id, doc_id) for every entity named in every document."""
        return [
            (str(r[0]), str(r[1])) for r in self.db.execute("SELECT DISTINCT entity_id, doc_id FROM mentions")
        ]

    def doc_agreement_types(self) -> list[tuple[str, str]]:
        """(agreement type, doc_id) for every type of agreement every document reports."""
        return [
            (str(r[0]), str(r[1])) for r in self.db.execute("SELECT DISTINCT type, doc_id FROM agreements")
        ]

    def entity_ids_matching(self, normalized_names: set[str], normalize: Callable[[str], str]) -> list[str]:
        """Entity ids whose canonical name or any alias normalises into ``normalized_names``."""
        out = []
        for r in self.db.execute("SELECT entity_id, canonical, aliases FROM entities"):
            names = [r[1], *json.loads(r[2])]
            if any(normalize(n) in normalized_names for n in names) or r[0] in normalized_names:
                out.append(str(r[0]))
        return out

    def link_decisions(self) -> Decisions:
        """The analyst's linking decisions in the order taken, with the entity rows merges keep."""
        rows = self.db.execute(
            "SELECT action, entity_id, other, reason, decided_at FROM link_decisions ORDER BY seq"
        ).fetchall()
        decisions = [LinkDecision(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]
        kept = sorted({d.other for d in decisions if d.action == "merge"})
        canonical: dict[str, Entity] = {}
        for part in _parts(kept):
            for r in self.db.execute(
                f"""SELECT entity_id, label, canonical, aliases, qid, in_registry FROM entities
                    WHERE entity_id IN ({",".join("?" * len(part))})""",
                part,
            ):
                canonical[str(r[0])] = Entity(
                    str(r[0]), str(r[1]), str(r[2]), tuple(json.loads(r[3])), r[4], bool(r[5])
                )
        return Decisions(decisions, canonical)

    def apply_link_decisions(self, analysis: Analysis) -> Analysis:
        """``analysis`` with the analyst's merges and splits applied (read once per store)."""
        decisions = self._link_decisions
        if decisions is None:
            decisions = self.link_decisions()
            self._link_decisions = decisions
        return decisions.apply(analysis)

    def decide_link(self, decision: LinkDecision) -> str:
        """Store a merge or split and apply it to what is stored; returns the resulting entity id.
        The caller holds the transaction."""
        self.db.execute(
            "INSERT INTO link_decisions (action, entity_id, other, reason, decided_at) VALUES (?,?,?,?,?)",
            (decision.action, decision.entity_id, decision.other, decision.reason, decision.decided_at),
        )
        self._link_decisions = None
        if decision.action == "merge":
            keep, drop = decision.other, decision.entity_id
            rows = self.db.execute(
                "SELECT entity_id, aliases FROM entities WHERE entity_id IN (?, ?)", (keep, drop)
            ).fetchall()
            aliases = list(
                dict.fromkeys(a for r in sorted(rows, key=lambda r: r[0] != keep) for a in json.loads(r[1]))
            )
            self.db.execute(
                "UPDATE entities SET aliases = ? WHERE entity_id = ?",
                (json.dumps(aliases, ensure_ascii=False), keep),
            )
            self.db.execute("UPDATE mentions SET entity_id = ? WHERE entity_id = ?", (keep, drop))
            self.db.execute("DELETE FROM entities WHERE entity_id = ?", (drop,))
            canonical = self.db.execute(
                "SELECT canonical FROM entities WHERE entity_id = ?", (keep,)
            ).fetchone()
            for r in self.db.execute(
                "SELECT agreement_id, parties, party_ids FROM agreements WHERE party_ids LIKE ?",
                (f'%"{drop}"%',),
            ).fetchall():
                ids = [keep if i == drop else i for i in json.loads(r[2])]
                names = [
                    canonical[0] if canonical and i == keep else n
                    for i, n in zip(ids, json.loads(r[1]), strict=False)
                ]
                self.db.execute(
                    "UPDATE agreements SET party_ids = ?, parties = ? WHERE agreement_id = ?",
                    (
                        json.dumps(list(dict.fromkeys(ids))),
                        json.dumps(list(dict.fromkeys(names)), ensure_ascii=False),
                        r[0],
                    ),
                )
            return keep
        new_id = split_id(decision.entity_id, decision.other)
        label_row = self.db.execute(
            "SELECT label FROM entities WHERE entity_id = ?", (decision.entity_id,)
        ).fetchone()
        replay = Decisions([decision])
        moved = [
            (r[0], r[1], r[2])
            for r in self.db.execute(
                'SELECT doc_id, start, "end", text FROM mentions WHERE entity_id = ?', (decision.entity_id,)
            ).fetchall()
            if replay.resolve(decision.entity_id, str(r[3])) == new_id
        ]
        if moved:
            self.upsert_entities(
                [
                    Entity(
                        new_id,
                        str(label_row[0]) if label_row else "ORG",
                        decision.other,
                        (decision.other,),
                        None,
                        False,
                    )
                ]
            )
        for doc_id, start, end in moved:
            self.db.execute(
                'UPDATE mentions SET entity_id = ? WHERE doc_id = ? AND start = ? AND "end" = ?',
                (new_id, doc_id, start, end),
            )
        return new_id

    # -- watchlists (pipeline/watch.py) -------------------------------------------------------
    def record_watch_events(self, doc_id: str) -> None:
        """Note a stored document and its agreements in the change log the digests read (inside
        ``save_analysis``'s transaction): first storage, and agreement facts never seen before."""
        ts = now()
        self.db.execute(
            """INSERT INTO watch_events (kind, key, doc_id, at) VALUES ('document', ?, ?, ?)
               ON CONFLICT (kind, key) DO NOTHING""",
            (doc_id, doc_id, ts),
        )
        self.db.execute(
            f"""INSERT INTO watch_events (kind, key, doc_id, at)
                SELECT 'agreement', {AGREEMENT_KEY}, a.doc_id, ? FROM agreements a WHERE a.doc_id = ?
                ORDER BY a.evidence_start ON CONFLICT (kind, key) DO NOTHING""",
            (ts, doc_id),
        )

    def watch_mark(self) -> int:
        """The newest change-log position (a digest taken now covers everything up to it)."""
        row = self.db.execute("SELECT MAX(seq) FROM watch_events").fetchone()
        return int(row[0] or 0)

    def watch_events(self, after: int, upto: int, since: str | None = None) -> list[typed.WatchEvent]:
        """Change-log rows with ``after < seq <= upto`` (and ``at >= since`` when given), oldest first."""
        sql = "SELECT seq, kind, key, doc_id, at FROM watch_events WHERE seq > ? AND seq <= ?"
        params: list[Any] = [after, upto]
        if since:
            sql += " AND at >= ?"
            params.append(since)
        return [cast(typed.WatchEvent, dict(r)) for r in self.db.execute(sql + " ORDER BY seq", params)]

    def watchlists(self) -> list[typed.WatchlistRow]:
        rows = self.db.execute("SELECT * FROM watchlists ORDER BY name")
        return [_watchlist_row(r) for r in rows]

    def watchlist(self, name: str) -> typed.WatchlistRow | None:
        row = self.db.execute("SELECT * FROM watchlists WHERE name = ?", (name,)).fetchone()
        return None if row is None else _watchlist_row(row)

    def save_watchlist(
        self,
        name: str,
        entities: Sequence[typed.WatchedEntityJson],
        queries: Sequence[str],
        types: Sequence[str],
    ) -> None:
        """Create a watchlist (its mark at the newest change: it reports what comes after) or
        replace what an existing one follows (its mark kept)."""
        ts, mark = now(), self.watch_mark()
        self.db.execute(
            """INSERT INTO watchlists (name, entities, queries, types, created, updated, mark, start_mark,
                   visit_mark)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET entities = excluded.entities, queries = excluded.queries,
                   types = excluded.types, updated = excluded.updated""",
            (
                name,
                json.dumps(list(entities), ensure_ascii=False),
                json.dumps(list(queries), ensure_ascii=False),
                json.dumps(list(types)),
                ts,
                ts,
                mark,
                mark,
                mark,
            ),
        )

    def delete_watchlist(self, name: str) -> bool:
        cur = self.db.execute("DELETE FROM watchlists WHERE name = ?", (name,))
        return bool(cur.rowcount)

    def set_visit_mark(self, name: str, mark: int) -> None:
        """The app's "seen up to here" for a list (its own: digests keep their mark)."""
        self.db.execute("UPDATE watchlists SET visit_mark = ? WHERE name = ?", (mark, name))

    def set_watch_mark(self, name: str, mark: int, at: str) -> None:
        self.db.execute("UPDATE watchlists SET mark = ?, last_digest = ? WHERE name = ?", (mark, at, name))

    def watch_documents(self, doc_ids: Sequence[str]) -> dict[str, typed.WatchDocument]:
        """documents rows (with text) of these ids."""
        out: dict[str, typed.WatchDocument] = {}
        for part in _parts(doc_ids):
            where, params = self._any("doc_id", part)
            rows = self.db.execute(
                f"""SELECT doc_id, url, language, title, published, author, duplicate_of, text FROM documents
                    WHERE {where}""",
                params,
            )
            out.update({r["doc_id"]: cast(typed.WatchDocument, dict(r)) for r in rows})
        return out

    def watch_mentions(self, doc_ids: Sequence[str]) -> list[tuple[str, str, int, int]]:
        """(doc_id, entity_id, start, end) of every mention in these documents, in text order."""
        out: list[tuple[str, str, int, int]] = []
        for part in _parts(doc_ids):
            rows = self.db.execute(
                f"""SELECT doc_id, entity_id, start, "end" FROM mentions
                    WHERE doc_id IN ({",".join("?" * len(part))}) ORDER BY doc_id, start""",
                part,
            )
            out.extend((r[0], r[1], int(r[2]), int(r[3])) for r in rows)
        return out

    def watch_agreements(self, doc_ids: Sequence[str]) -> list[typed.WatchAgreement]:
        """Agreements of these documents with their change-log key (``watch_key``)."""
        out: list[typed.WatchAgreement] = []
        for part in _parts(doc_ids):
            rows = self.db.execute(
                f"""SELECT a.*, {AGREEMENT_KEY} AS watch_key FROM agreements a
                    WHERE a.doc_id IN ({",".join("?" * len(part))}) ORDER BY a.doc_id, a.evidence_start""",
                part,
            )
            out.extend(cast(typed.WatchAgreement, _with_parties(r)) for r in rows)
        return out

    def entities_first_seen(self, entity_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """(change-log position, time) of the first stored document mentioning each entity."""
        out: dict[str, tuple[int, str]] = {}
        for part in _parts(entity_ids):
            rows = self.db.execute(
                f"""SELECT m.entity_id, MIN(e.seq), MIN(e.at) FROM mentions m
                    JOIN watch_events e ON e.kind = 'document' AND e.key = m.doc_id
                    WHERE m.entity_id IN ({",".join("?" * len(part))}) GROUP BY m.entity_id""",
                part,
            )
            out.update({r[0]: (int(r[1]), str(r[2])) for r in rows})
        return out

    def entity_rows(self, entity_ids: Sequence[str]) -> list[typed.EntitySummary]:
        """``entities`` rows (INTERFACE shape) of these ids."""
        out: list[typed.EntitySummary] = []
        for part in _parts(entity_ids):
            rows = self.db.execute(
                f"""SELECT e.entity_id AS id, e.canonical, e.label, e.aliases,
                          COUNT(m.doc_id) AS mentions, COUNT(DISTINCT m.doc_id) AS documents
                   FROM entities e JOIN mentions m USING (entity_id)
                   WHERE e.entity_id IN ({",".join("?" * len(part))})
                   GROUP BY e.entity_id, e.canonical, e.label, e.aliases""",
                part,
            )
            out.extend(cast(typed.EntitySummary, _entity(r)) for r in rows)
        return sorted(out, key=lambda r: (-r["documents"], -r["mentions"], r["canonical"]))

    # -- crawl frontier ----------------------------------------------------------------------
    def revisit_candidates(self, sources: Sequence[str]) -> list[typed.RevisitCandidate]:
        """Article URLs of these sources fetched and stored before, with what the revisit schedule
        needs: when each was fetched, first seen, and its document's published date."""
        out: list[typed.RevisitCandidate] = []
        for part in _parts(sources):
            rows = self.db.execute(
                f"""SELECT f.url, f.fetched_at, f.first_seen, d.published FROM frontier f
                    JOIN documents d ON d.doc_id = f.doc_id
                    WHERE f.source IN ({",".join("?" * len(part))}) AND f.status = 'done'
                    AND f.kind IN ('page', 'link') ORDER BY f.url""",
                part,
            )
            out.extend(cast(typed.RevisitCandidate, dict(r)) for r in rows)
        return out

    def frontier_set(self, url: str, **fields: typed.FrontierValue) -> None:
        """Update some columns of one frontier row (names checked against the schema)."""
        bad = set(fields) - FRONTIER_COLUMNS
        if bad:
            raise ValueError(f"unknown frontier columns: {sorted(bad)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(
            f"UPDATE frontier SET {cols}, updated_at = ? WHERE url = ?", (*fields.values(), now(), url)
        )

    def frontier_rows(self, urls: Sequence[str]) -> dict[str, typed.FrontierRow]:
        out: dict[str, typed.FrontierRow] = {}
        for part in _parts(urls):
            where, params = self._any("url", part)
            for r in self.db.execute(f"SELECT {FRONTIER_SELECT} FROM frontier WHERE {where}", params):
                out[r["url"]] = cast(typed.FrontierRow, dict(r))
        return out

    def frontier_row(self, url: str) -> typed.FrontierRow | None:
        return self.frontier_rows([url]).get(url)

    def frontier_due(self, sources: Sequence[str], at: str) -> list[typed.FrontierRow]:
        """Rows of these sources waiting to be fetched: pending, or failed/blocked and due again."""
        if not sources:
            return []
        where, params = self._any("source", sources)
        rows = self.db.execute(
            f"""SELECT {FRONTIER_SELECT} FROM frontier WHERE {where}
                AND status IN ('pending', 'retry', 'blocked') AND (next_try IS NULL OR next_try <= ?)
                ORDER BY first_seen, url""",
            (*params, at),
        )
        return [cast(typed.FrontierRow, dict(r)) for r in rows]

    def frontier_requeue(self, source: str, kind: str) -> int:
        """Set the done rows of one kind found from ``source`` pending again (child sitemaps)."""
        cur = self.db.execute(
            "UPDATE frontier SET status = 'pending', updated_at = ? WHERE source = ? AND kind = ? AND status = 'done'",
            (now(), source, kind),
        )
        return int(cur.rowcount)

    def frontier_counts(self, sources: Sequence[str] | None = None) -> dict[str, int]:
        sql = "SELECT status, COUNT(*) FROM frontier"
        params: list[Any] = []
        if sources is not None:
            where, params = self._any("source", sources)
            sql += f" WHERE {where}"
        return {r[0]: int(r[1]) for r in self.db.execute(sql + " GROUP BY status", params)}

    def frontier_errors(self, limit: int = 200) -> list[typed.FrontierError]:
        """The last error of every URL that has not (yet) made it into the store, newest first."""
        rows = self.db.execute(
            """SELECT url, status, attempts, http_status, last_error, next_try FROM frontier
               WHERE last_error IS NOT NULL AND status != 'done' ORDER BY updated_at DESC LIMIT ?""",
            (limit,),
        )
        return [cast(typed.FrontierError, dict(r)) for r in rows]

    # -- chunks ------------------------------------------------------------------------------
    def chunks(self) -> list[typed.ChunkRow]:
        rows = self.db.execute(f"SELECT {CHUNK_SELECT} FROM chunks ORDER BY vec_id")
        return [cast(typed.ChunkRow, dict(r)) for r in rows]

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def entity_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM entities").fetchone()[0])

    # -- filters -----------------------------------------------------------------------------
    def filter_conditions(
        self,
        alias: str,
        *,
        languages: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        entity_ids: Sequence[str] | None = None,
        agreement_type: str | None = None,
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions on a table with ``doc_id``, ``language`` and ``published`` columns
        (documents, or PostgreSQL's chunks with their copies): the search filters as a WHERE clause."""
        where: list[str] = []
        params: list[Any] = []
        if languages:
            cond, values = self._any(f"{alias}.language", languages)
            where.append(cond)
            params.extend(values)
        if since:
            where.append(f"{alias}.published >= ?")
            params.append(since)
        if until:
            where.append(f"{alias}.published <= ?")
            params.append(until)
        if entity_ids is not None:
            cond, values = self._any("entity_id", entity_ids)
            where.append(f"{alias}.doc_id IN (SELECT doc_id FROM mentions WHERE {cond})")
            params.extend(values)
        if agreement_type:
            where.append(f"{alias}.doc_id IN (SELECT doc_id FROM agreements WHERE type = ?)")
            params.append(agreement_type)
        return where, params

    def filter_doc_ids(
        self,
        *,
        languages: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        entity_ids: Sequence[str] | None = None,
        agreement_type: str | None = None,
    ) -> set[str]:
        """Documents that pass every filter (applied before ranking)."""
        where, params = self.filter_conditions(
            "d",
            languages=languages,
            since=since,
            until=until,
            entity_ids=entity_ids,
            agreement_type=agreement_type,
        )
        sql = "SELECT d.doc_id FROM documents d" + (" WHERE " + " AND ".join(where) if where else "")
        return {r[0] for r in self.db.execute(sql, params)}

    # -- runs --------------------------------------------------------------------------------
    def finish_run(self, run_id: int, report: Mapping[str, typed.Json], status: str = "finished") -> None:
        self.db.execute(
            "UPDATE runs SET finished = ?, report = ?, status = ? WHERE run_id = ?",
            (now(), json.dumps(report, ensure_ascii=False), status, run_id),
        )
        self.db.commit()

    def runs(self, limit: int = 20) -> list[typed.RunRow]:
        rows = self.db.execute(f"SELECT {RUN_SELECT} FROM runs ORDER BY run_id DESC LIMIT ?", (limit,))
        return [
            cast(typed.RunRow, {**dict(r), "report": json.loads(r["report"]) if r["report"] else None})
            for r in rows
        ]

    def last_run(self) -> typed.RunRow | None:
        runs = self.runs(1)
        return runs[0] if runs else None


class Store(StoreQueries):
    """The embedded store in ``<data_dir>/defintel.sqlite3``."""

    db: sqlite3.Connection
    schema = MIGRATIONS
    renamed = RENAMED

    def __init__(self, data_dir: Path, *, readonly: bool = False) -> None:
        self.path = data_dir / DB_NAME
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise UsageError(f"no defintel store in {data_dir} (run `defintel ingest` first)")
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            # Autocommit; multi-statement units of work use atomic() with an explicit BEGIN.
            self.db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the store in {data_dir}: {exc}") from None
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        if readonly:
            # Readers (search, documents, the app, ingest workers) can never change the store.
            self.db.execute("PRAGMA query_only = ON")
        else:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.migrate()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.rollback()
            raise
        else:
            self.db.commit()

    def close(self) -> None:
        self.db.close()

    # -- chunks ---------------------------------------------------------------------------
    def replace_chunks(
        self, doc_id: str, chunks: Sequence[Chunk], vectors: Vectors | None = None
    ) -> tuple[list[int], list[int]]:
        """Store a document's chunks; return (vector ids removed, vector ids added). The vectors
        live in the FAISS index beside the store (``VectorIndex.add`` after the commit), not here."""
        old = [r[0] for r in self.db.execute("SELECT vec_id FROM chunks WHERE doc_id = ?", (doc_id,))]
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        new = [vec_id(c.chunk_id) for c in chunks]
        self.db.executemany(
            f"INSERT INTO chunks ({CHUNK_SELECT}) VALUES (?,?,?,?,?,?,?)",
            [
                (c.chunk_id, c.doc_id, c.n, v, c.text, c.start, c.end)
                for c, v in zip(chunks, new, strict=True)
            ],
        )
        return old, new

    # -- runs -----------------------------------------------------------------------------
    def start_run(self) -> int:
        """Record a new run; earlier runs that never finished (killed) are marked interrupted.

        Callers hold the data-dir lock, so no other run can be in progress."""
        self.db.execute(
            "UPDATE runs SET status = 'interrupted' WHERE finished IS NULL AND COALESCE(status, '') != 'interrupted'"
        )
        cur = self.db.execute(
            "INSERT INTO runs (started, status, pid) VALUES (?, 'running', ?)", (now(), os.getpid())
        )
        self.db.commit()
        return int(cur.lastrowid or 0)

    # -- crawl frontier -------------------------------------------------------------------
    def frontier_insert(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
        """Add (url, source, kind, lastmod) rows as pending; known URLs are left as they are."""
        ts = now()
        self.db.executemany(
            """INSERT OR IGNORE INTO frontier (url, source, kind, lastmod, status, attempts, first_seen, updated_at)
               VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)""",
            [(*row, ts, ts) for row in rows],
        )

    def content_hashes(self) -> list[tuple[str, str]]:
        cur = self.db.cursor()
        cur.row_factory = None  # plain tuples, fetched in C: this runs before every search snapshot load
        return cur.execute("SELECT doc_id, content_hash FROM documents ORDER BY doc_id").fetchall()


def vec_id(chunk_id: str) -> int:
    """A stable signed 63-bit FAISS id derived from the chunk id."""
    return int(chunk_id[:15], 16)
