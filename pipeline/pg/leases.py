"""Crawl-frontier leases: ingest workers on one or several machines share the PostgreSQL frontier.

A worker *claims* due URLs in one transaction: first whole hosts (``crawl_hosts`` rows, locked with
``FOR UPDATE SKIP LOCKED``, so concurrent claimers never wait on each other and never take the same
host), then up to ``n`` due URLs of those hosts (locked the same way). Both get a lease — the worker's
id and an expiry in the database's clock, so machines' clocks do not matter. Politeness holds across
workers because a host is leased to one worker at a time (its own throttle spaces the requests) and a
released host carries ``next_fetch``, the earliest time the next worker may ask it again.

A worker that is alive renews its leases (``renew``, e.g. every lease_s / 3); a killed worker's leases
expire and any worker's next ``claim`` takes its hosts and URLs over. ``finish`` ends a URL's lease
inside the caller's transaction *only if this worker still holds it*: call it in the transaction that
stores the document, and roll back when it returns False (the lease expired and another worker has
the URL), so no URL is processed twice and none is lost.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from pipeline.pg.store import FRONTIER_SELECT, PgStore
from pipeline.store import FRONTIER_COLUMNS, now

log = logging.getLogger(__name__)

DUE = "status IN ('pending', 'retry', 'blocked') AND (next_try IS NULL OR next_try <= ?)"
FREE_URL = "(lease_until IS NULL OR lease_until < now())"  # never leased, or the lease expired


def worker_id() -> str:
    """``host:pid:random``: unique per process, readable in the tables."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class FrontierLeases:
    """One worker's view of the shared frontier (see the module docstring)."""

    def __init__(
        self,
        store: PgStore,
        worker: str | None = None,
        *,
        lease_s: float = 300.0,
        host_delay_s: float = 1.0,
    ) -> None:
        self.store = store
        self.worker = worker or worker_id()
        self.lease_s = float(lease_s)
        self.host_delay_s = float(host_delay_s)

    def _interval(self, seconds: float) -> str:
        return f"{float(seconds)} seconds"

    def claim(
        self, n: int, sources: Sequence[str] | None = None, *, max_hosts: int = 8
    ) -> list[dict[str, Any]]:
        """Lease up to ``n`` due URLs (of these sources) on at most ``max_hosts`` hosts no other worker
        holds; returns their frontier rows, oldest first. Expired leases are taken over here."""
        if n < 1 or max_hosts < 1:
            return []
        at = now()
        src_cond, src_params = ("", []) if sources is None else (" AND source = ANY(?)", [list(sources)])
        db = self.store.db
        with self.store.atomic():
            # Hosts of due URLs get a row once (concurrent inserts of one host: one wins, the rest skip).
            db.execute(
                f"""INSERT INTO crawl_hosts (host) SELECT DISTINCT host FROM frontier
                    WHERE {DUE}{src_cond} ON CONFLICT (host) DO NOTHING""",
                [at, *src_params],
            )
            hosts = [
                r[0]
                for r in db.execute(
                    f"""SELECT h.host FROM crawl_hosts h
                        WHERE (h.lease_until IS NULL OR h.lease_until < now() OR h.leased_by = ?)
                          AND (h.next_fetch IS NULL OR h.next_fetch <= now() OR h.leased_by = ?)
                          AND EXISTS (SELECT 1 FROM frontier f WHERE f.host = h.host
                                      AND {DUE.replace("status", "f.status").replace("next_try", "f.next_try")}
                                      AND (f.lease_until IS NULL OR f.lease_until < now())
                                      {src_cond.replace("source", "f.source")})
                        ORDER BY h.host LIMIT ? FOR UPDATE OF h SKIP LOCKED""",
                    [self.worker, self.worker, at, *src_params, max_hosts],
                )
            ]
            if not hosts:
                return []
            db.execute(
                "UPDATE crawl_hosts SET leased_by = ?, lease_until = now() + ?::interval WHERE host = ANY(?)",
                (self.worker, self._interval(self.lease_s), hosts),
            )
            rows = db.execute(
                f"""SELECT {FRONTIER_SELECT} FROM frontier
                    WHERE host = ANY(?) AND {DUE} AND {FREE_URL}{src_cond}
                    ORDER BY first_seen, url LIMIT ? FOR UPDATE SKIP LOCKED""",
                [hosts, at, *src_params, n],
            ).rows
            urls = [r["url"] for r in rows]
            if urls:
                db.execute(
                    "UPDATE frontier SET leased_by = ?, lease_until = now() + ?::interval WHERE url = ANY(?)",
                    (self.worker, self._interval(self.lease_s), urls),
                )
            held = db.execute(
                "SELECT DISTINCT host FROM frontier WHERE host = ANY(?) AND leased_by = ? AND lease_until >= now()",
                (hosts, self.worker),
            )
            idle = sorted(set(hosts) - {r[0] for r in held})
            if idle:  # hosts whose due URLs another claimer locked meanwhile, or beyond n: not ours
                db.execute(
                    "UPDATE crawl_hosts SET leased_by = NULL, lease_until = NULL WHERE host = ANY(?) AND leased_by = ?",
                    (idle, self.worker),
                )
        return [dict(r) for r in rows]

    def renew(self) -> int:
        """Extend every lease this worker holds; returns the number of URLs still held."""
        interval = self._interval(self.lease_s)
        with self.store.atomic():
            self.store.db.execute(
                "UPDATE crawl_hosts SET lease_until = now() + ?::interval WHERE leased_by = ?",
                (interval, self.worker),
            )
            return self.store.db.execute(
                "UPDATE frontier SET lease_until = now() + ?::interval WHERE leased_by = ?",
                (interval, self.worker),
            ).rowcount

    def finish(self, url: str, **fields: Any) -> bool:
        """Set some frontier columns of a leased URL and end its lease, only while this worker holds it.

        Call inside the transaction that stores the URL's document; False means the lease was lost
        (expired and taken over): roll back, the other worker processes the URL."""
        bad = set(fields) - FRONTIER_COLUMNS
        if bad:
            raise ValueError(f"unknown frontier columns: {sorted(bad)}")
        cols = "".join(f"{k} = ?, " for k in fields)
        cur = self.store.db.execute(
            f"""UPDATE frontier SET {cols}leased_by = NULL, lease_until = NULL, updated_at = ?
                WHERE url = ? AND leased_by = ? AND lease_until >= now()""",
            (*fields.values(), now(), url, self.worker),
        )
        return cur.rowcount == 1

    def release(self, urls: Sequence[str] | None = None) -> int:
        """Give back leased URLs without finishing them (all of this worker's when None), and the hosts
        it no longer needs, each with ``next_fetch`` = now + the politeness delay."""
        db = self.store.db
        with self.store.atomic():
            if urls is None:
                n = db.execute(
                    "UPDATE frontier SET leased_by = NULL, lease_until = NULL WHERE leased_by = ?",
                    (self.worker,),
                ).rowcount
            else:
                n = db.execute(
                    "UPDATE frontier SET leased_by = NULL, lease_until = NULL WHERE leased_by = ? AND url = ANY(?)",
                    (self.worker, list(urls)),
                ).rowcount
            db.execute(
                """UPDATE crawl_hosts h SET leased_by = NULL, lease_until = NULL,
                       next_fetch = now() + ?::interval
                   WHERE h.leased_by = ? AND NOT EXISTS (
                       SELECT 1 FROM frontier f WHERE f.host = h.host AND f.leased_by = ?)""",
                (self._interval(self.host_delay_s), self.worker, self.worker),
            )
        return n

    def held(self) -> list[str]:
        """URLs this worker holds a live lease on."""
        rows = self.store.db.execute(
            "SELECT url FROM frontier WHERE leased_by = ? AND lease_until >= now() ORDER BY url",
            (self.worker,),
        )
        return [r[0] for r in rows]

    def hosts(self) -> list[str]:
        rows = self.store.db.execute(
            "SELECT host FROM crawl_hosts WHERE leased_by = ? AND lease_until >= now() ORDER BY host",
            (self.worker,),
        )
        return [r[0] for r in rows]
