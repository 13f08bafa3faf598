"""The persistent crawl frontier: one row per URL in the store, with its status, attempts,
next-try time, last error and HTTP validators.

Statuses: ``pending`` (to fetch), ``done`` (fetched and processed), ``retry`` (failed, due again at
``next_try``), ``blocked`` (robots.txt said no; looked at again later), ``dead`` (given up for good).
A URL is marked done only in the transaction that stores its document, so a run killed at any
moment leaves it pending and the next run fetches it again: nothing lost, and — documents being
upserts keyed by URL — nothing duplicated. Only the main thread touches the store.

Workers sharing a PostgreSQL frontier (``pipeline/jobs.py``) override three hooks: ``_settle`` (a
URL's outcome is written only while this worker holds its lease, else ``LeaseLost``), ``_fresh``
(URLs another worker already processed in this crawl are not queued again) and
``_requeue_children``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pipeline.clock import now
from pipeline.config import CrawlSettings
from pipeline.crawl.discovery import Listed
from pipeline.crawl.fetch import Response
from pipeline.crawl.retry import next_try

if TYPE_CHECKING:
    from pipeline.backend.protocols import FrontierStore
    from pipeline.backend.rows import FrontierRow, FrontierValue

log = logging.getLogger(__name__)

# Kinds: what a frontier URL is for. Discovery kinds are fetched on every run (conditionally);
# pages once, and again only when their feed or sitemap gives a newer change date.
DISCOVERY_KINDS = frozenset({"seed", "root", "sitemap"})
PAGE, LINK, SITEMAP = "page", "link", "sitemap"  # link: from a hub page, may turn out not an article


class LeaseLost(Exception):
    """The URL's lease expired and another worker holds it now: roll back what was done for it."""


@dataclass(frozen=True, slots=True)
class FrontierItem:
    url: str
    source: str
    kind: str
    attempts: int = 0
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def of(cls, row: FrontierRow, kind: str | None = None) -> FrontierItem:
        return cls(
            row["url"], row["source"], kind or row["kind"], row["attempts"], row["etag"], row["last_modified"]
        )


@dataclass(frozen=True, slots=True)
class Failure:
    gave_up: bool
    next_try: str | None


