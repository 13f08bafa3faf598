"""Preparing and storing an ingest run's documents in batches (``IngestRun``, ``Ingestor``).

Pages come in from local files and the crawler with hooks (``Hooks``) that settle their URL
inside the transaction storing their document; batches are prepared (extraction → NLP → chunks,
in worker processes when the run is big enough), embedded in this process and stored in one
transaction each, the vector index following. Nothing here knows which backend it writes to:
the store and vector index are the Protocols of ``pipeline/backend``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.backend import open_vectors
from pipeline.backend.protocols import Store
from pipeline.backend.rows import FrontierRow, FrontierValue
from pipeline.clock import now
from pipeline.config import Settings
from pipeline.consolidate import Consolidator, consolidate_lock
from pipeline.crawl.frontier import LeaseLost
from pipeline.dedup import Deduplicator
from pipeline.errors import DocumentError
from pipeline.extract import decode_html
from pipeline.index.chunking import passage_text
from pipeline.index.embedders import Embedder, Vectors, make_embedder
from pipeline.index.search import index_dir
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

log = logging.getLogger("pipeline.jobs")

# A batch that deadlocked with another worker's is stored again, up to this many times in all.
BATCH_TRIES = 4

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

    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: Embedder | None = None,
        *,
        concurrent: bool = False,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        # Other processes store at the same time (PostgreSQL workers): entity rows are taken in one
        # order, every document is a savepoint, and a batch failing with ``transient`` (a deadlock
        # the server broke) is stored again.
        self.concurrent = concurrent
        self.transient = transient
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
        orphans, missing = self.vectors.unindexed(self.store)
        if orphans:
            self.vectors.remove(orphans)
        if missing:
            texts = [passage_text(c["title"], c["text"]) for c in missing]
            self.vectors.add([c["vec_id"] for c in missing], self.embedder.passages(texts))
        if orphans or missing:
            log.info(
                "index reconciled: %d orphan vectors removed, %d missing added", len(orphans), len(missing)
            )
            if self.vectors.dirty:
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

    def store_batch(self, results: Sequence[Result], hooks: Sequence[Hooks], report: RunReport) -> None:
        """Store one prepared batch in one transaction; the vector index follows after the commit
        (or within it, where the vectors live in the chunk rows). Concurrent stores: every
        document is a savepoint, rolled back alone when its URL's lease was lost (``LeaseLost``),
        and a batch that deadlocked with another worker's is stored again."""
        for attempt in range(1, BATCH_TRIES + 1):
            saved = copy.deepcopy(report) if self.transient else report
            try:
                self._store_batch(results, hooks, report)
                return
            except self.transient as exc:
                if attempt == BATCH_TRIES:
                    raise
                log.info("batch not stored (%s); storing it again", str(exc).strip().splitlines()[0])
                for f in dataclasses.fields(report):  # the hooks count into the report: undo that
                    setattr(report, f.name, getattr(saved, f.name))

    def _store_batch(self, results: Sequence[Result], hooks: Sequence[Hooks], report: RunReport) -> None:
        concurrent = self.concurrent
        changes: list[tuple[list[int], list[int], Vectors]] = []
        self._changed = []
        with self.store.atomic():
            if concurrent:
                # Entity rows are shared by every worker's documents: take them in one global order
                # (the per-document upserts below then find them locked already), so two workers'
                # batches cannot deadlock on them.
                entities = [e for r in results if isinstance(r, Prepared) for e in r.analysis.entities]
                self.store.upsert_entities(sorted(entities, key=lambda e: e.entity_id))
            for result, hook in zip(results, hooks, strict=True):
                try:
                    with self.store.atomic() if concurrent else nullcontext():  # a savepoint
                        change = self._store_one(result, hook, report)
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
        self, result: Result, hook: Hooks, report: RunReport
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
        removed, added = self.store.replace_chunks(doc_id, result.chunks, result.vectors)
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
        return None if self.vectors.stored_with_chunks else (removed, added, result.vectors)


class FileLedger(Protocol):
    """Where a run settles its local files: the frontier of a lone run, or a worker's leases."""

    def stored(self, url: str, fields: dict[str, FrontierValue]) -> bool:
        """Record a file's document stored (inside its transaction); False: the lease was lost."""
        ...

    def failed(self, url: str, error: str) -> bool:
        """Record a file that yielded no document; False: the lease was lost."""
        ...

    def unchanged(self, url: str, doc_id: str) -> bool:
        """A file read again with the same bytes; False: the lease was lost."""
        ...


class IngestRun:
    """Batching, preparing and storing shared by local files and crawled pages."""

    def __init__(self, ingestor: Ingestor, report: RunReport, parallel: bool) -> None:
        self.ingestor = ingestor
        self.ledger: FileLedger = _FrontierFiles(self)  # a worker's leases replace it (PostgreSQL)
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
            if not self.ledger.unchanged(url, known):
                self.report.lease_lost += 1
                return
            self.report.fetched += 1
            self.report.unchanged += 1
            self.time("read", time.perf_counter() - t)
            return
        try:
            html = decode_html(data)
        except DocumentError as exc:
            self._file_failed(url, str(path), str(exc))
            return
        self.report.fetched += 1
        self.time("read", time.perf_counter() - t)
        ledger = self.ledger

        def stored(doc_id: str) -> None:
            fields: dict[str, FrontierValue] = {
                "status": "done",
                "etag": validator,
                "doc_id": doc_id,
                "fetched_at": now(),
            }
            if not ledger.stored(url, fields):
                raise LeaseLost(url)

        def failed(error: str, document: bool) -> None:
            if not ledger.failed(url, error):
                raise LeaseLost(url)
            self.fail(str(path), error)

        self.add(Page(url=url, html=html, source=str(path)), Hooks(stored, failed))

    def _file_failed(self, url: str, source: str, error: str) -> None:
        """An unreadable file: counted (and, on PostgreSQL, its lease ended: retried next crawl)."""
        if not self.ledger.failed(url, error):
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


class _FrontierFiles:
    """A lone run's files: frontier rows written when stored, unchanged ones touched at the end."""

    def __init__(self, run: IngestRun) -> None:
        self.run = run

    def stored(self, url: str, fields: dict[str, FrontierValue]) -> bool:
        self.run.store.frontier_insert([(url, LOCAL_SOURCE, LOCAL_KIND, None)])
        self.run.store.frontier_set(url, **fields)
        return True

    def failed(self, url: str, error: str) -> bool:
        return True

    def unchanged(self, url: str, doc_id: str) -> bool:
        self.run.touched.append(doc_id)
        return True


def progress_bar(desc: str) -> Any:
    """A tqdm bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc=desc, unit="url", file=sys.stderr, total=0)


def progress(items: list[Path], desc: str) -> Any:
    """tqdm over a list on a TTY, the list itself otherwise (logs and bars go to stderr)."""
    if not items or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="page", file=sys.stderr)
