"""The PostgreSQL store: the same public interface as the SQLite ``Store``, shared by many processes.

Method for method this mirrors ``pipeline/store.py`` (same arguments, same returned rows and JSON
fields), so the ingest run, the CLI, the app and the graph export work on either backend. The
differences are PostgreSQL's: upserts are ``ON CONFLICT``; migrations run under an advisory lock so
workers starting together do not race; chunks carry their vector, BM25 terms and the document's
language and publication date (see ``schema.py``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import psycopg

from pipeline.clock import now
from pipeline.config import redact_dsn
from pipeline.errors import UsageError
from pipeline.pg.db import PgDb, connect_check
from pipeline.pg.schema import (
    EMBEDDER_LOCK,
    EMBEDDING_DIM,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    MIGRATION_LOCK,
    MIGRATIONS,
)
from pipeline.pg.terms import chunk_terms
from pipeline.records import Analysis, Chunk, Entity
from pipeline.store import StoreQueries, vec_id

log = logging.getLogger(__name__)

# The SQLite frontier's columns, in its order: rows read back are the same dicts on both backends.
FRONTIER_SELECT = (
    "url, source, status, attempts, next_try, last_error, etag, last_modified, final_url, doc_id, "
    "updated_at, kind, lastmod, fetched_at, http_status, first_seen"
)
CHUNK_SELECT = 'chunk_id, doc_id, n, vec_id, text, start, "end"'
Vectors = npt.NDArray[np.float32]


def vector_literal(v: Sequence[float] | npt.NDArray[Any]) -> str:
    """pgvector's text form; ``repr`` of a float round-trips, so no precision is lost."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32)) + "]"


def parse_vector(text: str) -> Vectors:
    return np.asarray(json.loads(text), dtype=np.float32)


