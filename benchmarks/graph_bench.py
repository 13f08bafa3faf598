"""Entity-graph build and export: time and file size per format.

Two graphs: the bundled corpus (ingested once into a temporary data dir with the hashing embedder;
the ingest is not timed) and a synthetic store sized to give about 100,000 edges (co-occurrences
plus agreements, random but seeded). Each is built from its store with ``build_graph`` and written
in every format by ``export``, as ``defintel export-graph`` does.

    .venv/bin/python benchmarks/graph_bench.py [--edges 100000] [--repeat 1]
                                               [--out benchmarks/results/graph_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.backend.sqlite import Store
from pipeline.config import load_settings
from pipeline.graph import FORMATS, build_graph, export, output_files, summary
from pipeline.records import sha1

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = {
    "graphml": "g.graphml",
    "gexf": "g.gexf",
    "cytoscape": "g.cyjs.json",
    "ftm": "g.ftm.jsonl",
    "csv": "neo4j",
}
TYPES = ("contract", "mou", "joint_venture", "export", "training")
ENTITIES_PER_DOC = 6
AGREEMENTS_PER_DOC = 2


def corpus_store(tmp: Path) -> Store:
    from pipeline.jobs import ingest

    settings = load_settings(
        env={},
        overrides={
            "data_dir": str(tmp / "corpus-data"),
            "index.embedder": "hashing",
            "nlp.models_dir": str(ROOT / "models"),
        },
    )
    report = ingest(settings, [str(ROOT / "corpus")])
    if report.failed:
        raise SystemExit(f"ingest of corpus/ failed for {report.failed} page(s): {report.failures}")
    return Store(settings.data_path)


def synthetic_store(tmp: Path, edges: int, seed: int = 7) -> Store:
    """A store whose graph has about ``edges`` edges: 90% co-occurrence, 10% agreement.

    Each document names ``ENTITIES_PER_DOC`` entities drawn from a pool large enough that pairs
    rarely repeat, so documents ≈ 0.9 · edges / C(6, 2); up to two agreements per document, each
    between two of its entities, until the agreement edges are 10%.
    """
    rng = random.Random(seed)
    pairs_per_doc = ENTITIES_PER_DOC * (ENTITIES_PER_DOC - 1) // 2
    n_docs = max(1, round(0.9 * edges / pairs_per_doc))
    n_agreements = edges - round(0.9 * edges)
    pool = [f"x-{sha1('entity', i)[:12]}" for i in range(max(50, n_docs * 2))]
    labels = {e: rng.choice(("ORG", "ORG", "PERSON", "GPE")) for e in pool}
    store = Store(tmp / "synthetic-data")
    now = "2026-01-01T00:00:00+00:00"
    docs, mentions, agreements = [], [], []
    for d in range(n_docs):
        doc_id = sha1("doc", d)
        published = f"20{rng.randint(20, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        lang = rng.choice(("tr", "az", "en"))
        docs.append(
            (doc_id, f"https://news.example/{d}", lang, f"Doc {d}", published, "t", "c", "h", now, now)
        )
        chosen = rng.sample(pool, ENTITIES_PER_DOC)
        for j, e in enumerate(chosen):
            mentions.append((doc_id, j * 20, j * 20 + 10, f"Şirkət {e[2:8]}'in", labels[e], e))
        for k in range(0, 2 * AGREEMENTS_PER_DOC, 2):
            if len(agreements) >= n_agreements:
                break
            a, b = chosen[k], chosen[k + 1]
            agreements.append(
                (
                    sha1("agreement", d, k),
                    doc_id,
                    rng.choice(TYPES),
                    json.dumps([a, b]),
                    json.dumps([a, b]),
                    published,
                    float(rng.randint(1, 500) * 1_000_000),
                    rng.choice(("USD", "EUR", "AZN", "TRY")),
                    f"{rng.randint(2, 90)} units",
                    float(rng.randint(10, 70)),
                    f"{a} ile {b} arasında sözleşme imzalandı.",
                    0,
                    40,
                )
            )
    with store.atomic():
        store.db.executemany(
            """INSERT INTO documents (doc_id, url, language, title, published, text, content_hash, text_hash,
                   first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?)""",
            docs,
        )
        store.db.executemany(
            "INSERT INTO entities (entity_id, label, canonical, aliases, in_registry) VALUES (?,?,?,?,0)",
            [
                (e, labels[e], f"Şirkət {e[2:8]}", json.dumps([f"Şirkət {e[2:8]}"], ensure_ascii=False))
                for e in pool
            ],
        )
        store.db.executemany(
            'INSERT INTO mentions (doc_id, start, "end", text, label, entity_id) VALUES (?,?,?,?,?,?)',
            mentions,
        )
        store.db.executemany(
            """INSERT INTO agreements (agreement_id, doc_id, type, parties, party_ids, signed, amount, currency,
                   quantity, local_content_pct, evidence_text, evidence_start, evidence_end)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            agreements,
        )
    return store


def _size(fmt: str, path: Path) -> int:
    return sum(p.stat().st_size for p in output_files(fmt, path))


def bench(name: str, store: Store, out_dir: Path, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    g = build_graph(store, models_dir=ROOT / "models")
    build_s = time.perf_counter() - t0
    row: dict[str, Any] = {"graph": name, **summary(g), "build_s": round(build_s, 3), "formats": {}}
    for fmt in FORMATS:
        path = out_dir / f"{name}-{SUFFIX[fmt]}"
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            export(g, fmt, path)
            times.append(time.perf_counter() - t0)
        row["formats"][fmt] = {"export_s": round(min(times), 3), "bytes": _size(fmt, path)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=100_000, help="target edge count of the synthetic graph")
    ap.add_argument("--repeat", type=int, default=1, help="exports per format (the best time is kept)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "graph_bench.json"))
    args = ap.parse_args()
    if not (ROOT / "corpus").is_dir():
        raise SystemExit(f"bundled corpus not found at {ROOT / 'corpus'}")
    with tempfile.TemporaryDirectory(prefix="graph-bench-") as tmp_name:
        tmp = Path(tmp_name)
        out_dir = tmp / "out"
        out_dir.mkdir()
        rows = [
            bench("corpus", corpus_store(tmp), out_dir, args.repeat),
            bench(f"synthetic-{args.edges // 1000}k", synthetic_store(tmp, args.edges), out_dir, args.repeat),
        ]
    load = os.getloadavg()
    print(f"{'graph':<16}{'nodes':>8}{'edges':>9}{'build s':>9}  " + "".join(f"{f:>20}" for f in FORMATS))
    for r in rows:
        cells = "".join(
            f"{r['formats'][f]['export_s']:>8.2f}s {r['formats'][f]['bytes'] / 1e6:>8.2f}MB  "
            for f in FORMATS
        )
        print(f"{r['graph']:<16}{r['nodes']:>8}{r['edges']:>9}{r['build_s']:>9.2f}  {cells}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"graphs": rows, "load_average": [round(x, 2) for x in load], "cpus": os.cpu_count()}
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
