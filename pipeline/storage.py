"""Which store backend the settings pick, and the interface both backends implement.

``open_store(settings)`` returns the embedded SQLite ``Store`` (``<data_dir>/defintel.sqlite3``) or
the PostgreSQL ``PgStore`` (``[store] backend`` / ``--store`` / ``DEFINTEL_DATABASE_URL``, see
``pipeline.config``); ``open_vectors`` and ``open_searcher`` give the matching vector index and
searcher. PostgreSQL modules (psycopg, pgvector) are imported only when that backend is picked.

``StoreProtocol`` is the public surface of a store; mypy checks both classes against it below.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.config import Settings, store_backend
from pipeline.records import Analysis, Chunk, Entity
from pipeline.store import DB_NAME, Store

if TYPE_CHECKING:
    from pipeline.index.embedders import Embedder
    from pipeline.pg.store import PgStore


class StoreProtocol(Protocol):
    db: Any

    def migrate(self) -> list[str]: ...
    def migrations(self) -> list[str]: ...
    def atomic(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...
    def document_state(self, doc_id: str) -> tuple[str, str | None] | None: ...
    def touch(self, doc_id: str) -> None: ...
    def find_by_text_hash(self, text_hash: str, exclude: str) -> str | None: ...
    def minhashes(self, exclude: str) -> Iterator[tuple[str, bytes, str | None]]: ...
    def save_analysis(
        self, analysis: Analysis, *, text_hash: str, minhash: bytes | None, duplicate_of: str | None
    ) -> None: ...
    def upsert_entities(self, entities: Iterable[Entity]) -> None: ...
    def documents(self) -> list[dict[str, Any]]: ...
    def document(self, doc_id: str) -> dict[str, Any] | None: ...
    def document_meta(self, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def mentions(self, doc_id: str) -> list[dict[str, Any]]: ...
    def agreements(self, doc_id: str | None = None) -> list[dict[str, Any]]: ...
    def entities(self) -> list[dict[str, Any]]: ...
    def cooccurrences(self) -> list[tuple[str, str, str]]: ...
    def replace_chunks(self, doc_id: str, chunks: Sequence[Chunk]) -> tuple[list[int], list[int]]: ...
    def chunks(self) -> list[dict[str, Any]]: ...
    def chunk_count(self) -> int: ...
    def filter_doc_ids(
        self,
        *,
        languages: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        entity_ids: Sequence[str] | None = None,
        agreement_type: str | None = None,
    ) -> set[str]: ...
    def entity_ids_matching(self, normalized_names: set[str], normalize: Any) -> list[str]: ...
    def start_run(self) -> int: ...
    def finish_run(self, run_id: int, report: dict[str, Any], status: str = "finished") -> None: ...
    def runs(self, limit: int = 20) -> list[dict[str, Any]]: ...
    def last_run(self) -> dict[str, Any] | None: ...
    def frontier_rows(self, urls: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def frontier_row(self, url: str) -> dict[str, Any] | None: ...
    def frontier_insert(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None: ...
    def frontier_set(self, url: str, **fields: Any) -> None: ...
    def frontier_due(self, sources: Sequence[str], at: str) -> list[dict[str, Any]]: ...
    def frontier_requeue(self, source: str, kind: str) -> int: ...
    def frontier_counts(self, sources: Sequence[str] | None = None) -> dict[str, int]: ...


def is_postgres(store: object) -> bool:
    return bool(getattr(store, "is_postgres", False))


def open_store(settings: Settings, *, readonly: bool | None = None) -> Any:
    """The store the settings pick. ``readonly=None``: read-only when the embedded store does not
    exist yet (as the CLI's read commands have always opened it); a PostgreSQL store is then opened
    read-only too (pooled connections that refuse writes), which is what ``search``, ``documents``,
    ``entities``, ``export-graph`` and the app need."""
    if store_backend(settings) == "postgres":
        from pipeline.pg.store import PgStore

        return PgStore(
            settings.store.database_url,
            readonly=bool(readonly),
            pool_size=settings.store.pool_size,
        )
    if readonly is None:
        readonly = not (settings.data_path / DB_NAME).exists()
    return Store(settings.data_path, readonly=readonly)


def open_vectors(settings: Settings, store: Any, embedder: Embedder) -> Any:
    """The vector index that goes with ``store``: FAISS in the data dir, or the chunks' pgvector column."""
    if is_postgres(store):
        from pipeline.pg.vectors import PgVectorIndex

        return PgVectorIndex(store, embedder.name, embedder.dim)
    from pipeline.index.search import index_dir
    from pipeline.index.vectors import VectorIndex

    return VectorIndex.load(index_dir(settings), embedder.name, embedder.dim)


def pg_searcher(
    settings: Settings, store: Any, embedder: Embedder | None = None, *, one_shot: bool = False
) -> Any | None:
    """A PostgreSQL searcher when ``store`` is a PostgreSQL store, else None (use ``Searcher``).
    ``one_shot``: a process answering one query (the CLI), as for ``Searcher``."""
    if not is_postgres(store):
        return None
    from pipeline.pg.search import PgSearcher

    return PgSearcher(settings, store, embedder, one_shot=one_shot)


def open_searcher(
    settings: Settings, store: Any, embedder: Embedder | None = None, *, one_shot: bool = False
) -> Any:
    """The searcher for ``store``'s backend (same ``search(query, k, filters)`` on both)."""
    searcher = pg_searcher(settings, store, embedder, one_shot=one_shot)
    if searcher is not None:
        return searcher
    from pipeline.index.search import Searcher

    return Searcher(settings, store, embedder, one_shot=one_shot)


if TYPE_CHECKING:  # both backends implement the whole interface (checked by mypy --strict)

    def _sqlite_conforms(s: Store) -> StoreProtocol:
        return s

    def _postgres_conforms(s: PgStore) -> StoreProtocol:
        return s