class PgStore(StoreQueries):
    """The store in a PostgreSQL database (with the pgvector extension)."""

    is_postgres = True
    db: PgDb

    def __init__(self, dsn: str, *, readonly: bool = False, pool_size: int = 4) -> None:
        self.dsn = dsn
        self.path = redact_dsn(dsn)  # what messages show where the SQLite store shows its file
        self.readonly = readonly
        connect_check(dsn)
        if not readonly:
            self._create_extension()
        self.db = PgDb(dsn, readonly=readonly, pool_size=pool_size)
        if readonly:
            if not self._has_schema():
                self.db.close()
                raise UsageError(
                    f"no defintel schema in {self.path} (run `defintel migrate` or ingest first)"
                )
        else:
            self.migrate()

    def _create_extension(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.UniqueViolation:
            pass  # another process created it at the same moment
        except psycopg.Error as exc:
            raise UsageError(f"cannot enable pgvector in {self.path}: {str(exc).strip()}") from None

    def _has_schema(self) -> bool:
        row = self.db.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        return bool(row and row[0])

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self.atomic():
            self.db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            self.db.execute(
                'CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT COLLATE "C" PRIMARY KEY, applied_at TEXT)'
            )
            done = {r[0] for r in self.db.execute("SELECT name FROM schema_migrations")}
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now()))
                applied.append(name)
                log.info("applied migration %s", name)
        return applied

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all."""
        with self.db.transaction():
            yield

    def close(self) -> None:
        self.db.close()

    # -- the vector column ----------------------------------------------------------------
    def embedding_dim(self) -> int:
        row = self.db.execute(
            """SELECT atttypmod FROM pg_attribute
               WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"""
        ).fetchone()
        return int(row[0]) if row else EMBEDDING_DIM

    def embedder(self) -> tuple[str, int] | None:
        """(name, dimension) of the embedder the stored vectors came from, if any was recorded."""
        rows: dict[str, str] = dict(
            self.db.execute("SELECT key, value FROM store_meta WHERE key IN ('embedder', 'dim')")
        )
        if "embedder" not in rows:
            return None
        return rows["embedder"], int(rows["dim"])

    def _recorded(self, name: str, dim: int) -> bool:
        """Whether an embedder is recorded; a different one than (name, dim) is an error."""
        known = self.embedder()
        if known is None:
            return False
        if known != (name, dim):
            raise UsageError(
                f"the vectors in {self.path} come from embedder {known[0]!r} (dim {known[1]}), "
                f"not {name!r} (dim {dim}): use the same embedder or a fresh database"
            )
        return True

    def ensure_embedder(self, name: str, dim: int) -> None:
        """Record the embedder on first use (resizing the empty vector column to its dimension);
        refuse another one later, as the FAISS index refuses vectors of another embedder."""
        if self._recorded(name, dim) or self.readonly:
            return
        with self.atomic():
            # Workers starting together: one resizes the column, the others wait here and then find
            # the embedder recorded (without the lock their DROP INDEX / ALTER TABLE deadlock).
            self.db.execute("SELECT pg_advisory_xact_lock(?)", (EMBEDDER_LOCK,))
            if self._recorded(name, dim):
                return
            if self.embedding_dim() != dim:
                filled = self.db.execute(
                    "SELECT 1 FROM chunks WHERE embedding IS NOT NULL LIMIT 1"
                ).fetchone()
                if filled:
                    raise UsageError(f"the vector column in {self.path} holds vectors of another dimension")
                self.db.execute("DROP INDEX IF EXISTS chunks_embedding")
                self.db.execute(f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({int(dim)})")
                self.db.execute("ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE PLAIN")
                self.db.execute(
                    f"""CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)
                        WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"""
                )
            self.db.execute(
                """INSERT INTO store_meta (key, value) VALUES ('embedder', ?), ('dim', ?)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
                (name, str(dim)),
            )

    def set_vectors(self, ids: Sequence[int], vectors: Vectors) -> int:
        """Store the vectors of these chunks (by vec_id); returns how many chunk rows took one."""
        if len(ids) == 0:
            return 0
        return self.db.executemany(
            "UPDATE chunks SET embedding = ?::vector WHERE vec_id = ?",
            [(vector_literal(v), int(i)) for i, v in zip(ids, vectors, strict=True)],
        )

    def clear_vectors(self, ids: Iterable[int]) -> int:
        arr = [int(i) for i in ids]
        if not arr:
            return 0
        return self.db.execute(
            "UPDATE chunks SET embedding = NULL WHERE vec_id = ANY(?) AND embedding IS NOT NULL", (arr,)
        ).rowcount

    def vector_ids(self) -> set[int]:
        return {int(r[0]) for r in self.db.execute("SELECT vec_id FROM chunks WHERE embedding IS NOT NULL")}

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[list[int], Vectors]:
        """(vec_ids, matrix) of stored vectors (all, or these ids), ordered by vec_id."""
        sql = "SELECT vec_id, embedding::text FROM chunks WHERE embedding IS NOT NULL"
        params: tuple[Any, ...] = ()
        if ids is not None:
            sql += " AND vec_id = ANY(?)"
            params = ([int(i) for i in ids],)
        rows = self.db.execute(sql + " ORDER BY vec_id", params).rows
        dim = self.embedding_dim()
        if not rows:
            return [], np.zeros((0, dim), dtype=np.float32)
        return [int(r[0]) for r in rows], np.stack([parse_vector(r[1]) for r in rows])

    # -- documents ------------------------------------------------------------------------
    def minhashes(self, exclude: str) -> Iterator[tuple[str, bytes, str | None]]:
        for r in self.db.execute(
            "SELECT doc_id, minhash, published FROM documents WHERE minhash IS NOT NULL AND doc_id != ?",
            (exclude,),
        ):
            yield r[0], bytes(r[1]), r[2]

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
            """INSERT INTO documents (doc_id, url, source, language, html_lang, title, published, author, text,
                   content_hash, text_hash, minhash, duplicate_of, first_seen, last_seen)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(doc_id) DO UPDATE SET url=excluded.url, source=excluded.source,
                   language=excluded.language, html_lang=excluded.html_lang, title=excluded.title,
                   published=excluded.published, author=excluded.author, text=excluded.text,
                   content_hash=excluded.content_hash, text_hash=excluded.text_hash, minhash=excluded.minhash,
                   duplicate_of=excluded.duplicate_of, last_seen=excluded.last_seen""",
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
        # Chunks carry the document's language and date for filtering: keep them in step.
        self.db.execute(
            "UPDATE chunks SET language = ?, published = ? WHERE doc_id = ?",
            (d.language, d.published, d.doc_id),
        )
        self.db.execute("DELETE FROM mentions WHERE doc_id = ?", (d.doc_id,))
        self.db.executemany(
            """INSERT INTO mentions (doc_id, start, "end", text, label, entity_id) VALUES (?,?,?,?,?,?)
               ON CONFLICT (doc_id, start, "end") DO UPDATE SET text = excluded.text, label = excluded.label,
                   entity_id = excluded.entity_id""",
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

    def document_meta(self, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not doc_ids:
            return {}
        rows = self.db.execute(
            "SELECT doc_id, url, title, language, published FROM documents WHERE doc_id = ANY(?)",
            (list(doc_ids),),
        )
        return {r["doc_id"]: dict(r) for r in rows}

    def agreements(self, doc_id: str | None = None) -> list[dict[str, Any]]:
        sql = """SELECT a.*, d.url, d.title, d.language, d.published FROM agreements a
                 JOIN documents d USING (doc_id)"""
        params: tuple[str, ...] = ()
        if doc_id is not None:
            sql += " WHERE a.doc_id = ?"
            params = (doc_id,)
        out = []
        # SQLite sorts NULL dates first; PostgreSQL last unless told.
        for r in self.db.execute(sql + " ORDER BY d.published NULLS FIRST, a.evidence_start", params):
            row = dict(r)
            row["parties"] = json.loads(row["parties"])
            row["party_ids"] = json.loads(row["party_ids"])
            out.append(row)
        return out

    # -- chunks ---------------------------------------------------------------------------
    def replace_chunks(
        self, doc_id: str, chunks: Sequence[Chunk], vectors: Vectors | None = None
    ) -> tuple[list[int], list[int]]:
        """Store a document's chunks (with their vectors when given); return (vector ids removed, added)."""
        old = [int(r[0]) for r in self.db.execute("SELECT vec_id FROM chunks WHERE doc_id = ?", (doc_id,))]
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        new = [vec_id(c.chunk_id) for c in chunks]
        doc = self.db.execute(
            "SELECT language, published, title FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        language, published, title = (doc[0], doc[1], doc[2]) if doc else ("", None, "")
        rows = []
        for i, (c, v) in enumerate(zip(chunks, new, strict=True)):
            terms, n_terms, tf = chunk_terms(title, c.text)
            emb = None if vectors is None else vector_literal(vectors[i])
            rows.append(
                (
                    c.chunk_id,
                    c.doc_id,
                    c.n,
                    v,
                    c.text,
                    c.start,
                    c.end,
                    language,
                    published,
                    terms,
                    n_terms,
                    tf,
                    emb,
                )
            )
        self.db.executemany(CHUNK_INSERT, rows)
        return old, new

    def chunks_without_vectors(self) -> list[dict[str, Any]]:
        """Chunks stored without their vector (a worker killed between the two, before the vector
        was written in the chunk's own transaction), with their document's title."""
        rows = self.db.execute(
            f"""SELECT {", ".join("c." + c.strip() for c in CHUNK_SELECT.split(","))}, d.title FROM chunks c
                JOIN documents d USING (doc_id) WHERE c.embedding IS NULL ORDER BY c.vec_id"""
        )
        return [dict(r) for r in rows]

    def chunks(self) -> list[dict[str, Any]]:
        rows = self.db.execute(f"SELECT {CHUNK_SELECT} FROM chunks ORDER BY vec_id")
        return [dict(r) for r in rows]

    def chunk_texts(self, vec_ids: Sequence[int]) -> dict[int, str]:
        rows = self.db.execute(
            "SELECT vec_id, text FROM chunks WHERE vec_id = ANY(?)", ([int(v) for v in vec_ids],)
        )
        return {int(r[0]): r[1] for r in rows}

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])  # type: ignore[index]

    # -- filters --------------------------------------------------------------------------
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
        where, params = filter_conditions(
            "d",
            languages=languages,
            since=since,
            until=until,
            entity_ids=entity_ids,
            agreement_type=agreement_type,
        )
        sql = "SELECT d.doc_id FROM documents d" + (" WHERE " + " AND ".join(where) if where else "")
        return {r[0] for r in self.db.execute(sql, params)}

    # -- runs -----------------------------------------------------------------------------
    def start_run(self) -> int:
        """Record a new run. Unlike the SQLite store (one run per data dir), several workers may be
        running at once, so earlier unfinished runs are not marked interrupted here: a killed worker's
        run stays ``running`` (its URLs are recovered through the frontier leases)."""
        row = self.db.execute(
            "INSERT INTO runs (started, status, pid) VALUES (?, 'running', ?) RETURNING run_id",
            (now(), os.getpid()),
        ).fetchone()
        return int(row[0]) if row else 0

    def finish_run(self, run_id: int, report: dict[str, Any], status: str = "finished") -> None:
        self.db.execute(
            "UPDATE runs SET finished = ?, report = ?, status = ? WHERE run_id = ?",
            (now(), json.dumps(report, ensure_ascii=False), status, run_id),
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        # The SQLite store's columns (workers' lease columns stay internal: the app shows the same rows).
        rows = self.db.execute(
            "SELECT run_id, started, finished, report, status, pid FROM runs ORDER BY run_id DESC LIMIT ?",
            (limit,),
        )
        return [{**dict(r), "report": json.loads(r["report"]) if r["report"] else None} for r in rows]

    # -- crawl frontier -------------------------------------------------------------------
    def frontier_rows(self, urls: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self.db.execute(f"SELECT {FRONTIER_SELECT} FROM frontier WHERE url = ANY(?)", (list(urls),))
        return {r["url"]: dict(r) for r in rows}

    def frontier_insert(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
        """Add (url, source, kind, lastmod) rows as pending; known URLs are left as they are.

        Inserted in URL order: workers offering overlapping lists at once then take the unique
        index's locks in one order and cannot deadlock."""
        ts = now()
        rows = sorted(rows, key=lambda r: r[0])
        self.db.executemany(
            """INSERT INTO frontier (url, source, kind, lastmod, host, status, attempts, first_seen, updated_at)
               VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (url) DO NOTHING""",
            [(*row, urlsplit(row[0]).netloc.lower(), ts, ts) for row in rows],
        )

    def frontier_due(self, sources: Sequence[str], at: str) -> list[dict[str, Any]]:
        if not sources:
            return []
        rows = self.db.execute(
            f"""SELECT {FRONTIER_SELECT} FROM frontier WHERE source = ANY(?)
                AND status IN ('pending', 'retry', 'blocked') AND (next_try IS NULL OR next_try <= ?)
                ORDER BY first_seen, url""",
            (list(sources), at),
        )
        return [dict(r) for r in rows]

    def frontier_requeue(self, source: str, kind: str) -> int:
        cur = self.db.execute(
            "UPDATE frontier SET status = 'pending', updated_at = ? WHERE source = ? AND kind = ? AND status = 'done'",
            (now(), source, kind),
        )
        return int(cur.rowcount)

    def frontier_counts(self, sources: Sequence[str] | None = None) -> dict[str, int]:
        sql = "SELECT status, COUNT(*) FROM frontier"
        params: list[Any] = []
        if sources is not None:
            sql += " WHERE source = ANY(?)"
            params = [list(sources)]
        return {r[0]: int(r[1]) for r in self.db.execute(sql + " GROUP BY status", params)}

    # -- counts (migrate, status) ---------------------------------------------------------
    def counts(self) -> dict[str, int]:
        return table_counts(self.db)


def table_counts(db: Any) -> dict[str, int]:
    """Rows per table and stored vectors: what ``defintel migrate`` compares on both sides."""
    out = {}
    for table in ("documents", "chunks", "entities", "mentions", "agreements", "runs", "frontier"):
        out[table] = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    return out


def filter_conditions(
    alias: str,
    *,
    languages: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    entity_ids: Sequence[str] | None = None,
    agreement_type: str | None = None,
) -> tuple[list[str], list[Any]]:
    """SQL conditions (``?`` placeholders) on a table with ``doc_id``, ``language`` and ``published``
    columns (documents, or chunks with their copies): the search filters as a WHERE clause."""
    where: list[str] = []
    params: list[Any] = []
    if languages:
        where.append(f"{alias}.language = ANY(?)")
        params.append(list(languages))
    if since:
        where.append(f"{alias}.published >= ?")
        params.append(since)
    if until:
        where.append(f"{alias}.published <= ?")
        params.append(until)
    if entity_ids is not None:
        where.append(f"{alias}.doc_id IN (SELECT doc_id FROM mentions WHERE entity_id = ANY(?))")
        params.append(list(entity_ids))
    if agreement_type:
        where.append(f"{alias}.doc_id IN (SELECT doc_id FROM agreements WHERE type = ?)")
        params.append(agreement_type)
    return where, params


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

CHUNK_INSERT = """INSERT INTO chunks (chunk_id, doc_id, n, vec_id, text, start, "end", language, published,
       terms, n_terms, tf, embedding)
   VALUES (?,?,?,?,?,?,?,?,?,?::tsvector,?,?::jsonb,?::vector)
   ON CONFLICT (chunk_id) DO UPDATE SET doc_id=excluded.doc_id, n=excluded.n, vec_id=excluded.vec_id,
       text=excluded.text, start=excluded.start, "end"=excluded."end", language=excluded.language,
       published=excluded.published, terms=excluded.terms, n_terms=excluded.n_terms, tf=excluded.tf,
       embedding=COALESCE(excluded.embedding, chunks.embedding)"""
