"""The storage backends behind one typed seam (``protocols.py``), and which one the settings pick.

``open_store(settings)`` returns the embedded SQLite store (``<data_dir>/defintel.sqlite3``,
``pipeline/backend/sqlite.py``) or the PostgreSQL store (``pipeline/backend/pg/``), picked by ``[store] backend`` /
``--store`` / ``DEFINTEL_DATABASE_URL`` (``pipeline.config``); ``open_vectors`` and
``open_searcher`` give the matching vector index and searcher. Callers see only the Protocols;
PostgreSQL modules (psycopg, pgvector) are imported only when that backend is picked.

The SQL both backends share is written once (``pipeline.backend.sqlite.StoreQueries`` and the migration
texts with ``SQLITE_TYPES`` / ``PG_TYPES``); each backend overrides only its dialect's hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pipeline.backend.protocols import RunCoordinator, Searcher, Store, VectorIndex
from pipeline.config import Settings, store_backend

if TYPE_CHECKING:
    from pipeline.config import CrawlSettings
    from pipeline.index.embedders import Embedder

__all__ = [
    "RunCoordinator",
    "Searcher",
    "Store",
    "VectorIndex",
    "is_postgres",
    "open_coordinator",
    "open_searcher",
    "open_store",
    "open_vectors",
]


def is_postgres(store: object) -> bool:
    return bool(getattr(store, "is_postgres", False))


def open_store(settings: Settings, *, readonly: bool | None = None) -> Store:
    """The store the settings pick. ``readonly=None``: read-only when the embedded store does not
    exist yet (as the CLI's read commands have always opened it); a PostgreSQL store is then opened
    read-only too (pooled connections that refuse writes), which is what ``search``, ``documents``,
    ``entities``, ``export-graph`` and the app need."""
    if store_backend(settings) == "postgres":
        from pipeline.backend.pg.store import PgStore

        return PgStore(
            settings.store.database_url,
            readonly=bool(readonly),
            pool_size=settings.store.pool_size,
        )
    from pipeline.backend.sqlite import DB_NAME
    from pipeline.backend.sqlite import Store as SqliteStore

    if readonly is None:
        readonly = not (settings.data_path / DB_NAME).exists()
    return SqliteStore(settings.data_path, readonly=readonly)


def open_vectors(settings: Settings, store: Store, embedder: Embedder) -> VectorIndex:
    """The vector index that goes with ``store``: FAISS in the data dir, or the chunks' pgvector column."""
    if is_postgres(store):
        from pipeline.backend.pg.store import PgStore
        from pipeline.backend.pg.vectors import PgVectorIndex

        return PgVectorIndex(cast(PgStore, store), embedder.name, embedder.dim)
    from pipeline.index.search import index_dir
    from pipeline.index.vectors import VectorIndex as FaissIndex

    return FaissIndex.load(index_dir(settings), embedder.name, embedder.dim)


def open_searcher(
    settings: Settings, store: Store, embedder: Embedder | None = None, *, one_shot: bool = False
) -> Searcher:
    """The searcher for ``store``'s backend (same ``search(query, k, filters)`` on both).
    ``one_shot``: a process answering one query (the CLI)."""
    if is_postgres(store):
        from pipeline.backend.pg.search import PgSearcher
        from pipeline.backend.pg.store import PgStore

        return PgSearcher(settings, cast(PgStore, store), embedder, one_shot=one_shot)
    from pipeline.backend.sqlite import Store as SqliteStore
    from pipeline.index.search import Searcher as EmbeddedSearcher

    return EmbeddedSearcher(settings, cast(SqliteStore, store), embedder, one_shot=one_shot)


def open_coordinator(settings: Settings, store: Store, policy: CrawlSettings) -> RunCoordinator:
    """How an ingest run over ``store`` shares it: alone, holding the data dir's lock (embedded), or
    as one worker of a PostgreSQL crawl, through leases."""
    if is_postgres(store):
        from pipeline.backend.pg.coordinator import LeaseCoordinator
        from pipeline.backend.pg.store import PgStore

        return LeaseCoordinator(settings, cast(PgStore, store), policy)
    from pipeline.ingest.local import LocalCoordinator

    return LocalCoordinator(settings, store, policy)


if TYPE_CHECKING:  # both backends implement the whole seam (checked by mypy --strict)
    from pipeline.backend.pg.search import PgSearcher as _PgSearcher
    from pipeline.backend.pg.store import PgStore as _PgStore
    from pipeline.backend.pg.vectors import PgVectorIndex as _PgVectorIndex
    from pipeline.backend.sqlite import Store as _SqliteStore
    from pipeline.index.search import Searcher as _EmbeddedSearcher
    from pipeline.index.vectors import VectorIndex as _FaissIndex

    def _sqlite_store(s: _SqliteStore) -> Store:
        return s

    def _postgres_store(s: _PgStore) -> Store:
        return s

    def _faiss_index(v: _FaissIndex) -> VectorIndex:
        return v

    def _pg_index(v: _PgVectorIndex) -> VectorIndex:
        return v

    def _embedded_searcher(s: _EmbeddedSearcher) -> Searcher:
        return s

    def _pg_searcher(s: _PgSearcher) -> Searcher:
        return s

    from pipeline.backend.pg.coordinator import LeaseCoordinator as _LeaseCoordinator
    from pipeline.ingest.local import LocalCoordinator as _LocalCoordinator

    def _local_run(c: _LocalCoordinator) -> RunCoordinator:
        return c

    def _leased_run(c: _LeaseCoordinator) -> RunCoordinator:
        return c
