"""The ingest run: discover → fetch/read → extract → NLP → store → index → report.

One bad document is logged and counted, never fatal. Re-running over unchanged sources adds
nothing. A lock file keeps two runs off one data dir. URLs go through the persistent frontier
(``crawl/frontier.py``): a URL is marked done in the transaction that stores its document, so a run
killed at any moment (SIGKILL included) is resumed by the next one with nothing lost and nothing
duplicated. The vector index is reconciled with the store at the start of every run, so a run
killed between a store commit and an index save is repaired by the next one.

On PostgreSQL several ``defintel ingest`` processes, on one or several machines, share one crawl:
they lease their work from the frontier in the database (``pipeline/pg/leases.py``) instead of
walking it alone — local files, seeds and every URL found from them — renew the leases while they
work, mark a URL done only in the transaction that stores its document while still holding its
lease (else the document is dropped: the URL is another worker's now), and give their leases back
at exit; a killed worker's leases expire and are taken over by the others.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from pipeline.backend import is_postgres, open_store, open_vectors
from pipeline.clock import now
from pipeline.config import CrawlSettings, Settings
from pipeline.consolidate import Consolidator, consolidate_lock
from pipeline.crawl.crawler import Crawler, Outcome
from pipeline.crawl.discovery import Listed, classify, feed_links, html_hrefs, sitemap_links
from pipeline.crawl.errors import FetchError, RobotsDisallowed
from pipeline.crawl.fetch import Fetcher, Response, to_page
from pipeline.crawl.frontier import LINK, PAGE, SITEMAP, Frontier, FrontierItem, LeaseLost
from pipeline.crawl.sources import ROOT, Seed, Source, argument_seed, load_sources
from pipeline.crawl.throttle import HostThrottle
from pipeline.crawl.urls import article_links, host_of, is_url
from pipeline.dedup import Deduplicator
from pipeline.errors import DefintelError, DocumentError, UsageError
from pipeline.extract import decode_html
from pipeline.index.chunking import passage_text
from pipeline.index.embedders import Embedder, Vectors, make_embedder
from pipeline.index.search import index_dir, prepare_search
from pipeline.prepare import (
    BatchResult,
    Failed,
    Prepared,
    PreparePool,
    Preparer,
    Result,
    Unchanged,
    worker_count,
)
from pipeline.records import IngestReport, Page

if TYPE_CHECKING:
    from pipeline.backend.rows import FrontierRow
    from pipeline.index.vectors import VectorIndex as FaissIndex
    from pipeline.pg.leases import FrontierLeases
    from pipeline.store import Store as SqliteStore

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")
# Local files have frontier rows too (validator = sha1 of the bytes): unchanged files are not re-read.
LOCAL_SOURCE, LOCAL_KIND = "local", "file"

# Called with the doc_id inside the transaction that stores a document.
OnStored = Callable[[str], None]


@dataclass(slots=True)
class RunReport(IngestReport):
    """The INTERFACE.md report plus what the crawler did (fields only ever added).

    ``seen`` counts every URL asked for this run and every local file read; each of them ends as
    fetched, not_modified, skipped_robots or a failure (extraction failures are fetched too)."""

    run_id: int = 0  # row in the runs table
    discovered: int = 0  # URLs new to the frontier (from feeds, sitemaps, site roots)
    retried: int = 0  # extra HTTP attempts inside this run (5xx, 429, timeouts)
    deferred: int = 0  # failed this run, due again on a later run (backoff)
    gave_up: int = 0  # failed for good this run (permanent error, or out of attempts)
    not_article: int = 0  # site-root links that held no article (not failures)
    waiting: int = 0  # URLs of these sources backing off or robots-blocked, after the run
    pending: int = 0  # URLs of these sources still to fetch after the run (0 unless cut short)
    dead: int = 0  # URLs of these sources given up, all runs together
    # PostgreSQL: this worker's id, and URLs/files whose lease passed to another worker before this one
    # stored them (dropped here, done there).
    worker: str = ""
    lease_lost: int = 0
    revisited: int = 0  # known articles asked again this run (conditional GET; [crawl] revisit_after_s)
    digests: int = (
        0  # watchlist digests written to <data_dir>/digests at the end ([watch] write_after_ingest)
    )
    # Seconds per stage: extract/nlp/fingerprint summed over the worker processes (or in-process);
    # read, wait (for prepared batches: workers, or the in-process prepare), embed, store,
    # index_save and search_snapshot in the main process.
    stages: dict[str, float] = field(default_factory=dict)


@contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "ingest.lock"
    handle: IO[str] = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise UsageError(
            f"another ingest is running on {data_dir} (pid {holder}, lock {path}); try again when it ends"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


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


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the main process does with one page's outcome, inside the batch's transaction.

    ``stored(doc_id)``: the document is stored (or unchanged); the crawler marks its URL done there,
    so a crash can never separate the two. ``failed(error, document)``: no document came out
    (``document``: the page held no article; else extraction crashed)."""

    stored: OnStored | None
    failed: Callable[[str, bool], None]


