"""The vector index of a PostgreSQL store: the ``chunks.embedding`` column and its HNSW index.

Same surface as ``pipeline.index.vectors.VectorIndex`` where the ingest run uses it (``ids``,
``add``, ``remove``, ``count``, ``kind``, ``dirty``, ``save``, ``search``), so ``Ingestor.reconcile``
and ``store_batch`` work unchanged: vectors are written to the chunk rows as they are added, the HNSW
index is maintained by PostgreSQL, and ``save`` has nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pipeline.backend.pg.store import PgStore, vector_literal
from pipeline.backend.rows import TitledChunk

if TYPE_CHECKING:
    from pipeline.backend.protocols import Store

log = logging.getLogger(__name__)

IdArray = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


class PgVectorIndex:
    kind = "hnsw"

    def __init__(self, store: PgStore, embedder: str, dim: int) -> None:
        store.ensure_embedder(embedder, dim)
        self.store = store
        self.embedder = embedder
        self.dim = dim
        self.dirty = False  # every change is already in the database

    @property
    def count(self) -> int:
        row = self.store.db.execute("SELECT COUNT(*) FROM chunks WHERE embedding IS NOT NULL").fetchone()
        return int(row[0]) if row else 0

    def ids(self) -> set[int]:
        return self.store.vector_ids()

    def contents(self) -> tuple[IdArray, Vectors]:
        ids, matrix = self.store.vectors()
        return np.asarray(ids, dtype=np.int64), matrix

    def add(self, ids: Sequence[int], vectors: Vectors) -> None:
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)}x{self.dim} vectors, got {vectors.shape}")
        self.store.set_vectors(ids, vectors)

    def remove(self, ids: Iterable[int]) -> int:
        # Chunk rows removed by replace_chunks took their vectors with them; this clears the rest.
        return self.store.clear_vectors(ids)

    def search(
        self, query: Vectors, k: int, allowed: Sequence[int] | IdArray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (vec_id, cosine) by the HNSW index, among ``allowed`` vec_ids when given."""
        if k <= 0:
            return []
        sql = "SELECT vec_id, 1 - (embedding <=> ?::vector) FROM chunks WHERE embedding IS NOT NULL"
        params: list[Any] = [vector_literal(query.reshape(-1))]
        if allowed is not None:
            sql += " AND vec_id = ANY(?)"
            params.append([int(i) for i in allowed])
        sql += " ORDER BY embedding <=> ?::vector LIMIT ?"
        params += [params[0], int(k)]
        return [(int(r[0]), float(r[1])) for r in self.store.db.execute(sql, params)]

    stored_with_chunks = True  # written in their chunk rows' transaction (replace_chunks)

    def unindexed(self, store: Store) -> tuple[set[int], list[TitledChunk]]:
        """Only chunks stored by an older version without their vector can lack one; nothing
        else (other workers' chunks) is read."""
        return set(), self.store.chunks_without_vectors()

    def save(self, root: Path | None = None) -> None:
        self.dirty = False

    def config(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "dimension": self.dim,
            "metric": "cosine",
            "count": self.count,
            "kind": self.kind,
            "backend": "pgvector",
        }
