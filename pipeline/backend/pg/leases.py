"""Crawl-frontier leases: ingest workers on one or several machines share the PostgreSQL frontier.

A worker *claims* due URLs in one transaction: first whole hosts (``crawl_hosts`` rows, locked with
``FOR UPDATE SKIP LOCKED``, so concurrent claimers never wait on each other and never take the same
host), then up to ``n`` due URLs of those hosts, spread over them (locked the same way). Both get a
lease — the worker's id and an expiry in the database's clock, so machines' clocks do not matter.
Politeness holds across workers because a host is leased to one worker at a time while it fetches
from it (its own throttle spaces the requests) and a released host carries ``next_fetch``, the
earliest time any worker may ask it again (``release_host`` after the last claimed URL of the host
was fetched; the URLs stay leased while they are extracted and stored).

A worker that is alive renews its leases (``renew``, every lease_s / 3 from ``LeaseRenewer``); a
killed worker's leases expire and any worker's next ``claim`` takes its hosts and URLs over.
``finish`` ends a URL's lease inside the caller's transaction *only if this worker still holds it*:
call it in the transaction that stores the document, and roll back when it returns False (the lease
expired and another worker has the URL), so no URL is processed twice and none is lost.

Runs are leased too (``start_run``): workers running at the same time form one *crawl* (``gen``,
the run_id of its first run; a worker starting while others run joins theirs). ``finish`` stamps
the URL with the crawl, so what is looked at again on every crawl — feeds, sitemaps, site roots and
local files — is looked at once per crawl however many workers share it (``settled``, ``requeue``,
``claim_urls``).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import cast

import psycopg

from pipeline.backend.pg.store import FRONTIER_SELECT, PgStore
from pipeline.backend.rows import FrontierRow, FrontierValue
from pipeline.backend.sqlite import FRONTIER_COLUMNS
from pipeline.clock import now

log = logging.getLogger(__name__)

DUE = "status IN ('pending', 'retry', 'blocked') AND (next_try IS NULL OR next_try <= ?)"
FREE_URL = "(lease_until IS NULL OR lease_until < now())"  # never leased, or the lease expired
# Workers starting together decide one at a time whether they start a crawl or join one.
CRAWL_LOCK = 0x0DEF1E8
# Errors after which a whole transaction can simply be run again (two workers' batches locked the
# same rows in opposite orders, or the server cancelled one to break the cycle).
TRANSIENT: tuple[type[Exception], ...] = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


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
        self.run_id: int | None = None
        self.gen: int | None = None  # the crawl this worker's run belongs to (start_run)

    def _interval(self, seconds: float) -> str:
        return f"{float(seconds)} seconds"

    def claim(self, n: int, sources: Sequence[str] | None = None, *, max_hosts: int = 8) -> list[FrontierRow]:
        """Lease up to ``n`` due URLs (of these sources) on at most ``max_hosts`` hosts no other worker
        holds, spread over those hosts (``n / hosts`` each, oldest first); returns their frontier
        rows, oldest first. Expired leases are taken over here."""
        if n < 1 or max_hosts < 1:
            return []
        at = now()
        src_cond, src_params = ("", []) if sources is None else (" AND source = ANY(?)", [list(sources)])
        f_due = DUE.replace("status", "f.status").replace("next_try", "f.next_try")
        f_src = src_cond.replace("source", "f.source")
        db = self.store.db
        with self.store.atomic():
            # Hosts of due URLs get a row once (concurrent inserts of one host: one wins, the rest skip).
            db.execute(
                f"""INSERT INTO crawl_hosts (host) SELECT DISTINCT host FROM frontier
                    WHERE {DUE}{src_cond} ON CONFLICT (host) DO NOTHING""",
                [at, *src_params],
            )
            mine = {
                r[0]
                for r in db.execute(
                    "SELECT host FROM crawl_hosts WHERE leased_by = ? AND lease_until >= now()",
                    (self.worker,),
                )
            }
            hosts = [
                r[0]
                for r in db.execute(
                    f"""SELECT h.host FROM crawl_hosts h
                        WHERE (h.lease_until IS NULL OR h.lease_until < now() OR h.leased_by = ?)
                          AND (h.next_fetch IS NULL OR h.next_fetch <= now() OR h.leased_by = ?)
                          AND EXISTS (SELECT 1 FROM frontier f WHERE f.host = h.host AND {f_due}
                                      AND (f.lease_until IS NULL OR f.lease_until < now()){f_src})
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
            per_host = math.ceil(n / len(hosts))
            rows = db.execute(
                f"""SELECT {FRONTIER_SELECT} FROM frontier WHERE url IN (
                        SELECT c.url FROM unnest(?::text[]) AS h(host) CROSS JOIN LATERAL (
                            SELECT f.url, f.first_seen FROM frontier f
                            WHERE f.host = h.host AND {f_due} AND (f.lease_until IS NULL OR f.lease_until < now()){f_src}
                            ORDER BY f.first_seen, f.url LIMIT ?) c
                        ORDER BY c.first_seen, c.url LIMIT ?)
                    AND {DUE} AND {FREE_URL}
                    ORDER BY first_seen, url FOR UPDATE SKIP LOCKED""",
                [hosts, at, *src_params, per_host, n, at],
            ).rows
            urls = [r["url"] for r in rows]
            if urls:
                db.execute(
                    "UPDATE frontier SET leased_by = ?, lease_until = now() + ?::interval WHERE url = ANY(?)",
                    (self.worker, self._interval(self.lease_s), urls),
                )
            got = {r[0] for r in db.execute("SELECT DISTINCT host FROM frontier WHERE url = ANY(?)", (urls,))}
            idle = sorted(set(hosts) - got - mine)
            if idle:  # hosts whose due URLs another claimer locked meanwhile, or beyond n: not ours
                db.execute(
                    "UPDATE crawl_hosts SET leased_by = NULL, lease_until = NULL WHERE host = ANY(?) AND leased_by = ?",
                    (idle, self.worker),
                )
        return [cast(FrontierRow, dict(r)) for r in rows]

    def claim_urls(self, urls: Sequence[str], n: int) -> list[FrontierRow]:
        """Lease up to ``n`` of these URLs (in their order) that no live lease holds and that no
        worker settled in this crawl: local files, which have no host to be polite to."""
        if n < 1 or not urls:
            return []
        with self.store.atomic():
            rows = self.store.db.execute(
                f"""SELECT {FRONTIER_SELECT} FROM frontier WHERE url IN (
                        SELECT f.url FROM unnest(?::text[]) WITH ORDINALITY AS u(url, i)
                        JOIN frontier f ON f.url = u.url
                        WHERE f.gen IS DISTINCT FROM ? AND (f.lease_until IS NULL OR f.lease_until < now())
                        ORDER BY u.i LIMIT ?)
                    AND gen IS DISTINCT FROM ? AND {FREE_URL} FOR UPDATE SKIP LOCKED""",
                [list(urls), self.gen, n, self.gen],
            ).rows
            if rows:
                self.store.db.execute(
                    "UPDATE frontier SET leased_by = ?, lease_until = now() + ?::interval WHERE url = ANY(?)",
                    (self.worker, self._interval(self.lease_s), [r["url"] for r in rows]),
                )
        order = {u: i for i, u in enumerate(urls)}
        return sorted((cast(FrontierRow, dict(r)) for r in rows), key=lambda r: order[r["url"]])

    def unsettled(self, urls: Sequence[str]) -> list[str]:
        """These URLs (in their order) that no worker has settled in this crawl yet, leased or not."""
        if not urls:
            return []
        rows = self.store.db.execute(
            """SELECT u.url FROM unnest(?::text[]) WITH ORDINALITY AS u(url, i)
               JOIN frontier f ON f.url = u.url WHERE f.gen IS DISTINCT FROM ? ORDER BY u.i""",
            [list(urls), self.gen],
        )
        return [r[0] for r in rows]

    def settled(self, urls: Sequence[str]) -> set[str]:
        """Those of these URLs some worker settled in this crawl."""
        if self.gen is None or not urls:
            return set()
        rows = self.store.db.execute(
            "SELECT url FROM frontier WHERE url = ANY(?) AND gen = ?", (list(urls), self.gen)
        )
        return {r[0] for r in rows}

    def requeue(self, source: str, kind: str) -> int:
        """Done rows of one kind found from ``source`` pending again, unless settled in this crawl."""
        return self.store.db.execute(
            """UPDATE frontier SET status = 'pending', updated_at = ?
               WHERE source = ? AND kind = ? AND status = 'done' AND gen IS DISTINCT FROM ?""",
            (now(), source, kind, self.gen),
        ).rowcount

    def due(self, sources: Sequence[str]) -> int:
        """URLs of these sources still due, whoever holds them: a worker's crawl is over at 0."""
        row = self.store.db.execute(
            f"SELECT COUNT(*) FROM frontier WHERE {DUE} AND source = ANY(?)", (now(), list(sources))
        ).fetchone()
        return int(row[0]) if row else 0

    # -- runs -------------------------------------------------------------------------------
    def start_run(self) -> int:
        """Record this worker's run, leased like a URL, in the crawl of the workers running now (or
        a new crawl when none runs). Runs whose worker died (lease expired) are marked interrupted;
        live workers' runs are left alone."""
        db = self.store.db
        with self.store.atomic():
            db.execute("SELECT pg_advisory_xact_lock(?)", (CRAWL_LOCK,))
            db.execute(
                """UPDATE runs SET status = 'interrupted'
                   WHERE status = 'running' AND (lease_until IS NULL OR lease_until < now())"""
            )
            live = db.execute(
                "SELECT gen FROM runs WHERE status = 'running' AND gen IS NOT NULL ORDER BY run_id LIMIT 1"
            ).fetchone()
            row = db.execute(
                """INSERT INTO runs (started, status, pid, worker, lease_until)
                   VALUES (?, 'running', ?, ?, now() + ?::interval) RETURNING run_id""",
                (now(), os.getpid(), self.worker, self._interval(self.lease_s)),
            ).fetchone()
            assert row is not None
            run_id = int(row[0])
            gen = int(live[0]) if live else run_id
            db.execute("UPDATE runs SET gen = ? WHERE run_id = ?", (gen, run_id))
        self.run_id, self.gen = run_id, gen
        log.info("worker %s: run %d, crawl %d%s", self.worker, run_id, gen, " (joined)" if live else "")
        return run_id

    def others_running(self) -> bool:
        """Whether another worker's run is alive (its lease not expired)."""
        row = self.store.db.execute(
            """SELECT 1 FROM runs WHERE status = 'running' AND lease_until >= now()
               AND run_id IS DISTINCT FROM ? LIMIT 1""",
            (self.run_id,),
        ).fetchone()
        return row is not None

    def renew(self) -> int:
        """Extend every lease this worker holds (hosts, URLs, its run); returns the URLs still held.

        Rows the worker's own main thread has locked at this moment (a batch being stored) are
        skipped, not waited for: they are being finished, and waiting could deadlock with it."""
        interval = self._interval(self.lease_s)
        db = self.store.db
        with self.store.atomic():
            db.execute(
                """UPDATE crawl_hosts SET lease_until = now() + ?::interval WHERE host IN (
                       SELECT host FROM crawl_hosts WHERE leased_by = ? FOR UPDATE SKIP LOCKED)""",
                (interval, self.worker),
            )
            if self.run_id is not None:
                db.execute(
                    """UPDATE runs SET lease_until = now() + ?::interval WHERE run_id IN (
                           SELECT run_id FROM runs WHERE run_id = ? FOR UPDATE SKIP LOCKED)""",
                    (interval, self.run_id),
                )
            return db.execute(
                """UPDATE frontier SET lease_until = now() + ?::interval WHERE url IN (
                       SELECT url FROM frontier WHERE leased_by = ? FOR UPDATE SKIP LOCKED)""",
                (interval, self.worker),
            ).rowcount

    def finish(self, url: str, **fields: FrontierValue) -> bool:
        """Set some frontier columns of a leased URL and end its lease, only while this worker holds it.

        Call inside the transaction that stores the URL's document; False means the lease was lost
        (expired and taken over): roll back, the other worker processes the URL."""
        bad = set(fields) - FRONTIER_COLUMNS
        if bad:
            raise ValueError(f"unknown frontier columns: {sorted(bad)}")
        cols = "".join(f"{k} = ?, " for k in fields)
        cur = self.store.db.execute(
            f"""UPDATE frontier SET {cols}leased_by = NULL, lease_until = NULL, updated_at = ?, gen = ?
                WHERE url = ? AND leased_by = ? AND lease_until >= now()""",
            (*fields.values(), now(), self.gen, url, self.worker),
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

    def release_host(self, host: str, delay_s: float | None = None) -> None:
        """Give back a host this worker has fetched what it claimed from; no worker asks it again
        before ``delay_s`` (default: the politeness delay) has passed. A failure is logged: the
        host's lease then expires."""
        delay = self.host_delay_s if delay_s is None else delay_s
        try:
            self.store.db.execute(
                """UPDATE crawl_hosts SET leased_by = NULL, lease_until = NULL, next_fetch = now() + ?::interval
                   WHERE host = ? AND leased_by = ?""",
                (self._interval(delay), host, self.worker),
            )
        except psycopg.Error as exc:
            log.warning("host %s not given back (%s): its lease expires in %.0f s", host, exc, self.lease_s)

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


class LeaseRenewer:
    """Renews a worker's leases every ``lease_s / 3`` from a background thread (with its own pooled
    connection) while the ``with`` block runs, and gives every lease back when it ends, however it
    ends (Ctrl-C included). A failed renewal is logged and tried again; a failed release too, and
    then those leases simply expire."""

    def __init__(self, leases: FrontierLeases) -> None:
        self.leases = leases
        self.every = max(0.05, leases.lease_s / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)

    def __enter__(self) -> LeaseRenewer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            n = self.leases.release()
        except psycopg.Error as error:
            log.warning("leases not given back (%s): they expire in %.0f s", error, self.leases.lease_s)
            return
        if n:
            log.info("gave back %d leased URLs", n)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.leases.renew()
            except psycopg.Error as exc:
                log.warning("lease renewal failed (%s); trying again in %.1f s", exc, self.every)
