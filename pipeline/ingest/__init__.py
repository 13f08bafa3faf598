"""The ingest run's parts: batches prepared and stored (``batches.py``), the crawl over a frontier
(``crawl_run.py``) and the embedded backend's run coordination (``local.py``); the run itself is
``pipeline/jobs.py``, PostgreSQL's coordination ``pipeline/backend/pg/coordinator.py``."""
