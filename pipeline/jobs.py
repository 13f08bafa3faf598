"""The ingest run: discover → fetch/read → extract → NLP → store → index → report.

One bad document is logged and counted, never fatal. Re-running over unchanged sources adds
nothing. A lock file keeps two runs off one data dir. The vector index is reconciled with the
store at the start of every run, so a run killed between a store commit and an index save is
repaired by the next one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pipeline.config import Settings
from pipeline.crawl.fetch import Fetcher, RobotsDisallowed, is_url
from pipeline.dedup import Deduplicator
from pipeline.errors import DocumentError, UsageError
from pipeline.extract import decode_html, extract
from pipeline.index.chunking import chunk_document, passage_text
from pipeline.index.embedders import Embedder, make_embedder
from pipeline.index.search import index_dir
from pipeline.index.vectors import VectorIndex
from pipeline.nlp.analyze import Analyzer
from pipeline.records import Analysis, Document, IngestReport, Page
from pipeline.store import Store

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")
BATCH = 16


@contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "ingest.lock"
    handle: IO[str] = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"another ingest is running on {data_dir} (lock {path})") from None
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
    path = Path(settings.sources)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no SOURCE given and no sources file at {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read sources file {path}: {exc}") from None
    urls: list[str] = []
    for src in data.get("source", []):
        if src.get("enabled", False):
            urls.extend(src.get("feeds", []) + src.get("sitemaps", []) + src.get("urls", []))
    return urls


def _local_files(source: str) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in HTML_SUFFIXES and p.is_file())
    if path.is_file():
        return [path]
    raise UsageError(f"no such file or directory: {source}")


class Ingestor:
    """Holds the loaded stages for one run (or for the app's re-ingest)."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder or make_embedder(
            settings.index.embedder, settings.index.e5_model_dir, settings.index.e5_runtime
        )
        self.analyzer = Analyzer(settings.nlp)
        self.vectors = VectorIndex.load(index_dir(settings), self.embedder.name, self.embedder.dim)
        self.dedup = Deduplicator(store)

    def reconcile(self) -> None:
        """Make the vector index hold exactly the stored chunks (after a crash, or a removed doc)."""
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

    def store_batch(self, analyses: list[Analysis], report: IngestReport) -> None:
        for analysis in analyses:
            doc = analysis.document
            state = self.store.document_state(doc.doc_id)
            if state is not None and state[0] == doc.content_hash:
                report.unchanged += 1
                self.store.touch(doc.doc_id)
                continue
            chunks = chunk_document(doc, self.settings.index.chunk_words)
            vectors = self.embedder.passages([passage_text(doc.title, c.text) for c in chunks])
            with self.store.atomic():
                dup = self.dedup.check(doc)
                self.store.save_analysis(
                    analysis, text_hash=dup.text_hash, minhash=dup.signature, duplicate_of=dup.duplicate_of
                )
                removed, added = self.store.replace_chunks(doc.doc_id, chunks)
            self.vectors.remove(removed)
            self.vectors.add(added, vectors)
            if dup.duplicate_of:
                report.duplicates += 1
            if state is None:
                report.new += 1
            else:
                report.updated += 1
        self.store.db.commit()


def ingest(settings: Settings, sources: list[str], *, allow_private: bool = False) -> IngestReport:
    """One ingest run over SOURCE arguments (or the configured sources)."""
    started = time.monotonic()
    report = IngestReport()
    targets = sources or configured_sources(settings)
    for s in targets:  # validate every source before touching the store: bad usage loses nothing
        if not is_url(s):
            _local_files(s)
    with run_lock(settings.data_path):
        store = Store(settings.data_path)
        run_id = store.start_run()
        try:
            ingestor = Ingestor(settings, store)
            ingestor.reconcile()
            batch: list[Document] = []
            for page in _pages(
                targets, settings, allow_private or settings.crawl.allow_private_hosts, report
            ):
                doc = _extract_one(page, report)
                if doc is not None:
                    batch.append(doc)
                if len(batch) >= BATCH:
                    ingestor.store_batch(ingestor.analyzer.analyze(batch), report)
                    batch = []
            if batch:
                ingestor.store_batch(ingestor.analyzer.analyze(batch), report)
            if ingestor.vectors.dirty:
                ingestor.vectors.save(index_dir(settings))
        finally:
            report.seconds = time.monotonic() - started
            store.finish_run(run_id, report.as_json())
            store.close()
    return report


def _fail(report: IngestReport, source: str, error: str) -> None:
    report.failed += 1
    report.failures.append({"source": source, "error": error})
    log.warning("failed: %s: %s", source, error)


def _pages(
    targets: list[str], settings: Settings, allow_private: bool, report: IngestReport
) -> Iterator[Page]:
    fetcher: Fetcher | None = None
    progress = _progress()
    try:
        for target in targets:
            if is_url(target):
                fetcher = fetcher or Fetcher(settings.crawl, allow_private)
                try:
                    for page in fetcher.pages(target):
                        report.seen += 1
                        if page.source.startswith("error: "):
                            _fail(report, page.url, page.source[7:])
                            continue
                        report.fetched += 1
                        yield page
                except RobotsDisallowed as exc:
                    report.seen += 1
                    report.skipped_robots += 1
                    log.info("%s", exc)
                except DocumentError as exc:
                    report.seen += 1
                    _fail(report, target, str(exc))
                continue
            for path in progress(_local_files(target)):
                report.seen += 1
                try:
                    html = decode_html(path.read_bytes())
                except (OSError, DocumentError) as exc:
                    _fail(report, str(path), str(exc))
                    continue
                report.fetched += 1
                yield Page(url=path.resolve().as_uri(), html=html, source=str(path))
    finally:
        if fetcher is not None:
            fetcher.close()


def _extract_one(page: Page, report: IngestReport) -> Document | None:
    try:
        return extract(page)
    except DocumentError as exc:
        _fail(report, page.source or page.url, str(exc))
    except Exception as exc:
        log.debug("extraction crashed on %s", page.url, exc_info=True)
        _fail(report, page.source or page.url, f"{type(exc).__name__}: {exc}")
    return None


def _progress() -> Any:
    """tqdm on a TTY, a pass-through otherwise (logs and bars go to stderr)."""
    if not sys.stderr.isatty():
        return lambda it: it
    from tqdm import tqdm

    return lambda it: tqdm(it, desc="ingest", unit="page", file=sys.stderr)
