"""Watch digest latency over a large store: 100k chunks / 20k documents (synthetic rows written
straight into a real SQLite store, as benchmarks/search_bench.py builds its latency store), with a
watchlist of three entities, two queries and one agreement type, and a night's worth of new
documents in the change log after the list's mark.

Timed: ``take_digest`` in a fresh searcher-less call (it opens the searcher: vector index + search
snapshot, as a nightly ingest leaves them) and the whole ``defintel watch digest NAME --format
json`` command (a new process). Each repetition resets the list's mark, so every run digests the
same window.

    .venv/bin/python benchmarks/digest_bench.py [--chunks 100000] [--window 500,2000] [--repeat 5]

Prints a table and writes benchmarks/results/digest_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.search_bench import base_settings, make_backend, scaled_data_dir  # noqa: E402
from pipeline.backend.sqlite import AGREEMENT_KEY, Store  # noqa: E402
from pipeline.index.search import prepare_search  # noqa: E402
from pipeline.index.vectors import VectorIndex  # noqa: E402
from pipeline.watch import save_watchlist, take_digest  # noqa: E402

ENTITIES = ["Azərsilah", "Roketsan", "Bakü"]
QUERIES = ["fişek hattı", "unmanned surface vessel"]
TYPES = ["contract"]
NAME = "bench"


def log_events(db_path: Path) -> int:
    """Change-log rows for the synthetic documents and agreements (written without save_analysis)."""
    db = sqlite3.connect(db_path)
    with db:  # in document order, each document's agreements right after it, as ingest logs them
        db.execute(
            f"""INSERT INTO watch_events (kind, key, doc_id, at)
                SELECT kind, key, doc_id, '2026-01-01T00:00:00+00:00' FROM (
                    SELECT 'document' AS kind, doc_id AS key, doc_id FROM documents WHERE doc_id LIKE 'synthetic-%'
                    UNION ALL
                    SELECT 'agreement', {AGREEMENT_KEY}, a.doc_id FROM agreements a WHERE a.doc_id LIKE 'synthetic-%'
                ) WHERE true ORDER BY doc_id, kind DESC ON CONFLICT (kind, key) DO NOTHING"""
        )
    n = int(db.execute("SELECT MAX(seq) FROM watch_events").fetchone()[0])
    db.close()
    return n


def store_deals(store: Store) -> int:
    """Each synthetic agreement as a deal of one report (what consolidation leaves for agreements no
    other document reports): the digest reads deals from the deals tables."""
    from pipeline.deals import build_deal

    doc_ids = [str(r[0]) for r in store.db.execute("SELECT DISTINCT doc_id FROM agreements")]
    reports = store.stored_agreements(doc_ids)
    with store.atomic():
        store.replace_deals([], [a.agreement_id for a in reports], [build_deal([a]) for a in reports])
    return len(reports)


def window_start(db_path: Path, window: int) -> int:
    """The change-log position before the last ``window`` documents."""
    db = sqlite3.connect(db_path)
    rows = db.execute(
        "SELECT seq FROM watch_events WHERE kind = 'document' ORDER BY seq DESC LIMIT 1 OFFSET ?", (window,)
    ).fetchone()
    db.close()
    return int(rows[0])


def reset_mark(db_path: Path, mark: int) -> None:
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE watchlists SET mark = ?, start_mark = ? WHERE name = ?", (mark, mark, NAME))
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--window", default="500,2000", help="new documents in the digest window")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None, help="keep the built store here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="digest-bench-"))
    t = time.perf_counter()
    data, info = scaled_data_dir("hashing", args.chunks, work)
    settings = base_settings(data)
    store = Store(data)
    end = log_events(store.path)
    n_deals = store_deals(store)
    embedder = make_backend("hashing")
    vectors = VectorIndex.load(data / "index", embedder.name, embedder.dim)
    prepare_search(settings, store, vectors)  # what an ingest leaves behind
    save_watchlist(store, settings, NAME, ENTITIES, QUERIES, TYPES, replace=True)
    n_docs = int(store.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    info.update(
        setup_seconds=round(time.perf_counter() - t, 1), documents=n_docs, change_log=end, deals=n_deals
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINTEL_")}
    env.update(
        DEFINTEL_DATA_DIR=str(data),
        DEFINTEL_INDEX__EMBEDDER="hashing",
        DEFINTEL_NLP__MODELS_DIR=str(ROOT / "models"),
        PYTHONPATH=str(ROOT),
    )
    results = []
    for window in [int(w) for w in args.window.split(",")]:
        start = window_start(store.path, window)
        lib, cli = [], []
        digest = None
        for _ in range(args.repeat):
            reset_mark(store.path, start)
            t = time.perf_counter()
            digest = take_digest(settings, store, NAME)
            lib.append(time.perf_counter() - t)
        for _ in range(args.repeat):
            reset_mark(store.path, start)
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "pipeline", "watch", "digest", NAME, "--format", "json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            cli.append(time.perf_counter() - t)
            assert json.loads(out.stdout)["watchlist"] == NAME
        assert digest is not None
        results.append(
            {
                "window_documents": window,
                "matched_documents": len(digest.documents),
                "deals": len(digest.deals),
                "entities_new": len(digest.entities_new),
                "library_p50_s": round(statistics.median(lib), 3),
                "library_max_s": round(max(lib), 3),
                "cli_p50_s": round(statistics.median(cli), 3),
                "cli_max_s": round(max(cli), 3),
            }
        )
    store.close()
    print(f"{info['chunks']} chunks, {n_docs} documents; watchlist: {ENTITIES} {QUERIES} {TYPES}")
    cols = list(results[0])
    print("  ".join(f"{c:>17}" for c in cols))
    for r in results:
        print("  ".join(f"{r[c]!s:>17}" for c in cols))
    out_path = ROOT / "benchmarks" / "results" / "digest_bench.json"
    out_path.write_text(
        json.dumps(
            {
                "store": info,
                "watchlist": {"entities": ENTITIES, "queries": QUERIES, "types": TYPES},
                "repeat": args.repeat,
                "results": results,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load": os.getloadavg(),
                },
                "command": "benchmarks/digest_bench.py " + " ".join(sys.argv[1:]),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
