"""`defintel ingest` worker processes sharing one PostgreSQL crawl (pipeline/jobs.py with
pipeline/backend/pg/leases.py), against the session's real server and a local site: every page stored once
and fetched once by two workers together, local files read once, and a worker killed with SIGKILL
mid-run losing nothing (its expired leases are taken over)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.backend.pg.store import PgStore
from pipeline.errors import UsageError
from tests.conftest import CORPUS, ROOT

PAGES = sorted(CORPUS.glob("*.html"))


def serve_corpus(site: HTTPServer, delay_s: float = 0.0) -> str:
    """The corpus pages under /news/ with a sitemap listing them; returns the sitemap URL."""
    base = site.url_for("/").rstrip("/")
    locs = "".join(f"<url><loc>{base}/news/{p.stem}</loc></url>" for p in PAGES)
    sitemap = (
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
    )
    site.expect_request("/sitemap.xml").respond_with_data(sitemap, content_type="application/xml")
    site.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nAllow: /\n", content_type="text/plain"
    )
    for p in PAGES:
        body = p.read_bytes()

        def page(request: Request, body: bytes = body) -> Response:
            time.sleep(delay_s)  # a little network time, so that the workers' claims interleave
            return Response(body, content_type="text/html; charset=utf-8")

        site.expect_request(f"/news/{p.stem}").respond_with_handler(page)
    return f"{base}/sitemap.xml"


def requests(site: HTTPServer) -> Counter[str]:
    return Counter(req.path for req, _ in site.log)


def worker(cli_env: dict[str, str], pg_url: str, data_dir: Path, *sources: str, **settings: str) -> Any:
    env = {
        **cli_env,
        "DEFINTEL_DATA_DIR": str(
            data_dir
        ),  # logs and the lock file per worker; the corpus is in the database
        "DEFINTEL_DATABASE_URL": pg_url,
        "DEFINTEL_CRAWL__DELAY_S": "0",
        "DEFINTEL_INGEST__CLAIM_BATCH": "4",
        **{f"DEFINTEL_{k.upper()}": v for k, v in settings.items()},
    }
    cmd = [sys.executable, "-m", "pipeline", "ingest", *sources, "--allow-private-hosts", "--format", "json"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report(proc: Any, timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


def stored(pg_url: str) -> tuple[list[str], dict[str, int]]:
    store = PgStore(pg_url, readonly=True)
    try:
        return [d["url"] for d in store.documents()], store.frontier_counts()
    finally:
        store.close()


def test_two_workers_crawl_one_site_each_page_fetched_and_stored_once(
    site: HTTPServer, pg_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    sitemap = serve_corpus(site, delay_s=0.02)
    procs = [worker(cli_env, pg_url, tmp_path / f"w{i}", sitemap) for i in range(2)]
    reports = [report(p) for p in procs]

    hits = requests(site)
    pages = {f"/news/{p.stem}" for p in PAGES}
    assert {path for path in hits if path.startswith("/news/")} == pages
    assert [
        path for path, n in hits.items() if n > 1 and path != "/robots.txt"
    ] == []  # robots: one per worker
    docs, frontier = stored(pg_url)
    assert len(docs) == len(set(docs)) == len(PAGES)
    assert frontier == {"done": len(PAGES) + 1}  # the pages and the sitemap
    assert sum(r["new"] for r in reports) == len(PAGES)
    assert sum(r["seen"] for r in reports) == len(PAGES) + 1
    assert all(r["fetched"] > 0 for r in reports), reports  # both worked, on pages of one host
    assert sum(r["lease_lost"] for r in reports) == 0
    assert len({r["worker"] for r in reports}) == 2

    # The next crawl (the workers are gone) looks at the sitemap again, conditionally, and adds nothing.
    again = report(worker(cli_env, pg_url, tmp_path / "w0", sitemap))
    assert (again["new"], again["updated"], again["failed"]) == (0, 0, 0)
    assert requests(site)["/sitemap.xml"] == 2


def test_two_workers_read_each_local_file_once(pg_url: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    procs = [worker(cli_env, pg_url, tmp_path / f"w{i}", str(CORPUS)) for i in range(2)]
    reports = [report(p) for p in procs]
    assert sum(r["seen"] for r in reports) == len(PAGES)  # each file read by one worker
    assert sum(r["new"] for r in reports) == len(PAGES)
    assert all(r["seen"] > 0 for r in reports), reports
    docs, frontier = stored(pg_url)
    assert len(docs) == len(PAGES)
    assert frontier == {"done": len(PAGES)}
    # A later crawl reads every file again (unchanged: nothing stored).
    again = report(worker(cli_env, pg_url, tmp_path / "w0", str(CORPUS)))
    assert (again["seen"], again["unchanged"], again["new"]) == (len(PAGES), len(PAGES), 0)


def _leased_by(store: PgStore, pid: int) -> list[str]:
    rows = store.db.execute("SELECT url FROM frontier WHERE leased_by LIKE ?", (f"%:{pid}:%",))
    return [r[0] for r in rows]


@pytest.mark.slow  # three worker processes and a lease to wait out: ~40-60 s on these 2 cores
def test_a_killed_workers_leases_expire_and_the_other_takes_them_over(
    site: HTTPServer, pg_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    sitemap = serve_corpus(site, delay_s=0.1)  # ≥ 3 s of fetching in all: the kill lands mid-crawl
    short = {"ingest__lease_s": "2"}
    victim = worker(cli_env, pg_url, tmp_path / "victim", sitemap, **short)
    other = worker(cli_env, pg_url, tmp_path / "other", sitemap, **short)
    watch: PgStore | None = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert victim.poll() is None and other.poll() is None, "a worker ended before the kill"
        try:
            watch = watch or PgStore(pg_url, readonly=True, pool_size=1)
        except UsageError:  # no schema yet: the workers are still starting
            time.sleep(0.1)
            continue
        n = watch.db.execute("SELECT COUNT(*) FROM documents").fetchone()
        if n is not None and n[0] >= 2 and len(watch.runs()) == 2 and _leased_by(watch, victim.pid):
            break
        time.sleep(0.05)
    assert watch is not None
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    held = set(_leased_by(watch, victim.pid))  # what the victim held when it died
    assert held
    got = report(other)

    docs, frontier = stored(pg_url)
    assert len(docs) == len(set(docs)) == len(PAGES)  # nothing lost, nothing twice
    assert frontier == {"done": len(PAGES) + 1}
    assert got["lease_lost"] == 0
    base = site.url_for("/").rstrip("/")
    twice = {base + path for path, n in requests(site).items() if n > 1 and path != "/robots.txt"}
    assert twice <= held  # only what the dead worker held is fetched again
    status = {r["pid"]: r["status"] for r in watch.runs()}
    assert status == {victim.pid: "running", other.pid: "finished"}

    # The next worker finds nothing to add, and marks the dead worker's run interrupted.
    again = report(worker(cli_env, pg_url, tmp_path / "other", sitemap, **short))
    assert again["new"] == 0
    assert {r["pid"]: r["status"] for r in watch.runs()}[victim.pid] == "interrupted"
    watch.close()
