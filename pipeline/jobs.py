"""The ingest run: plan → ask the run coordinator for work → prepare and store batches → report.

One bad document is logged and counted, never fatal. Re-running over unchanged sources adds
nothing. A lock file keeps two runs off one data dir. URLs go through the persistent frontier
(``crawl/frontier.py``): a URL is marked done in the transaction that stores its document, so a run
killed at any moment (SIGKILL included) is resumed by the next one with nothing lost and nothing
duplicated. The vector index is reconciled with the store at the start of every run, so a run
killed between a store commit and an index save is repaired by the next one.

How a run shares the store is its coordinator's (``RunCoordinator``): the embedded backend's run
walks the frontier alone (``ingest/local.py``); on PostgreSQL several ``defintel ingest``
processes, on one or several machines, share one crawl through leases (``pg/coordinator.py``).
Batches are prepared and stored by ``ingest/batches.py``; the crawl is ``ingest/crawl_run.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from pipeline.backend import open_coordinator, open_store
from pipeline.backend.protocols import RunCoordinator, Store
from pipeline.config import CrawlSettings, Settings
from pipeline.crawl.sources import Seed, argument_seed, load_sources
from pipeline.crawl.urls import is_url
from pipeline.errors import DefintelError, UsageError
from pipeline.index.search import index_dir
from pipeline.ingest.batches import Ingestor, IngestRun, RunReport
from pipeline.ingest.local import run_lock

__all__ = ["RunReport", "configured_sources", "ingest", "run_lock"]

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")


def ingest(
    settings: Settings,
    sources: list[str],
    *,
    allow_private: bool = False,
    policy: CrawlSettings | None = None,
    around_run: Callable[[], AbstractContextManager[object]] | None = None,
) -> RunReport:
    """One ingest run over SOURCE arguments (or the configured sources).

    ``around_run``: what the caller wraps the run in once the sources are valid and the data dir
    locked (the CLI: its log file and SIGTERM handling, ``pipeline/process_state.py``)."""
    started = time.monotonic()
    report = RunReport()
    seeds, paths = _plan(settings, sources)  # validated before touching the store: bad usage loses nothing
    policy = policy or settings.crawl
    allow = allow_private or settings.crawl.allow_private_hosts or policy.allow_private_hosts
    with run_lock(settings.data_path), around_run() if around_run is not None else nullcontext():
        store = open_store(settings, readonly=False)
        coordinator = open_coordinator(settings, store, policy)
        run_id = report.run_id = coordinator.start_run()
        report.worker = coordinator.worker
        status = "interrupted"
        try:
            with coordinator.working():
                ingestor = Ingestor(
                    settings, store, concurrent=coordinator.concurrent, transient=coordinator.transient
                )
                try:
                    ingestor.reconcile()
                    run = IngestRun(
                        ingestor, report, parallel=bool(seeds) or len(paths) > settings.nlp.batch_size
                    )
                    coordinator.files(run, paths)
                    if seeds:
                        coordinator.crawl(run, seeds, allow)
                    run.flush(final=True)
                finally:
                    ingestor.close()
            t = time.perf_counter()
            if ingestor.vectors.dirty:
                ingestor.vectors.save(index_dir(settings))
            run.time("index_save", time.perf_counter() - t)
            t = time.perf_counter()
            coordinator.refresh_search(ingestor.vectors)
            run.time("search_snapshot", time.perf_counter() - t)
            t = time.perf_counter()
            report.digests = _write_digests(settings, store, coordinator)
            run.time("digests", time.perf_counter() - t)
            report.stages = {k: round(v, 2) for k, v in sorted(run.stages.items())}
            status = "finished"
        finally:
            report.seconds = time.monotonic() - started
            store.finish_run(run_id, report.as_json(), status)
            store.close()
            summary = {k: v for k, v in report.as_json().items() if k != "failures"}
            log.info("run %d %s: %s", run_id, status, summary)
    return report


def _write_digests(settings: Settings, store: Store, coordinator: RunCoordinator) -> int:
    """Every watchlist's digest into ``<data_dir>/digests`` (``[watch] write_after_ingest``); on
    PostgreSQL by the last worker of a crawl to finish. A digest that cannot be written is logged:
    the run's documents are stored already."""
    if not settings.watch.write_after_ingest:
        return 0
    if not coordinator.last_worker():
        log.info("watch digests left to the workers still running")
        return 0
    from pipeline.watch import write_digests

    try:
        return len(write_digests(settings, store)) // 3
    except (DefintelError, OSError) as exc:
        log.warning("watch digests not written: %s", exc)
        return 0


def configured_sources(settings: Settings) -> list[str]:
    """URLs of the enabled sources in the sources file (``[[source]]`` tables)."""
    return [s.url for s in load_sources(Path(settings.sources))]


def _local_files(source: str) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in HTML_SUFFIXES and p.is_file())
    if path.is_file():
        return [path]
    raise UsageError(f"no such file or directory: {source}")


def _plan(settings: Settings, sources: list[str]) -> tuple[list[Seed], list[Path]]:
    if not sources:
        configured = load_sources(Path(settings.sources))
        if not configured:
            log.warning("no enabled source in %s: nothing to crawl", settings.sources)
        return configured, []
    seeds: dict[str, Seed] = {}
    paths: list[Path] = []
    for s in sources:
        if is_url(s):
            seed = argument_seed(s)
            seeds.setdefault(seed.url, seed)
        else:
            paths.extend(_local_files(s))
    return list(seeds.values()), paths
