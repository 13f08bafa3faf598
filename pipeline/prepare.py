"""The CPU-heavy part of ingest, page → stored-ready record, run on batches across processes.

A batch of pages goes through extraction (trafilatura + language id), the NLP stage (entities with
``nlp.pipe`` per language, agreements), chunking and the near-duplicate fingerprint in a worker
process, then through the embedder in the main process (all chunks of the batch in one call, sorted
by length so that little is wasted on padding). Nothing here writes: the main process stores the
results in one transaction per batch, in input order, so the frontier and the index see exactly
what they saw when everything ran in one process.

Why the embedder stays in the main process: it is most of the CPU (multilingual-e5-small, ~0.5-0.8
core-seconds for a 600-word page on these 2-core AVX2 machines) and most of the memory (its
250k-piece tokenizer and ONNX session take ~0.6 GiB), so one copy using every core with ONNX
Runtime's threads, fed by workers that run ahead, keeps both cores busy within the 2 GiB budget;
an embedder per worker would double the memory for no more throughput.

:class:`PreparePool` runs batches in ``workers`` processes (``[ingest] workers``; -1 = cores - 1,
at least 1, at most 4; 0 = none, all in this process) with at most ``2 × workers`` batches in
flight, so memory stays flat however large the crawl. Runs of one batch stay in this process.
Workers are spawned, not forked (ONNX Runtime and BLAS thread pools do not survive a fork), load
their models once, and use one BLAS thread each.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any

from pipeline.config import Settings
from pipeline.dedup import Fingerprint, fingerprint
from pipeline.errors import DocumentError
from pipeline.extract import extract
from pipeline.index.chunking import chunk_document, passage_text
from pipeline.index.embedders import Embedder, Vectors
from pipeline.records import Analysis, Chunk, Document, Page

log = logging.getLogger(__name__)

STAGES = ("extract", "nlp", "fingerprint")  # worker-side; "embed" is added where it runs
MAX_AUTO_WORKERS = 4
AUTO = -1


@dataclass(frozen=True, slots=True)
class Prepared:
    """A changed or new document, analysed, chunked and embedded, ready to store."""

    analysis: Analysis
    chunks: tuple[Chunk, ...]
    fingerprint: Fingerprint
    vectors: Vectors | None = None  # filled by Preparer.embed in the main process


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The page's document is stored with the same content: nothing to redo."""

    doc_id: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The page held no article (``document``: a DocumentError) or extraction crashed on it."""

    error: str
    document: bool


Result = Prepared | Unchanged | Failed
KnownHash = Callable[[str], str | None]  # doc_id -> stored content hash


@dataclass(slots=True)
class BatchResult:
    results: list[Result]
    seconds: dict[str, float] = field(default_factory=dict)


def worker_count(configured: int) -> int:
    """Worker processes for ``[ingest] workers``: -1 = one per core but the embedder's, 0 = none."""
    if configured == AUTO:
        return max(1, min(MAX_AUTO_WORKERS, (os.cpu_count() or 1) - 1))
    return max(0, configured)


