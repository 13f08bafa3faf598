"""The PostgreSQL + pgvector backend: a store shared by several ingest workers and the app.

``store.PgStore`` has the SQLite store's interface; ``search.PgSearcher`` the embedded searcher's;
``migrate`` copies an embedded data dir into a database; ``leases`` shares the crawl frontier
between workers. ``pipeline.backend`` picks the backend from the settings.
"""