class Ingestor:
    """Holds the loaded stages for one run: store, vector index, dedup, and the prepare stage
    (extraction → NLP → chunks → vectors, in worker processes when the run is big enough)."""

    def __init__(self, settings: Settings, store: Any, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store  # a Store or a PgStore (pipeline.storage.StoreProtocol)
        ix = settings.index
        self.embedder = embedder or make_embedder(
            ix.embedder, ix.e5_model_dir, ix.e5_runtime, threads=ix.threads
        )
        self.vectors = open_vectors(settings, store, self.embedder)  # FAISS files or pgvector rows
        self.dedup = Deduplicator(store)
        self.consolidator = Consolidator(store, self.embedder, lock=consolidate_lock(store))
        self._changed: list[str] = []  # documents stored (new, changed or demoted) in this batch
        self.consolidate_seconds = 0.0  # time spent recomputing deals and stories
        self.preparer = Preparer(settings, self._known, self.embedder)
        self.pool = PreparePool(settings, self.preparer, worker_count(settings.ingest.workers))

    def _known(self, doc_id: str) -> str | None:
        state = self.store.document_state(doc_id)
        return None if state is None else state[0]

    def close(self) -> None:
        self.pool.close()

    def reconcile(self) -> None:
        """Make the vector index hold exactly the stored chunks (after a crash, or a removed doc)."""
        if is_postgres(self.store):
            self._reconcile_rows()
            return
        chunks = {c["vec_id"]: c for c in self.store.chunks()}
        have = self.vectors.ids()
        orphans = have - set(chunks)
        missing = [chunks[v] for v in chunks if v not in have]
        if orphans:
            self.vectors.remove(orphans)
        if missing:
            titles = {d["doc_id"]: d["title"] for d in self.store.documents()}
            texts = [passage_text(titles.get(c["doc_id"], ""), c["text"]) for c in missing]
            self.vectors.add([c["vec_id"] for c in missing], self.embedder.passages(texts))
        if orphans or missing:
            log.info(
                "index reconciled: %d orphan vectors removed, %d missing added", len(orphans), len(missing)
            )
            self.vectors.save(index_dir(self.settings))
        self.consolidate_pending()

    def consolidate_pending(self) -> None:
        """Deals and stories of documents stored without them (an older store, a lost update)."""
        pending = self.store.docs_to_consolidate()
        if pending:
            with self.store.atomic():
                done = self.consolidator.update(pending, changed=False)
            log.info(
                "consolidated %d documents: %d deals, %d story ids changed",
                len(pending),
                done.deals_changed,
                done.stories_changed,
            )

    def _reconcile_rows(self) -> None:
        """PostgreSQL: vectors are written in their chunks' transaction, so only chunks stored by an
        older version without theirs can lack one; nothing else (other workers' chunks) is read."""
        missing = self.store.chunks_without_vectors()
        if missing:
            texts = [passage_text(c["title"], c["text"]) for c in missing]
            self.vectors.add([c["vec_id"] for c in missing], self.embedder.passages(texts))
            log.info("index reconciled: %d chunks without a vector embedded", len(missing))
        self.consolidate_pending()

    def store_batch(self, results: Sequence[Result], hooks: Sequence[Hooks], report: RunReport) -> None:
        """Store one prepared batch in one transaction; the vector index follows after the commit.

        PostgreSQL: the vectors go into the chunk rows in the same transaction; every document is a
        savepoint, rolled back alone when its URL's lease was lost (``LeaseLost``); and a batch that
        deadlocked with another worker's (the server cancels one of them) is stored again."""
        if not is_postgres(self.store):
            self._store_batch(results, hooks, report, shared=False)
            return
        from pipeline.pg.leases import TRANSIENT

        for attempt in range(1, BATCH_TRIES + 1):
            saved = copy.deepcopy(report)
            try:
                self._store_batch(results, hooks, report, shared=True)
                return
            except TRANSIENT as exc:
                if attempt == BATCH_TRIES:
                    raise
                log.info("batch not stored (%s); storing it again", str(exc).strip().splitlines()[0])
                for f in dataclasses.fields(report):  # the hooks count into the report: undo that
                    setattr(report, f.name, getattr(saved, f.name))

    def _store_batch(
        self, results: Sequence[Result], hooks: Sequence[Hooks], report: RunReport, *, shared: bool
    ) -> None:
        changes: list[tuple[list[int], list[int], Vectors]] = []
        self._changed = []
        with self.store.atomic():
            if shared:
                # Entity rows are shared by every worker's documents: take them in one global order
                # (the per-document upserts below then find them locked already), so two workers'
                # batches cannot deadlock on them.
                entities = [e for r in results if isinstance(r, Prepared) for e in r.analysis.entities]
                self.store.upsert_entities(sorted(entities, key=lambda e: e.entity_id))
            for result, hook in zip(results, hooks, strict=True):
                try:
                    with self.store.atomic() if shared else nullcontext():  # a savepoint
                        change = self._store_one(result, hook, report, shared)
                except LeaseLost as exc:
                    report.lease_lost += 1
                    log.warning("lease lost, document dropped (another worker has it now): %s", exc)
                    continue
                if change is not None:
                    changes.append(change)
            # Deals and stories of the documents stored above, in the same transaction.
            changed, self._changed = self._changed, []
            if changed:
                t = time.perf_counter()
                self.consolidator.update(changed)
                self.consolidate_seconds += time.perf_counter() - t
        for removed, added, vectors in changes:
            self.vectors.remove(removed)
            self.vectors.add(added, vectors)

    def _store_one(
        self, result: Result, hook: Hooks, report: RunReport, shared: bool
    ) -> tuple[list[int], list[int], Vectors] | None:
        """One document of a batch (inside its transaction); the vector change left to do after it."""
        if isinstance(result, Failed):
            hook.failed(result.error, result.document)
            return None
        doc_id = result.doc_id if isinstance(result, Unchanged) else result.analysis.document.doc_id
        state = self.store.document_state(doc_id)
        if isinstance(result, Unchanged) or (
            state is not None and state[0] == result.analysis.document.content_hash
        ):
            self.store.touch(doc_id)
            if hook.stored is not None:
                hook.stored(doc_id)
            report.unchanged += 1
            return None
        doc = result.analysis.document
        dup = self.dedup.check(doc, result.fingerprint)
        self.store.save_analysis(
            result.analysis,
            text_hash=dup.text_hash,
            minhash=dup.signature,
            duplicate_of=dup.duplicate_of,
        )
        assert result.vectors is not None, "batch stored before it was embedded"
        if shared:
            removed, added = self.store.replace_chunks(doc_id, result.chunks, result.vectors)
        else:
            removed, added = self.store.replace_chunks(doc_id, result.chunks)
        if hook.stored is not None:
            hook.stored(doc_id)
        self._changed.extend([doc_id, dup.demoted] if dup.demoted else [doc_id])
        # Seen by the next document of this batch too (same connection, same transaction).
        self.dedup.remember(doc_id, dup, doc.published)
        if dup.duplicate_of or dup.demoted:
            report.duplicates += 1
        if state is None:
            report.new += 1
        else:
            report.updated += 1
        return None if shared else (removed, added, result.vectors)


# A batch that deadlocked with another worker's is stored again, up to this many times in all.
BATCH_TRIES = 4


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
        shared = _Shared.open(settings, store, policy) if is_postgres(store) else None
        if shared is not None:
            run_id = shared.leases.start_run()
            report.worker = shared.leases.worker
        else:
            run_id = store.start_run()
        report.run_id = run_id
        status = "interrupted"
        try:
            # PostgreSQL: leases renewed while the run works, all given back at its end (Ctrl-C and,
            # under the CLI, SIGTERM — systemd's stop — too).
            with shared.holding() if shared is not None else nullcontext():
                ingestor = Ingestor(settings, store)
                try:
                    ingestor.reconcile()
                    run = _Run(ingestor, report, parallel=bool(seeds) or len(paths) > settings.nlp.batch_size)
                    if shared is not None:
                        _SharedFiles(run, shared).ingest(paths)
                    else:
                        run.known_files(paths)
                        for path in _progress(paths, "files"):
                            run.local_file(path)
                    if seeds:
                        crawl = (
                            _CrawlRun(run, policy, allow)
                            if shared is None
                            else _SharedCrawl(run, policy, allow, shared)
                        )
                        crawl.crawl(seeds)
                    run.flush(final=True)
                finally:
                    ingestor.close()
            t = time.perf_counter()
            if ingestor.vectors.dirty:
                ingestor.vectors.save(index_dir(settings))
            run.time("index_save", time.perf_counter() - t)
            t = time.perf_counter()
            if shared is not None:
                shared.refresh_statistics()  # per-language statistics the PostgreSQL searcher reads
            else:
                # a first search then only loads it (the embedded backend: SQLite + FAISS)
                prepare_search(settings, cast("SqliteStore", store), cast("FaissIndex", ingestor.vectors))
            run.time("search_snapshot", time.perf_counter() - t)
            t = time.perf_counter()
            report.digests = _write_digests(settings, store, shared)
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


def _write_digests(settings: Settings, store: Any, shared: _Shared | None) -> int:
    """Every watchlist's digest into ``<data_dir>/digests`` (``[watch] write_after_ingest``); on
    PostgreSQL by the last worker of a crawl to finish. A digest that cannot be written is logged:
    the run's documents are stored already."""
    if not settings.watch.write_after_ingest:
        return 0
    if shared is not None and shared.leases.others_running():
        log.info("watch digests left to the workers still running")
        return 0
    from pipeline.watch import write_digests

    try:
        return len(write_digests(settings, store)) // 3
    except (DefintelError, OSError) as exc:
        log.warning("watch digests not written: %s", exc)
        return 0


@dataclass(slots=True)
class _Shared:
    """A worker's share of a PostgreSQL crawl: its leases and how it claims."""

    leases: FrontierLeases
    claim: int  # URLs or files per claim
    poll_s: float  # pause while the work left is leased by other workers

    @classmethod
    def open(cls, settings: Settings, store: Any, policy: CrawlSettings) -> _Shared:
        from pipeline.pg.leases import FrontierLeases

        ing = settings.ingest
        if ing.lease_s <= 0 or ing.claim_batch < 1:
            raise UsageError("[ingest] lease_s must be > 0 and claim_batch ≥ 1")
        leases = FrontierLeases(store, lease_s=ing.lease_s, host_delay_s=policy.delay_s)
        return cls(leases, ing.claim_batch, min(1.0, max(0.05, ing.lease_s / 10)))

    def holding(self) -> AbstractContextManager[Any]:
        from pipeline.pg.leases import LeaseRenewer

        return LeaseRenewer(self.leases)

    def refresh_statistics(self) -> None:
        """Refresh the searcher's statistics unless other workers are still adding to the corpus
        (the last one to finish does it); one worker at a time (they replace the same rows)."""
        from pipeline.pg.schema import STATS_LOCK
        from pipeline.pg.stats import refresh

        if self.leases.others_running():
            log.info("search statistics left to the workers still running")
            return
        store = self.leases.store
        with store.atomic():
            store.serialize(STATS_LOCK)
            refresh(store)


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


class _Run:
    """Batching, preparing and storing shared by local files and crawled pages."""

    def __init__(
        self, ingestor: Ingestor, report: RunReport, parallel: bool, leases: FrontierLeases | None = None
    ) -> None:
        self.ingestor = ingestor
        self.leases = leases  # PostgreSQL: files are leased from the shared frontier (_SharedFiles)
        self.report = report
        self.store = ingestor.store
        self.batch: list[tuple[Page, Hooks]] = []
        # Documents prepared and stored together; a killed run re-fetches at most a few batches.
        self.batch_size = max(1, ingestor.settings.nlp.batch_size)
        # Worker processes pay off from the second batch on (a crawl's size is not known: always).
        self.parallel = parallel
        self.stages: dict[str, float] = {}
        self.files: dict[str, FrontierRow] = {}
        self.touched: list[str] = []

    def time(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds

    def known_files(self, paths: Sequence[Path]) -> None:
        """Frontier rows of these local files: a file whose bytes are unchanged is not re-extracted."""
        self.files = self.store.frontier_rows([p.resolve().as_uri() for p in paths])

    def local_file(self, path: Path, row: FrontierRow | None = None) -> None:
        """Read one file and queue it (``row``: its frontier row, leased by this worker on PostgreSQL)."""
        t = time.perf_counter()
        self.report.seen += 1
        url = path.resolve().as_uri()
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._file_failed(url, str(path), str(exc))
            return
        validator = f"sha1:{hashlib.sha1(data).hexdigest()}"
        row = row if row is not None else self.files.get(url)
        known = self._unchanged_file(row, validator)
        if known is not None:
            if self.leases is not None and not self._file_unchanged(url, known):
                return
            self.report.fetched += 1
            self.report.unchanged += 1
            if self.leases is None:
                self.touched.append(known)
            self.time("read", time.perf_counter() - t)
            return
        try:
            html = decode_html(data)
        except DocumentError as exc:
            self._file_failed(url, str(path), str(exc))
            return
        self.report.fetched += 1
        self.time("read", time.perf_counter() - t)
        leases = self.leases

        def stored(doc_id: str) -> None:
            fields = {"status": "done", "etag": validator, "doc_id": doc_id, "fetched_at": now()}
            if leases is None:
                self.store.frontier_insert([(url, LOCAL_SOURCE, LOCAL_KIND, None)])
                self.store.frontier_set(url, **fields)
            elif not leases.finish(url, **fields):
                raise LeaseLost(url)

        def failed(error: str, document: bool) -> None:
            if leases is not None and not leases.finish(url, last_error=error):
                raise LeaseLost(url)
            self.fail(str(path), error)

        self.add(Page(url=url, html=html, source=str(path)), Hooks(stored, failed))

    def _file_unchanged(self, url: str, doc_id: str) -> bool:
        """PostgreSQL: an unchanged file's lease ends with its document touched, in one transaction;
        False when the lease was lost (the new holder counts it)."""
        assert self.leases is not None
        try:
            with self.store.atomic():
                self.store.touch(doc_id)
                if not self.leases.finish(url, status="done", fetched_at=now()):
                    raise LeaseLost(url)
        except LeaseLost:
            self.report.lease_lost += 1
            return False
        return True

    def _file_failed(self, url: str, source: str, error: str) -> None:
        """An unreadable file: counted (and, on PostgreSQL, its lease ended: retried next crawl)."""
        if self.leases is not None and not self.leases.finish(url, last_error=error):
            self.report.lease_lost += 1
            return
        self.fail(source, error)

    def _unchanged_file(self, row: FrontierRow | None, validator: str) -> str | None:
        """The document stored from these very bytes, if it is still there."""
        if row is None or row["status"] != "done" or row["etag"] != validator or not row["doc_id"]:
            return None
        return row["doc_id"] if self.store.document_state(row["doc_id"]) is not None else None

    def add(self, page: Page, hooks: Hooks) -> None:
        self.batch.append((page, hooks))
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Hand the pending batch to the prepare stage; store whatever batches come back."""
        if self.batch:
            pages = [p for p, _ in self.batch]
            hooks = [h for _, h in self.batch]
            self.batch = []
            self._store_all(self.ingestor.pool.submit(pages, hooks, self.parallel))
        if final:
            self._store_all(self.ingestor.pool.drain())
            if self.touched:
                with self.store.atomic():
                    for doc_id in self.touched:
                        self.store.touch(doc_id)
                self.touched = []

    def _store_all(self, batches: Iterator[tuple[BatchResult, list[Hooks]]]) -> None:
        """Embed and store each prepared batch; the time spent getting them is ``wait``."""
        t = time.perf_counter()
        for batch, hooks in batches:
            self.time("wait", time.perf_counter() - t)
            self._store(batch, hooks)
            t = time.perf_counter()
        self.time("wait", time.perf_counter() - t)

    def _store(self, batch: BatchResult, hooks: list[Hooks]) -> None:
        batch = self.ingestor.preparer.embed(batch)
        for stage, seconds in batch.seconds.items():
            self.time(stage, seconds)
        t = time.perf_counter()
        before = self.ingestor.consolidate_seconds
        self.ingestor.store_batch(batch.results, hooks, self.report)
        consolidate = self.ingestor.consolidate_seconds - before
        self.time("store", time.perf_counter() - t - consolidate)
        self.time("consolidate", consolidate)

    def fail(self, source: str, error: str, retry: str | None = None) -> None:
        self.report.failed += 1
        entry = {"source": source, "error": error}
        if retry is not None:
            entry["retry"] = retry
        self.report.failures.append(entry)
        log.warning("failed: %s: %s", source, error)


# Fetch failures after which a later run will not help: the page is gone, forbidden, not HTML,
# too big, or the target is refused by the SSRF guard.
PERMANENT_KINDS = frozenset({"content_type", "too_large", "refused", "redirects"})


class _CrawlRun:
    """The URL side of one run: seeds → frontier → polite concurrent fetching → documents."""

    def __init__(self, run: _Run, policy: CrawlSettings, allow_private: bool) -> None:
        self.run = run
        self.report = run.report
        self.store = run.ingestor.store
        self.policy = policy
        self.frontier = Frontier(self.store, policy)
        self.fetcher = Fetcher(policy, allow_private, throttle=HostThrottle(policy.delay_s))
        self.crawler = Crawler(self.fetcher, policy.max_hosts)
        self.sources: dict[str, Source] = {}
        self.progress: Any = None

    def crawl(self, seeds: list[Seed]) -> None:
        self.sources = {s.url: s.source for s in seeds}
        self.progress = _bar("crawl")
        try:
            for seed in seeds:
                item, row = self.frontier.seed(seed.url, seed.kind)
                if item is not None:
                    self._submit(item)
                elif row is not None:  # counted in waiting/dead from the frontier at the end
                    self._not_due(seed.url, row)
            with self.store.atomic():
                self.report.revisited += self.frontier.revisit(list(self.sources))
            for item in self.frontier.resume(list(self.sources)):
                self._submit(item)
            for outcome in self.crawler.outcomes():
                self._handle_counted(outcome)
        finally:
            self._close()
        self._end()

    def _handle_counted(self, outcome: Outcome) -> None:
        self._handle(outcome)
        if self.progress is not None:
            self.progress.update(1)

    def _end(self) -> None:
        self.run.flush(final=True)
        self._count_left()

    def _not_due(self, url: str, row: FrontierRow) -> None:
        log.warning(
            "source %s not fetched: %s (%s)",
            url,
            "given up" if row["status"] == "dead" else f"backing off until {row['next_try']}",
            row["last_error"],
        )

    def _close(self) -> None:
        self.crawler.close()
        self.fetcher.close()
        if self.progress is not None:
            self.progress.close()

    def _count_left(self) -> None:
        counts = self.store.frontier_counts(list(self.sources))
        self.report.pending = counts.get("pending", 0)
        self.report.waiting = counts.get("retry", 0) + counts.get("blocked", 0)
        self.report.dead = counts.get("dead", 0)

    def _submit(self, item: FrontierItem) -> None:
        source = self.sources.get(item.source)
        if source is not None and source.crawl_delay_s:
            self.fetcher.throttle.raise_delay(host_of(item.url), source.crawl_delay_s)
        if self.crawler.submit(item) and self.progress is not None:
            self.progress.total = (self.progress.total or 0) + 1
            self.progress.refresh()

    def _handle(self, outcome: Outcome) -> None:
        item = outcome.item
        if outcome.error is not None and outcome.error.kind == "stopped":
            return
        self.report.seen += 1
        if outcome.error is not None:
            self._failed(item, outcome.error)
            return
        resp = outcome.response
        assert resp is not None
        self.report.retried += resp.attempts - 1
        if resp.not_modified:
            self.report.not_modified += 1
            with self.store.atomic():
                row = self.store.frontier_row(item.url)
                if row is not None and row["doc_id"]:
                    self.store.touch(row["doc_id"])
                self.frontier.done(item, resp)
            return
        self.report.fetched += 1
        kind = classify(resp)
        if kind in ("feed", "sitemap") and item.kind not in (PAGE, LINK):
            self._discovered(item, resp, kind)
        elif kind == "html" and item.kind == ROOT:
            self._hub(item, resp)
        else:
            self._article(item, resp)

    def _failed(self, item: FrontierItem, exc: FetchError) -> None:
        self.report.retried += max(0, exc.attempts - 1)
        if isinstance(exc, RobotsDisallowed):
            self.report.skipped_robots += 1
            when = self.frontier.blocked(item, str(exc))
            log.info("%s (looked at again after %s)", exc, when)
            return
        permanent = exc.kind in PERMANENT_KINDS or (
            exc.kind == "http" and exc.status is not None and not exc.retryable
        )
        self._record_failure(item, str(exc), permanent, exc.retry_after)

    def _record_failure(
        self, item: FrontierItem, error: str, permanent: bool, retry_after: float | None = None
    ) -> None:
        outcome = self.frontier.failed(item, error, permanent=permanent, retry_after=retry_after)
        if outcome.gave_up:
            self.report.gave_up += 1
        else:
            self.report.deferred += 1
        self.run.fail(item.url, error, retry="never" if outcome.gave_up else outcome.next_try)

    def _discovered(self, item: FrontierItem, resp: Response, kind: str) -> None:
        try:
            children: list[Listed] = []
            if kind == "feed":
                pages = feed_links(resp.body, resp.final_url)
            else:
                pages, children = sitemap_links(resp.body, resp.final_url)
        except FetchError as exc:
            self._record_failure(item, str(exc), permanent=False)
            return
        source = self.sources.get(item.source, Source(item.source))
        pages = [p for p in pages if source.url_filter.allows(p.url)]
        self._offer(item, resp, [(pages, PAGE), (children, SITEMAP)])
        log.info("%s %s: %d pages, %d sitemaps listed", kind, item.url, len(pages), len(children))

    def _hub(self, item: FrontierItem, resp: Response) -> None:
        try:
            page = to_page(resp, item.source)
        except FetchError as exc:
            self._record_failure(item, str(exc), permanent=False)
            return
        source = self.sources.get(item.source, Source(item.source))
        links = article_links(
            html_hrefs(page.html), resp.final_url, source.url_filter, self.policy.max_links_per_page
        )
        self._offer(item, resp, [([Listed(u) for u in links], LINK)])
        log.info("site %s: %d candidate article links", item.url, len(links))

    def _offer(self, item: FrontierItem, resp: Response, groups: list[tuple[list[Listed], str]]) -> None:
        """Record what a feed/sitemap/hub lists and mark it done, in one transaction."""
        due: list[FrontierItem] = []
        with self.store.atomic():
            for listed, kind in groups:
                if listed:
                    items, fresh = self.frontier.offer(listed, item.source, kind)
                    due.extend(items)
                    self.report.discovered += fresh
            self.frontier.done(item, resp)
        for x in due:
            self._submit(x)

    def _article(self, item: FrontierItem, resp: Response) -> None:
        try:
            page = to_page(resp, item.source)
        except FetchError as exc:
            self._record_failure(item, str(exc), permanent=exc.kind in PERMANENT_KINDS)
            return

        # Both run inside the transaction that stores the page's batch.
        def stored(doc_id: str) -> None:
            self.frontier.done(item, resp, doc_id=doc_id)

        def failed(error: str, document: bool) -> None:
            if document and item.kind == LINK:
                # A hub link that holds no article (a section page, a video): noted, not a failure.
                self.frontier.done(item, resp, error=f"not an article: {error}")
                self.report.not_article += 1
                return
            self._record_failure(item, error, permanent=False)

        self.run.add(page, Hooks(stored, failed))


class _SharedFiles:
    """Local files of a PostgreSQL crawl: each file's frontier row (url = file URI, source "local",
    kind "file") is leased like a URL and stamped with the crawl when settled, so workers given the
    same folder read each file once per crawl, and a killed worker's files are taken over."""

    WINDOW = 256  # files looked at per claim (claims walk the list in order, then sweep what is left)

    def __init__(self, run: _Run, shared: _Shared) -> None:
        self.run = run
        self.shared = shared
        self.leases = shared.leases
        run.leases = shared.leases

    def ingest(self, paths: Sequence[Path]) -> None:
        if not paths:
            return
        by_url = {p.resolve().as_uri(): p for p in paths}
        urls = list(by_url)
        store = self.run.store
        for i in range(0, len(urls), 1000):
            store.frontier_insert([(u, LOCAL_SOURCE, LOCAL_KIND, None) for u in urls[i : i + 1000]])
        bar = _bar("files")
        pos = 0
        while True:
            rows: list[FrontierRow] = []
            while pos < len(urls) and not rows:
                rows = self.leases.claim_urls(urls[pos : pos + self.WINDOW], self.shared.claim)
                if not rows:
                    pos += self.WINDOW
            if not rows:
                # The rest is leased by other workers: wait for them, and take over a dead one's files.
                self.run.flush(final=True)
                left = self.leases.unsettled(urls)
                if not left:
                    break
                rows = self.leases.claim_urls(left, self.shared.claim)
                if not rows:
                    time.sleep(self.shared.poll_s)
                    continue
            for row in rows:
                self.run.local_file(by_url[row["url"]], row)
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()


class _LeasedFrontier(Frontier):
    """The frontier as one worker of a shared crawl sees it (see ``crawl/frontier.py``'s hooks)."""

    def __init__(self, store: Any, policy: CrawlSettings, leases: FrontierLeases) -> None:
        super().__init__(store, policy)
        self.leases = leases

    def _settle(self, url: str, **fields: Any) -> None:
        if not self.leases.finish(url, **fields):
            raise LeaseLost(url)

    def _fresh(self, urls: Sequence[str]) -> set[str]:
        return self.leases.settled(urls)

    def _requeue_children(self, source: str) -> None:
        self.leases.requeue(source, SITEMAP)


class _SharedCrawl(_CrawlRun):
    """The URL side of a PostgreSQL crawl: what this worker fetches is what it leased.

    Seeds and discovered URLs only go into the frontier; the worker claims batches of due URLs
    (whole hosts at a time, so politeness holds across workers), gives a host back once it fetched
    what it claimed there (``next_fetch`` = now + the host's delay), and claims more as the fetches
    drain. It stops when no URL of its sources is due any more, whoever held it: while others still
    work it waits, and takes over what a killed worker's expired leases leave."""

    def __init__(self, run: _Run, policy: CrawlSettings, allow_private: bool, shared: _Shared) -> None:
        super().__init__(run, policy, allow_private)
        self.shared = shared
        self.leases = shared.leases
        self.frontier = _LeasedFrontier(self.store, policy, self.leases)
        self.crawler.on_idle = self._host_idle
        # Claims and host releases exclude each other: a host is never given back while URLs just
        # claimed on it are being queued.
        self.claim_lock = threading.Lock()
        self.next_claim = 0.0

    def crawl(self, seeds: list[Seed]) -> None:
        self.sources = {s.url: s.source for s in seeds}
        sources = list(self.sources)
        self.progress = _bar("crawl")
        try:
            for seed in seeds:
                with self.store.atomic():
                    _, row = self.frontier.seed(seed.url, seed.kind)
                if row is not None:
                    self._not_due(seed.url, row)
            with self.store.atomic():
                self.report.revisited += self.frontier.revisit(sources)
            while True:
                # Hold no more URLs than the next batch needs: the rest stays free for other workers.
                if self.crawler.outstanding + len(self.run.batch) < max(
                    self.shared.claim, self.run.batch_size
                ):
                    self._claim(sources)
                if self.crawler.outstanding == 0:
                    if self._claim(sources, force=True):
                        continue
                    self.run.flush(final=True)  # ends this worker's leases before it looks at the rest
                    if self.leases.due(sources) == 0:
                        break
                    time.sleep(self.shared.poll_s)
                    continue
                outcome = self.crawler.next(self.shared.poll_s)
                if outcome is None:
                    continue
                self._handle_counted(outcome)
        finally:
            self._close()
        self._end()

    def _claim(self, sources: list[str], force: bool = False) -> int:
        """Lease more due URLs and queue them; after an empty claim, wait ``poll_s`` before the next."""
        if not force and time.monotonic() < self.next_claim:
            return 0
        t = time.perf_counter()
        with self.claim_lock:
            rows = self.leases.claim(self.shared.claim, sources, max_hosts=self.policy.max_hosts)
            for row in rows:
                item = FrontierItem.of(row)
                source = self.sources.get(item.source)
                if source is not None and source.crawl_delay_s:
                    self.fetcher.throttle.raise_delay(host_of(item.url), source.crawl_delay_s)
                if self.crawler.submit(item):
                    if self.progress is not None:
                        self.progress.total = (self.progress.total or 0) + 1
                        self.progress.refresh()
                else:  # fetched already in this run (a URL found again): not this worker's to keep
                    self.leases.release([item.url])
        self.run.time("claim", time.perf_counter() - t)
        self.next_claim = 0.0 if rows else time.monotonic() + self.shared.poll_s
        return len(rows)

    def _host_idle(self, host: str) -> None:
        """(A fetch thread.) Everything claimed on ``host`` is fetched: give the host back, to be
        asked again by any worker after its politeness delay, while the pages are processed here."""
        with self.claim_lock:
            if not self.crawler.busy(host):
                self.leases.release_host(host, self.fetcher.throttle.delay(host))

    def _submit(self, item: FrontierItem) -> None:
        """URLs found in feeds, sitemaps and site roots are in the frontier now: claimed from there."""

    def _handle(self, outcome: Outcome) -> None:
        try:
            super()._handle(outcome)
        except LeaseLost as exc:
            self.report.lease_lost += 1
            log.warning("lease lost, outcome dropped (another worker has the URL now): %s", exc)


def _bar(desc: str) -> Any:
    """A tqdm bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc=desc, unit="url", file=sys.stderr, total=0)


def _progress(items: list[Path], desc: str) -> Any:
    """tqdm over a list on a TTY, the list itself otherwise (logs and bars go to stderr)."""
    if not items or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="page", file=sys.stderr)
