"""The PostgreSQL store: the same public interface as the SQLite ``Store``, shared by many processes.

Method for method this mirrors ``pipeline/backend/sqlite.py`` (same arguments, same returned rows and JSON
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
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import psycopg

from pipeline.backend.pg.db import PgDb, connect_check
from pipeline.backend.pg.schema import (
    EMBEDDER_LOCK,
    EMBEDDING_DIM,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    MIGRATION_LOCK,
    MIGRATIONS,
    RENAMED,
)
from pipeline.backend.pg.terms import chunk_terms
from pipeline.backend.rows import TitledChunk
from pipeline.backend.sqlite import AGREEMENT_UPSERT as AGREEMENT_UPSERT  # shared SQL, used by migrate.py
from pipeline.backend.sqlite import CHUNK_SELECT, StoreQueries, vec_id
from pipeline.backend.sqlite import ENTITY_UPSERT as ENTITY_UPSERT
from pipeline.backend.sqlite import FRONTIER_SELECT as FRONTIER_SELECT
from pipeline.backend.sqlite import table_counts as table_counts
from pipeline.clock import now
from pipeline.config import redact_dsn
from pipeline.errors import UsageError
from pipeline.records import Analysis, Chunk

if TYPE_CHECKING:
    from pipeline.backend.protocols import Vectors

log = logging.getLogger(__name__)


def vector_literal(v: Sequence[float] | npt.NDArray[Any]) -> str:
    """pgvector's text form; ``repr`` of a float round-trips, so no precision is lost."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32)) + "]"


def parse_vector(text: str) -> Vectors:
    return np.asarray(json.loads(text), dtype=np.float32)


class PgStore(StoreQueries):
    """The store in a PostgreSQL database (with the pgvector extension)."""

    is_postgres = True
    db: PgDb
    name_collation = ' COLLATE "C"'
    schema = MIGRATIONS  # pg_ migrations, then the shared_ ones
    renamed = RENAMED

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
    @contextmanager
    def _migrating(self) -> Iterator[None]:
        # Workers starting together: one migrates, the others wait here and find it done.
        with self.atomic():
            self.db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            yield

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

    # -- dialect hooks --------------------------------------------------------------------
    def _any(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def _after_document(self, analysis: Analysis) -> None:
        # Chunks carry the document's language and date for filtering: keep them in step.
        d = analysis.document
        self.db.execute(
            "UPDATE chunks SET language = ?, published = ? WHERE doc_id = ?",
            (d.language, d.published, d.doc_id),
        )

    def serialize(self, lock: int | None) -> None:
        if lock is not None:
            self.db.execute("SELECT pg_advisory_xact_lock(?)", (lock,))

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

    def chunks_without_vectors(self) -> list[TitledChunk]:
        """Chunks stored without their vector (a worker killed between the two, before the vector
        was written in the chunk's own transaction), with their document's title."""
        rows = self.db.execute(
            f"""SELECT {", ".join("c." + c.strip() for c in CHUNK_SELECT.split(","))}, d.title FROM chunks c
                JOIN documents d USING (doc_id) WHERE c.embedding IS NULL ORDER BY c.vec_id"""
        )
        return [cast(TitledChunk, dict(r)) for r in rows]

    def chunk_texts(self, vec_ids: Sequence[int]) -> dict[int, str]:
        rows = self.db.execute(
            "SELECT vec_id, text FROM chunks WHERE vec_id = ANY(?)", ([int(v) for v in vec_ids],)
        )
        return {int(r[0]): r[1] for r in rows}

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

    # -- crawl frontier -------------------------------------------------------------------
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


CHUNK_INSERT = """INSERT INTO chunks (chunk_id, doc_id, n, vec_id, text, start, "end", language, published,
       terms, n_terms, tf, embedding)
   VALUES (?,?,?,?,?,?,?,?,?,?::tsvector,?,?::jsonb,?::vector)
   ON CONFLICT (chunk_id) DO UPDATE SET doc_id=excluded.doc_id, n=excluded.n, vec_id=excluded.vec_id,
       text=excluded.text, start=excluded.start, "end"=excluded."end", language=excluded.language,
       published=excluded.published, terms=excluded.terms, n_terms=excluded.n_terms, tf=excluded.tf,
       embedding=COALESCE(excluded.embedding, chunks.embedding)"""