class Frontier:
    def __init__(self, store: FrontierStore, policy: CrawlSettings) -> None:
        self.store = store
        self.policy = policy

    def seed(self, url: str, kind: str) -> tuple[FrontierItem | None, FrontierRow | None]:
        """(item to fetch now, or None) and the row when the seed is dead or not yet due
        (neither when another worker sharing the frontier fetched it in this crawl)."""
        # Child sitemaps are discovery too: looked at every run even when the index is unchanged.
        self._requeue_children(url)
        row = self.store.frontier_row(url)
        if row is None:
            self.store.frontier_insert([(url, url, kind, None)])
            return FrontierItem(url, url, kind), None
        if row["status"] == "dead" or (
            row["status"] in ("retry", "blocked") and row["next_try"] and row["next_try"] > now()
        ):
            return None, row
        if row["status"] == "done" and self._fresh([url]):
            return None, None  # another worker of this crawl fetched it already
        if row["kind"] != kind or row["status"] == "done":
            self.store.frontier_set(url, kind=kind, status="pending")
        return FrontierItem.of(row, kind), None

    def revisit(self, sources: Sequence[str]) -> int:
        """Queue the known articles of these sources that are due to be asked again (conditional GET:
        their validators go with them); how many. See ``revisit_due`` for the schedule."""
        at = datetime.now(UTC)
        due = [
            r["url"]
            for r in self.store.revisit_candidates(sources)
            if revisit_due(r["fetched_at"], r["first_seen"], r["published"], at, self.policy)
        ]
        for url in due:
            self.store.frontier_set(url, status="pending")
        if due:
            log.info("%d known articles due to be asked again", len(due))
        return len(due)

    def resume(self, sources: Sequence[str]) -> list[FrontierItem]:
        """URLs of these sources left pending by an earlier (maybe killed) run, or due again."""
        return [FrontierItem.of(r) for r in self.store.frontier_due(sources, now())]

    def offer(self, listed: Sequence[Listed], source: str, kind: str) -> tuple[list[FrontierItem], int]:
        """Record URLs a feed/sitemap/hub lists; return (those to fetch now, how many were new)."""
        rows = self.store.frontier_rows([x.url for x in listed])
        fresh = [x for x in listed if x.url not in rows]
        self.store.frontier_insert([(x.url, source, kind, x.lastmod) for x in fresh])
        due = [FrontierItem(x.url, source, kind) for x in fresh]
        stamp = now()
        settled = self._fresh([u for u, r in rows.items() if r["status"] == "done"])
        for x in listed:
            row = rows.get(x.url)
            if row is None or x.url in settled:
                continue
            status = row["status"]
            changed = bool(x.lastmod and (row["fetched_at"] is None or x.lastmod > row["fetched_at"]))
            if status == "done" and (changed or kind == SITEMAP):
                self.store.frontier_set(x.url, status="pending", lastmod=x.lastmod)
                due.append(FrontierItem.of(row))
            elif status == "pending" or (
                status in ("retry", "blocked") and (row["next_try"] is None or row["next_try"] <= stamp)
            ):
                due.append(FrontierItem.of(row))
        return due, len(fresh)

    def done(
        self,
        item: FrontierItem,
        resp: Response | None,
        *,
        doc_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Mark fetched and processed (caller holds the transaction that stored the outcome)."""
        fields: dict[str, FrontierValue] = {
            "status": "done",
            "attempts": 0,
            "next_try": None,
            "last_error": error,
        }
        fields["fetched_at"] = now()
        if doc_id is not None:
            fields["doc_id"] = doc_id
        if resp is not None:
            fields["http_status"] = resp.status
            if not resp.not_modified:
                fields.update(etag=resp.etag, last_modified=resp.last_modified, final_url=resp.final_url)
        self._settle(item.url, **fields)
        if resp is not None and not resp.not_modified and resp.final_url != item.url:
            self._alias(resp, item, doc_id)

    def _alias(self, resp: Response, item: FrontierItem, doc_id: str | None) -> None:
        """A redirect target is the same document: record it done so it is not fetched again."""
        from pipeline.crawl.urls import normalize

        target = normalize(resp.final_url)
        if target is None or target == item.url:
            return
        self.store.frontier_insert([(target, item.source, item.kind, None)])
        row = self.store.frontier_row(target)
        if row is not None and row["status"] != "dead" and row["kind"] not in DISCOVERY_KINDS:
            self.store.frontier_set(
                target,
                status="done",
                fetched_at=now(),
                etag=resp.etag,
                last_modified=resp.last_modified,
                final_url=resp.final_url,
                doc_id=doc_id,
                http_status=resp.status,
            )

    def failed(
        self, item: FrontierItem, error: str, *, permanent: bool, retry_after: float | None = None
    ) -> Failure:
        """Record a failure: deferred with backoff, or given up (permanent, or out of attempts)."""
        attempts = item.attempts + 1
        if permanent or attempts >= self.policy.max_attempts:
            self._settle(item.url, status="dead", attempts=attempts, next_try=None, last_error=error)
            return Failure(True, None)
        when = next_try(self.policy, attempts, retry_after)
        self._settle(item.url, status="retry", attempts=attempts, next_try=when, last_error=error)
        return Failure(False, when)

    def blocked(self, item: FrontierItem, reason: str) -> str:
        when = (datetime.now(UTC) + timedelta(seconds=self.policy.robots_recheck_s)).isoformat(
            timespec="seconds"
        )
        self._settle(item.url, status="blocked", next_try=when, last_error=reason)
        return when

    # -- hooks (one run on one store here; workers sharing a frontier override them) -------------
    def _settle(self, url: str, **fields: FrontierValue) -> None:
        """Write a fetched URL's outcome (inside the caller's transaction when it has one)."""
        self.store.frontier_set(url, **fields)

    def _fresh(self, urls: Sequence[str]) -> set[str]:
        """Of these done URLs, those already processed in this crawl: never queued again in it.
        One run is the whole crawl here, and the crawler never fetches a URL twice in a run."""
        return set()

    def _requeue_children(self, source: str) -> None:
        self.store.frontier_requeue(source, SITEMAP)


WEEK_DAYS = 7


def revisit_due(
    fetched_at: str | None, first_seen: str | None, published: str | None, at: datetime, policy: CrawlSettings
) -> bool:
    """Is a stored article due to be asked again? Every ``revisit_after_s`` in its first week,
    every 7 × that up to ``revisit_until_days``, then never; its age counts from its published date
    (else from when it was first seen). ``revisit_after_s = 0``: every run; ``revisit_until_days =
    0``: never."""
    if policy.revisit_until_days <= 0:
        return False
    if policy.revisit_after_s <= 0:
        return True
    born = _when(published) or _when(first_seen) or at
    age_days = (at - born).total_seconds() / 86400
    if age_days >= policy.revisit_until_days:
        return False
    interval = policy.revisit_after_s * (1 if age_days < WEEK_DAYS else WEEK_DAYS)
    last = _when(fetched_at)
    return last is None or (at - last).total_seconds() >= interval


def _when(value: str | None) -> datetime | None:
    """An ISO date or time as an aware datetime (a date is midnight UTC), None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
