"""The URL side of an ingest run: seeds → frontier → polite concurrent fetching → documents.

What a fetched URL is for and which failures are final is crawl policy (``crawl/policy.py``);
this walks a frontier alone (one run over the store). PostgreSQL workers sharing a frontier
subclass it (``pipeline/backend/pg/coordinator.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.backend.rows import FrontierRow
from pipeline.config import CrawlSettings
from pipeline.crawl.crawler import Crawler, Outcome
from pipeline.crawl.discovery import Listed, feed_links, html_hrefs, sitemap_links
from pipeline.crawl.errors import FetchError, RobotsDisallowed
from pipeline.crawl.fetch import Fetcher, Response, to_page
from pipeline.crawl.frontier import LINK, PAGE, SITEMAP, Frontier, FrontierItem
from pipeline.crawl.policy import PERMANENT_KINDS, permanent, route
from pipeline.crawl.sources import Seed, Source
from pipeline.crawl.throttle import HostThrottle
from pipeline.crawl.urls import article_links, host_of
from pipeline.ingest.batches import Hooks, IngestRun, progress_bar

log = logging.getLogger("pipeline.jobs")


class CrawlRun:
    """The URL side of one run: seeds → frontier → polite concurrent fetching → documents."""

    def __init__(self, run: IngestRun, policy: CrawlSettings, allow_private: bool) -> None:
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
        self.progress = progress_bar("crawl")
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
        what = route(resp, item.kind)
        if what in ("feed", "sitemap"):
            self._discovered(item, resp, what)
        elif what == "hub":
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
        self._record_failure(item, str(exc), permanent(exc), exc.retry_after)

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