class Preparer:
    """The loaded stages of one process. spaCy loads on first use: a batch of unchanged pages never
    loads it. Only the main process's preparer has an ``embedder`` (workers never embed)."""

    def __init__(self, settings: Settings, known: KnownHash, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.known = known
        self.embedder = embedder
        self._analyzer: Any = None

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from pipeline.nlp.analyze import Analyzer

            self._analyzer = Analyzer(self.settings.nlp)
        return self._analyzer

    def prepare(self, pages: Sequence[Page]) -> BatchResult:
        """Extract, analyse, chunk and fingerprint ``pages`` (``embed`` adds the vectors)."""
        seconds = dict.fromkeys(STAGES, 0.0)
        t = time.perf_counter()
        results: list[Result | None] = [None] * len(pages)
        todo: list[tuple[int, Document]] = []
        for i, page in enumerate(pages):
            try:
                doc = extract(page)
            except DocumentError as exc:
                results[i] = Failed(str(exc), document=True)
                continue
            except Exception as exc:  # a parser bug on one page must not stop the run
                log.debug("extraction crashed on %s", page.url, exc_info=True)
                results[i] = Failed(f"{type(exc).__name__}: {exc}", document=False)
                continue
            if self.known(doc.doc_id) == doc.content_hash:
                results[i] = Unchanged(doc.doc_id)
            else:
                todo.append((i, doc))
        seconds["extract"] = time.perf_counter() - t
        if todo:
            t = time.perf_counter()
            analyses = self.analyzer.analyze([d for _, d in todo])
            seconds["nlp"] = time.perf_counter() - t
            t = time.perf_counter()
            for (i, doc), analysis in zip(todo, analyses, strict=True):
                chunks = tuple(chunk_document(doc, self.settings.index.chunk_words))
                results[i] = Prepared(analysis, chunks, fingerprint(doc))
            seconds["fingerprint"] = time.perf_counter() - t
        done = [r for r in results if r is not None]
        assert len(done) == len(pages)
        return BatchResult(done, seconds)

    def embed(self, batch: BatchResult) -> BatchResult:
        """Vectors for every chunk of the batch's prepared documents, in one embedder call."""
        todo = [(i, r) for i, r in enumerate(batch.results) if isinstance(r, Prepared) and r.vectors is None]
        if not todo:
            return batch
        assert self.embedder is not None, "embed runs in the main process, which has the embedder"
        t = time.perf_counter()
        texts = [passage_text(p.analysis.document.title, c.text) for _, p in todo for c in p.chunks]
        vectors = self.embedder.passages(texts)
        offset = 0
        for i, p in todo:
            n = len(p.chunks)
            batch.results[i] = replace(p, vectors=vectors[offset : offset + n])
            offset += n
        batch.seconds["embed"] = batch.seconds.get("embed", 0.0) + time.perf_counter() - t
        return batch


# -- worker processes -----------------------------------------------------------------------------
_WORKER: Preparer | None = None


def init_worker(settings: Settings) -> None:
    """Runs once in each worker: its own read-only store connection and, on first use, models."""
    global _WORKER
    from pipeline.backend import open_store

    store = open_store(settings, readonly=True)

    def known(doc_id: str) -> str | None:
        state = store.document_state(doc_id)
        return None if state is None else state[0]

    _WORKER = Preparer(settings, known)


def _run_batch(pages: list[Page]) -> BatchResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.prepare(pages)


Ticket = Any  # what the caller attached to a batch, handed back with its results


class PreparePool:
    """Ordered, bounded batch processing: ``submit`` returns the batches finished so far."""

    def __init__(self, settings: Settings, local: Preparer, workers: int) -> None:
        self.settings = settings
        self.local = local
        self.workers = workers
        self.max_in_flight = 2 * workers
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight: deque[tuple[Future[BatchResult], list[Page], Ticket]] = deque()

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            from pipeline import prepare_worker

            # One BLAS/OpenMP thread per worker, set in the worker before it loads them.
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("spawn"),
                initializer=prepare_worker.init,
                initargs=(self.settings,),
            )
            log.info("ingest: %d worker processes; embeddings in the main process", self.workers)
        return self._executor

    def submit(
        self, pages: list[Page], ticket: Ticket, parallel: bool
    ) -> Iterator[tuple[BatchResult, Ticket]]:
        """Queue a batch; yield (result, ticket) for every batch that must be handled now to keep
        at most ``max_in_flight`` batches queued (all of them when running in this process)."""
        if not parallel or self.workers == 0:
            yield from self.drain()  # keep the input order
            yield self.local.prepare(pages), ticket
            return
        self._in_flight.append((self._pool().submit(_run_batch, pages), pages, ticket))
        while len(self._in_flight) > self.max_in_flight:
            yield self._next()

    def drain(self) -> Iterator[tuple[BatchResult, Ticket]]:
        while self._in_flight:
            yield self._next()

    def _next(self) -> tuple[BatchResult, Ticket]:
        future, pages, ticket = self._in_flight.popleft()
        try:
            batch = future.result()
        except Exception as exc:  # a worker died (killed, out of memory, a crash in native code)
            log.warning(
                "ingest worker failed (%s: %s); batch redone in the main process", type(exc).__name__, exc
            )
            log.debug("worker failure", exc_info=True)
            if isinstance(exc, BrokenProcessPool):
                self._restart()
            batch = self.local.prepare(pages)
        return batch, ticket

    def _restart(self) -> None:
        """A broken pool fails every queued batch: those are redone here, later ones get a new pool."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
