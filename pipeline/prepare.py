"""The CPU-heavy part of ingest, page → stored-ready record, run on batches across processes.

A batch of pages goes through extraction (trafilatura + language id), the NLP stage (entities with
``nlp.pipe`` per language, agreements), chunking, the embedder (all chunks of the batch in one
call, sorted by length so batches waste little on padding) and the near-duplicate fingerprint.
Nothing here writes: the main process stores the results in one transaction per batch, in input
order, so the frontier and the index see exactly what they saw when this ran in one process.

:class:`PreparePool` runs batches in ``workers`` processes (``[ingest] workers``; 0 = one per
core, capped at 4) with at most ``2 × workers`` batches in flight, so memory stays flat however
large the crawl, or in this process when ``workers`` is 1 or the run has one batch only. Each worker
loads its own models once (spawned, not forked: ONNX Runtime and BLAS thread pools do not survive
a fork) and gives the embedder ``cores // workers`` threads, so the cores are not oversubscribed.
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
from pipeline.index.embedders import Embedder, Vectors, make_embedder
from pipeline.records import Analysis, Chunk, Document, Page

log = logging.getLogger(__name__)

STAGES = ("extract", "nlp", "embed", "fingerprint")
MAX_AUTO_WORKERS = 4


@dataclass(frozen=True, slots=True)
class Prepared:
    """A changed or new document, analysed, chunked and embedded, ready to store."""

    analysis: Analysis
    chunks: tuple[Chunk, ...]
    vectors: Vectors
    fingerprint: Fingerprint


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
    return configured if configured > 0 else max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))


class Preparer:
    """The loaded stages of one process. Models load on first use: a batch of unchanged pages
    never loads spaCy or the embedder."""

    def __init__(self, settings: Settings, known: KnownHash, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.known = known
        self._embedder = embedder
        self._analyzer: Any = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            ix = self.settings.index
            self._embedder = make_embedder(ix.embedder, ix.e5_model_dir, ix.e5_runtime, threads=ix.threads)
        return self._embedder

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from pipeline.nlp.analyze import Analyzer

            self._analyzer = Analyzer(self.settings.nlp)
        return self._analyzer

    def prepare(self, pages: Sequence[Page]) -> BatchResult:
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
            chunked = [tuple(chunk_document(d, self.settings.index.chunk_words)) for _, d in todo]
            texts = [
                passage_text(d.title, c.text) for (_, d), cs in zip(todo, chunked, strict=True) for c in cs
            ]
            vectors = self.embedder.passages(texts)
            seconds["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            offset = 0
            for (i, doc), analysis, chunks in zip(todo, analyses, chunked, strict=True):
                n = len(chunks)
                results[i] = Prepared(analysis, chunks, vectors[offset : offset + n].copy(), fingerprint(doc))
                offset += n
            seconds["fingerprint"] = time.perf_counter() - t
        done = [r for r in results if r is not None]
        assert len(done) == len(pages)
        return BatchResult(done, seconds)


# -- worker processes -----------------------------------------------------------------------------
_WORKER: Preparer | None = None


def _init_worker(settings: Settings) -> None:
    """Runs once in each worker: its own read-only store connection and, on first use, models."""
    global _WORKER
    from pipeline.store import Store

    store = Store(settings.data_path, readonly=True)

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
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            # Each worker's BLAS/OpenMP pools sized like its embedder (read at import in the child).
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = str(threads)
            settings = replace(self.settings, index=replace(self.settings.index, threads=threads))
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("spawn"),
                initializer=_init_worker,
                initargs=(settings,),
            )
            log.info("ingest: %d worker processes, %d embedder thread(s) each", self.workers, threads)
        return self._executor

    def submit(
        self, pages: list[Page], ticket: Ticket, parallel: bool
    ) -> Iterator[tuple[BatchResult, Ticket]]:
        """Queue a batch; yield (result, ticket) for every batch that must be handled now to keep
        at most ``max_in_flight`` batches queued (all of them when running in this process)."""
        if not parallel or self.workers <= 1:
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
            return future.result(), ticket
        except Exception as exc:  # a worker died (killed, out of memory, a crash in native code)
            log.warning(
                "ingest worker failed (%s: %s); batch redone in the main process", type(exc).__name__, exc
            )
            log.debug("worker failure", exc_info=True)
            if isinstance(exc, BrokenProcessPool):
                self._restart()
            return self.local.prepare(pages), ticket

    def _restart(self) -> None:
        """A broken pool fails every queued batch: those are redone here, later ones get a new pool."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
