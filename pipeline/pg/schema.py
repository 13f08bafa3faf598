"""The PostgreSQL schema: named migrations, applied in order, recorded in ``schema_migrations``.

Tables and columns mirror the SQLite store (``pipeline/store.py``) so every query and every JSON
field is the same on both backends; text columns use the ``C`` collation so ``ORDER BY`` sorts as
SQLite does (by code point), whatever the database's locale. What PostgreSQL adds:

* ``chunks.embedding vector(384)`` with an HNSW index (``vector_cosine_ops``): the vector index
  lives in the table, so several workers and the app share it. The dimension follows the embedder
  the store is first used with (``PgStore.ensure_embedder``); 384 is multilingual-e5-small's.
* ``chunks.terms tsvector`` with a GIN index: the BM25 terms of ``pipeline.index.search`` (tr/az
  folding, stopwords, prefix stems) computed in Python and stored verbatim, so lexical search uses
  the very terms the embedded BM25 index uses; ``n_terms`` is the BM25 document length and ``tf`` (migration 0003) the term counts.
* ``chunks.language`` / ``chunks.published`` copied from the document, so search filters are
  conditions on the chunk rows the vector and text indexes scan.
* ``frontier.leased_by`` / ``lease_until`` for workers sharing the crawl frontier, ``crawl_hosts``
  for per-host leases, and (0005) leased runs grouped into crawls (``runs.gen``, ``frontier.gen``).

Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

from pipeline.store import AGREEMENT_KEY
from pipeline.store_deals import DEALS_STORIES_SQL

T = 'TEXT COLLATE "C"'
EMBEDDING_DIM = 384
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
# Concurrent processes serialise on this advisory lock while they migrate.
MIGRATION_LOCK = 0x0DEF1E7
# The other advisory locks, beside it so that no two share a key: recording the embedder (resizing
# the vector column) and refreshing the searcher's statistics.
EMBEDDER_LOCK = 0x0DEF1E8
STATS_LOCK = 0x0DEF1E9
# Consolidating deals and stories (pipeline/consolidate.py): one worker at a time.
CONSOLIDATE_LOCK = 0x0DEF1EA

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        f"""
        CREATE TABLE documents (
            doc_id {T} PRIMARY KEY,
            url {T} NOT NULL,
            source {T} NOT NULL DEFAULT '',
            language {T} NOT NULL,
            html_lang {T},
            title {T} NOT NULL,
            published {T},
            author {T},
            text {T} NOT NULL,
            content_hash {T} NOT NULL,
            text_hash {T} NOT NULL,
            minhash BYTEA,
            duplicate_of {T},
            first_seen {T} NOT NULL,
            last_seen {T} NOT NULL
        );
        CREATE INDEX documents_text_hash ON documents(text_hash);
        CREATE INDEX documents_published ON documents(published);
        CREATE TABLE chunks (
            chunk_id {T} PRIMARY KEY,
            doc_id {T} NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            vec_id BIGINT NOT NULL UNIQUE,
            text {T} NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            language {T} NOT NULL DEFAULT '',
            published {T},
            terms TSVECTOR NOT NULL DEFAULT ''::tsvector,
            n_terms INTEGER NOT NULL DEFAULT 1,
            embedding vector({EMBEDDING_DIM})
        );
        CREATE INDEX chunks_doc ON chunks(doc_id);
        CREATE INDEX chunks_language_published ON chunks(language, published);
        CREATE INDEX chunks_terms ON chunks USING gin(terms);
        CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)
            WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION});
        CREATE TABLE entities (
            entity_id {T} PRIMARY KEY,
            label {T} NOT NULL,
            canonical {T} NOT NULL,
            aliases {T} NOT NULL DEFAULT '[]',
            qid {T},
            in_registry INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE mentions (
            doc_id {T} NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            text {T} NOT NULL,
            label {T} NOT NULL,
            entity_id {T} NOT NULL,
            PRIMARY KEY (doc_id, start, "end")
        );
        CREATE INDEX mentions_entity ON mentions(entity_id);
        CREATE TABLE agreements (
            agreement_id {T} PRIMARY KEY,
            doc_id {T} NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            type {T} NOT NULL,
            parties {T} NOT NULL,
            party_ids {T} NOT NULL,
            signed {T},
            amount DOUBLE PRECISION,
            currency {T},
            subject {T},
            quantity {T},
            local_content_pct DOUBLE PRECISION,
            evidence_text {T} NOT NULL,
            evidence_start INTEGER NOT NULL,
            evidence_end INTEGER NOT NULL
        );
        CREATE INDEX agreements_doc ON agreements(doc_id);
        CREATE INDEX agreements_type ON agreements(type);
        CREATE TABLE frontier (
            url {T} PRIMARY KEY,
            source {T} NOT NULL DEFAULT '',
            status {T} NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try {T},
            last_error {T},
            etag {T},
            last_modified {T},
            final_url {T},
            doc_id {T},
            updated_at {T} NOT NULL,
            kind {T} NOT NULL DEFAULT 'page',
            lastmod {T},
            fetched_at {T},
            http_status INTEGER,
            first_seen {T},
            host {T} NOT NULL DEFAULT '',
            leased_by {T},
            lease_until TIMESTAMPTZ
        );
        CREATE INDEX frontier_due ON frontier(status, next_try);
        CREATE INDEX frontier_source ON frontier(source, status);
        CREATE INDEX frontier_final ON frontier(final_url);
        CREATE INDEX frontier_lease ON frontier(host, lease_until);
        CREATE TABLE runs (
            run_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            started {T} NOT NULL,
            finished {T},
            report {T},
            status {T},
            pid INTEGER
        );
        CREATE TABLE store_meta (
            key {T} PRIMARY KEY,
            value {T} NOT NULL
        )
        """,
    ),
    (
        # Workers share the frontier: a host is leased to one worker at a time (pipeline/pg/leases.py).
        "0002_crawl_hosts",
        f"""
        CREATE TABLE crawl_hosts (
            host {T} PRIMARY KEY,
            leased_by {T},
            lease_until TIMESTAMPTZ,
            next_fetch TIMESTAMPTZ
        );
        CREATE INDEX frontier_leased_by ON frontier(leased_by) WHERE leased_by IS NOT NULL;
        CREATE INDEX crawl_hosts_leased_by ON crawl_hosts(leased_by) WHERE leased_by IS NOT NULL
        """,
    ),
    (
        # BM25 term frequencies per chunk (term → count), read by key instead of unnesting ``terms``;
        # vectors kept inside the row (pgvector's type defaults to out-of-line storage once a row
        # passes 2 kB: every distance computed from the table then fetched a TOAST tuple).
        "0003_chunk_term_frequencies",
        """
        ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE PLAIN;
        ALTER TABLE chunks ADD COLUMN tf JSONB NOT NULL DEFAULT '{}'::jsonb;
        UPDATE chunks SET tf = COALESCE(
            (SELECT jsonb_object_agg(lexeme, cardinality(positions)) FROM unnest(terms)), '{}'::jsonb)
        """,
    ),
    (
        # Per-language passage statistics for the searcher, kept with the vector counts they came from;
        # chunks numbered in insertion order.
        "0004_search_stats",
        f"""
        CREATE TABLE search_stats (
            language {T} PRIMARY KEY,
            n_vectors BIGINT NOT NULL,
            dim INTEGER NOT NULL,
            mean BYTEA,
            cov BYTEA,
            updated_at {T} NOT NULL
        );
        -- Insertion order of chunks: the searcher breaks equal scores by it, as the embedded one
        -- breaks them by the order vectors entered its index.
        ALTER TABLE chunks ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY
        """,
    ),
    (
        # Ingest workers sharing the frontier (pipeline/pg/leases.py): a run is leased like a URL
        # (renewed while its worker lives, so a killed worker's run is told from a live one), and
        # workers running together form one crawl, numbered ``gen`` (the run_id of its first run);
        # ``frontier.gen`` is the crawl that last settled a URL, so discovery URLs and local files,
        # looked at again on every crawl, are looked at once per crawl however many workers join it.
        "0005_shared_crawls",
        f"""
        ALTER TABLE runs ADD COLUMN worker {T};
        ALTER TABLE runs ADD COLUMN gen BIGINT;
        ALTER TABLE runs ADD COLUMN lease_until TIMESTAMPTZ;
        CREATE INDEX runs_running ON runs(run_id) WHERE status = 'running';
        ALTER TABLE frontier ADD COLUMN gen BIGINT
        """,
    ),
    (
        # Watchlists and the change log their digests read (as SQLite's 0003_watchlists; see there).
        "0006_watchlists",
        f"""
        CREATE TABLE watchlists (
            name {T} PRIMARY KEY,
            entities {T} NOT NULL DEFAULT '[]',
            queries {T} NOT NULL DEFAULT '[]',
            types {T} NOT NULL DEFAULT '[]',
            created {T} NOT NULL,
            updated {T} NOT NULL,
            mark BIGINT NOT NULL DEFAULT 0,
            start_mark BIGINT NOT NULL DEFAULT 0,
            visit_mark BIGINT NOT NULL DEFAULT 0,
            last_digest {T}
        );
        CREATE TABLE watch_events (
            seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
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
            SELECT 'agreement', {AGREEMENT_KEY}, a.doc_id, d.first_seen
            FROM agreements a JOIN documents d USING (doc_id) WHERE true
            ORDER BY d.first_seen, a.doc_id, a.evidence_start
            ON CONFLICT (kind, key) DO NOTHING
        """,
    ),
    (
        "0007_link_decisions",
        f"""
        CREATE TABLE link_decisions (
            seq BIGSERIAL PRIMARY KEY,
            action {T} NOT NULL,
            entity_id {T} NOT NULL,
            other {T} NOT NULL,
            reason {T} NOT NULL DEFAULT '',
            decided_at {T} NOT NULL
        )
        """,
    ),
    # Deals consolidated across reports and story clusters (pipeline/store_deals.py, consolidate.py).
    ("0008_deals_stories", DEALS_STORIES_SQL.format(T=T, B="BYTEA")),
]
