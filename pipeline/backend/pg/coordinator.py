"""PostgreSQL's run coordination: ``defintel ingest`` workers, on one or several machines, share
one crawl through leases on the frontier in the database (``leases.py``).

A worker leases its work instead of walking the frontier alone — local files, seeds and every URL
found from them — renews its leases while it works, marks a URL done only in the transaction that
stores its document while still holding its lease (else the document is dropped: the URL is
another worker's now), and gives its leases back at exit; a killed worker's leases expire and are
taken over by the others. The last worker of a crawl to finish refreshes the search statistics
and writes the watch digests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.backend.pg.leases import TRANSIENT, FrontierLeases, LeaseRenewer
from pipeline.backend.pg.schema import STATS_LOCK
from pipeline.backend.pg.stats import refresh
from pipeline.backend.pg.store import PgStore
from pipeline.backend.protocols import VectorIndex
from pipeline.backend.rows import FrontierRow, FrontierValue
from pipeline.clock import now
from pipeline.config import CrawlSettings, Settings
from pipeline.crawl.crawler import Outcome
from pipeline.crawl.frontier import SITEMAP, Frontier, FrontierItem, LeaseLost
from pipeline.crawl.sources import Seed
from pipeline.crawl.urls import host_of
from pipeline.errors import UsageError
from pipeline.ingest.batches import LOCAL_KIND, LOCAL_SOURCE, IngestRun, progress_bar
from pipeline.ingest.crawl_run import CrawlRun

log = logging.getLogger("pipeline.jobs")


class LeaseCoordinator:
    """One worker of a shared PostgreSQL crawl."""

    concurrent = True
    transient: tuple[type[BaseException], ...] = TRANSIENT

    def __init__(self, settings: Settings, store: PgStore, policy: CrawlSettings) -> None:
        self.policy = policy
        self.shared = _Shared.open(settings, store, policy)
        self.worker = self.shared.leases.worker

    def start_run(self) -> int:
        return self.shared.leases.start_run()

    def working(self) -> AbstractContextManager[object]:
        """Leases renewed while the run works, all given back at its end (Ctrl-C and, under the
        CLI, SIGTERM — systemd's stop — too)."""
        return self.shared.holding()

    def files(self, run: IngestRun, paths: Sequence[Path]) -> None:
        _SharedFiles(run, self.shared).ingest(paths)

    def crawl(self, run: IngestRun, seeds: Sequence[Seed], allow_private: bool) -> None:
        _SharedCrawl(run, self.policy, allow_private, self.shared).crawl(list(seeds))

    def last_worker(self) -> bool:
        """No other worker of this crawl is still adding to the corpus."""
        return not self.shared.leases.others_running()

    def refresh_search(self, vectors: VectorIndex) -> None:
        """Per-language statistics the PostgreSQL searcher reads (vectors are in the chunk rows)."""
        self.shared.refresh_statistics()


class _LeasedFiles:
    """A worker's local files: settled through its leases (``IngestRun.ledger``)."""

    def __init__(self, run: IngestRun, leases: FrontierLeases) -> None:
        self.run = run
        self.leases = leases

    def stored(self, url: str, fields: dict[str, FrontierValue]) -> bool:
        return self.leases.finish(url, **fields)

    def failed(self, url: str, error: str) -> bool:
        return self.leases.finish(url, last_error=error)

    def unchanged(self, url: str, doc_id: str) -> bool:
        """An unchanged file's lease ends with its document touched, in one transaction; False
        when the lease was lost (the new holder counts it)."""
        store = self.run.store
        try:
            with store.atomic():
                store.touch(doc_id)
                if not self.leases.finish(url, status="done", fetched_at=now()):
                    raise LeaseLost(url)
        except LeaseLost:
            return False
        return True


@dataclass(slots=True)
class _Shared:
    """A worker's share of a PostgreSQL crawl: its leases and how it claims."""

    leases: FrontierLeases
    claim: int  # URLs or files per claim
    poll_s: float  # pause while the work left is leased by other workers

    @classmethod
    def open(cls, settings: Settings, store: PgStore, policy: CrawlSettings) -> _Shared:
        ing = settings.ingest
        if ing.lease_s <= 0 or ing.claim_batch < 1:
            raise UsageError("[ingest] lease_s must be > 0 and claim_batch ≥ 1")
        leases = FrontierLeases(store, lease_s=ing.lease_s, host_delay_s=policy.delay_s)
        return cls(leases, ing.claim_batch, min(1.0, max(0.05, ing.lease_s / 10)))

    def holding(self) -> AbstractContextManager[Any]:
        return LeaseRenewer(self.leases)

    def refresh_statistics(self) -> None:
        """Refresh the searcher's statistics unless other workers are still adding to the corpus
        (the last one to finish does it); one worker at a time (they replace the same rows)."""
        if self.leases.others_running():
            log.info("search statistics left to the workers still running")
            return
        store = self.leases.store
        with store.atomic():
            store.serialize(STATS_LOCK)
            refresh(store)


class _SharedFiles:
    """Local files of a PostgreSQL crawl: each file's frontier row (url = file URI, source "local",
    kind "file") is leased like a URL and stamped with the crawl when settled, so workers given the
    same folder read each file once per crawl, and a killed worker's files are taken over."""

    WINDOW = 256  # files looked at per claim (claims walk the list in order, then sweep what is left)

    def __init__(self, run: IngestRun, shared: _Shared) -> None:
        self.run = run
        self.shared = shared
        self.leases = shared.leases
        run.ledger = _LeasedFiles(run, shared.leases)

    def ingest(self, paths: Sequence[Path]) -> None:
        if not paths:
            return
        by_url = {p.resolve().as_uri(): p for p in paths}
        urls = list(by_url)
        store = self.run.store
        for i in range(0, len(urls), 1000):
            store.frontier_insert([(u, LOCAL_SOURCE, LOCAL_KIND, None) for u in urls[i : i + 1000]])
        bar = progress_bar("files")
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

    def __init__(self, store: PgStore, policy: CrawlSettings, leases: FrontierLeases) -> None:
        super().__init__(store, policy)
        self.leases = leases

    def _settle(self, url: str, **fields: FrontierValue) -> None:
        if not self.leases.finish(url, **fields):
            raise LeaseLost(url)

    def _fresh(self, urls: Sequence[str]) -> set[str]:
        return self.leases.settled(urls)

    def _requeue_children(self, source: str) -> None:
        self.leases.requeue(source, SITEMAP)


class _SharedCrawl(CrawlRun):
    """The URL side of a PostgreSQL crawl: what this worker fetches is what it leased.

    Seeds and discovered URLs only go into the frontier; the worker claims batches of due URLs
    (whole hosts at a time, so politeness holds across workers), gives a host back once it fetched
    what it claimed there (``next_fetch`` = now + the host's delay), and claims more as the fetches
    drain. It stops when no URL of its sources is due any more, whoever held it: while others still
    work it waits, and takes over what a killed worker's expired leases leave."""

    def __init__(self, run: IngestRun, policy: CrawlSettings, allow_private: bool, shared: _Shared) -> None:
        super().__init__(run, policy, allow_private)
        self.shared = shared
        self.leases = shared.leases
        self.frontier = _LeasedFrontier(self.leases.store, policy, self.leases)
        self.crawler.on_idle = self._host_idle
        # Claims and host releases exclude each other: a host is never given back while URLs just
        # claimed on it are being queued.
        self.claim_lock = threading.Lock()
        self.next_claim = 0.0

    def crawl(self, seeds: list[Seed]) -> None:
        self.sources = {s.url: s.source for s in seeds}
        sources = list(self.sources)
        self.progress = progress_bar("crawl")
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
