"""Deal and story clustering against the hand-written clustering in ``corpus/gold_deals.json``.

The corpus is ingested (``defintel ingest`` in process, one data dir per embedder), then scored as
``../shared/SCORING.md`` sections 7 and 8 score it:

* **deals**: every gold deal is a set of reports (page, agreement of that page's gold file). Each
  page's predicted agreements are matched one-to-one to its gold agreements (same type, party sets
  with Jaccard >= 0.5, the closest evidence first), then pairwise over reports: precision = pairs of
  matched reports in one predicted deal that are in one gold deal; recall = gold report pairs found
  together in one predicted deal (a gold report the extractor missed loses its pairs).
  ``recall_matched`` counts only gold pairs whose two reports were extracted: the clustering alone.
* **stories**: pairwise over documents, each page's story id against the gold stories (pages not
  listed are stories of their own).

* **similarity calibration**: the evidence-similarity bonus (``deals.similarity_bonus``, the
  per-embedder scale) on 300 en/az/tr translation triplets of X-WMT news
  (``../shared/benchmarks/xwmt_news_parallel``): mean bonus of a sentence and its translation vs a
  sentence and an unrelated one, and how often an unrelated pair gets any bonus.

    .venv/bin/python benchmarks/deals_bench.py [--embedders hashing,e5-small] [--corpus corpus]
        [--out benchmarks/results/deals_bench.json] [--errors]

Prints a table and writes the JSON (corpus hash, per-embedder numbers, the pairs it got wrong).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path
from typing import Any

from pipeline.backend.sqlite import Store
from pipeline.config import load_settings
from pipeline.jobs import ingest
from pipeline.textnorm import normalize

ROOT = Path(__file__).resolve().parent.parent
Pair = frozenset[str]


def corpus_hash(corpus: Path) -> str:
    h = hashlib.sha1()
    for p in [*sorted(corpus.glob("*.html")), corpus / "gold_deals.json"]:
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


def pairs(groups: Iterable[Iterable[str]]) -> set[Pair]:
    return {frozenset(p) for g in groups for p in combinations(sorted(set(g)), 2)}


def prf(pred: set[Pair], gold: set[Pair]) -> dict[str, float]:
    tp = len(pred & gold)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(gold) if gold else 1.0
    return {"p": round(p, 4), "r": round(r, 4), "pred_pairs": len(pred), "gold_pairs": len(gold), "tp": tp}


def _tokens(text: str) -> list[str]:
    return normalize(text).split()


def _f1(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    common = sum(min(ta.count(t), tb.count(t)) for t in set(ta))
    if not common:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


def match_reports(
    gold_pages: dict[str, dict[str, Any]], url_doc: dict[str, str], store: Store
) -> tuple[dict[str, str], list[str]]:
    """{predicted agreement_id: gold report key "file#i"} and the gold reports left unmatched."""
    matched: dict[str, str] = {}
    missed: list[str] = []
    for file, g in sorted(gold_pages.items()):
        doc_id = url_doc.get(g["url"])
        predicted = store.agreements(doc_id) if doc_id else []
        options = []
        for i, ga in enumerate(g["agreements"]):
            for pa in predicted:
                gp, pp = set(ga["parties"]), set(pa["party_ids"])
                jaccard = len(gp & pp) / len(gp | pp) if gp | pp else 0.0
                if pa["type"] == ga["type"] and jaccard >= 0.5:
                    options.append(
                        (-_f1(ga["evidence"], pa["evidence_text"]), -jaccard, i, pa["agreement_id"])
                    )
        used_gold: set[int] = set()
        for _, _, i, agreement_id in sorted(options):
            if i in used_gold or agreement_id in matched:
                continue
            used_gold.add(i)
            matched[agreement_id] = f"{file}#{i}"
        missed.extend(f"{file}#{i}" for i in range(len(g["agreements"])) if i not in used_gold)
    return matched, missed


def score(data_dir: Path, corpus: Path) -> dict[str, Any]:
    gold = json.loads((corpus / "gold_deals.json").read_text(encoding="utf-8"))
    gold_pages = {
        (g := json.loads(p.read_text(encoding="utf-8")))["file"]: g
        for p in sorted((corpus / "gold").glob("*.json"))
    }
    store = Store(data_dir, readonly=True)
    try:
        docs = store.documents()
        url_doc = {d["url"]: d["doc_id"] for d in docs}
        file_of = {url_doc[g["url"]]: f for f, g in gold_pages.items() if g["url"] in url_doc}
        matched, missed = match_reports(gold_pages, url_doc, store)
        gold_deal_pairs = pairs(
            [f"{r['file']}#{r['agreement']}" for r in d["reports"]] for d in gold["deals"]
        )
        deals = store.deals()
        predicted_groups = [
            [matched[r.agreement_id] for r in d.reports if r.agreement_id in matched] for d in deals
        ]
        pred_deal_pairs = pairs(predicted_groups)
        extracted = set(matched.values())
        gold_matched_pairs = {p for p in gold_deal_pairs if p <= extracted}
        deal_scores = prf(pred_deal_pairs, gold_deal_pairs)
        deal_scores["recall_matched"] = prf(pred_deal_pairs, gold_matched_pairs)["r"]
        deal_scores["deals"] = len(deals)
        deal_scores["multi_report_deals"] = sum(len(d.reports) > 1 for d in deals)
        deal_scores["with_conflicts"] = sum(bool(d.conflicts) for d in deals)
        deal_scores["gold_reports_unextracted"] = missed

        stories: dict[str, list[str]] = defaultdict(list)
        for d in docs:
            if d["doc_id"] in file_of and d.get("story_id"):
                stories[d["story_id"]].append(file_of[d["doc_id"]])
        pred_story_pairs = pairs(stories.values())
        gold_story_pairs = pairs(s["files"] for s in gold["stories"])
        story_scores = prf(pred_story_pairs, gold_story_pairs)
        story_scores["stories"] = len({d.get("story_id") for d in docs})
        story_scores["multi_document_stories"] = sum(len(v) > 1 for v in stories.values())
        errors = {
            "deal_false_pairs": sorted(sorted(p) for p in pred_deal_pairs - gold_deal_pairs),
            "deal_missed_pairs": sorted(sorted(p) for p in gold_deal_pairs - pred_deal_pairs),
            "story_false_pairs": sorted(sorted(p) for p in pred_story_pairs - gold_story_pairs),
            "story_missed_pairs": sorted(sorted(p) for p in gold_story_pairs - pred_story_pairs),
        }
        return {"deals": deal_scores, "stories": story_scores, "errors": errors}
    finally:
        store.close()


XWMT = ROOT.parent / "shared" / "benchmarks" / "xwmt_news_parallel" / "xwmt_en_az_tr_3way.tsv"


def calibration(embedder: str, path: Path = XWMT, n: int = 300) -> dict[str, Any] | None:
    """Similarity bonus of translations vs unrelated sentence pairs (see the module docstring)."""
    import numpy as np

    from pipeline.deals import similarity_bonus
    from pipeline.index.embedders import make_embedder

    if not path.exists():
        return None
    rows = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    rows = [r for r in rows if len(r) >= 4][:n]
    model = make_embedder(embedder, ROOT / "models" / "e5-small")
    cols = {lang: model.passages([r[i] for r in rows]) for i, lang in ((1, "en"), (2, "az"), (3, "tr"))}
    out: dict[str, Any] = {"pairs": len(rows)}
    for a, b in (("en", "az"), ("en", "tr"), ("az", "tr")):
        same = (cols[a] * cols[b]).sum(axis=1)
        other = (cols[a] * np.roll(cols[b], 7, axis=0)).sum(axis=1)
        bonus_same = [similarity_bonus(float(x), embedder) for x in same]
        bonus_other = [similarity_bonus(float(x), embedder) for x in other]
        out[f"{a}-{b}"] = {
            "translation_bonus": round(float(np.mean(bonus_same)), 3),
            "unrelated_bonus": round(float(np.mean(bonus_other)), 3),
            "unrelated_with_bonus": round(float(np.mean([x > 0 for x in bonus_other])), 3),
            "translation_cos_p10": round(float(np.percentile(same, 10)), 3),
            "unrelated_cos_p99": round(float(np.percentile(other, 99)), 3),
        }
    return out


def run(embedder: str, corpus: Path, *, calibrate: bool = True) -> dict[str, Any]:
    """Ingest ``corpus`` with ``embedder`` and score it; ``calibrate``: also the X-WMT similarity check."""
    with tempfile.TemporaryDirectory(prefix="deals-bench-") as tmp:
        settings = load_settings(
            env={},
            overrides={
                "data_dir": tmp,
                "index.embedder": embedder,
                "index.e5_model_dir": str(ROOT / "models" / "e5-small"),
                "nlp.models_dir": str(ROOT / "models"),
                "ingest.workers": 0,
            },
        )
        t = time.perf_counter()
        report = ingest(settings, [str(corpus)])
        seconds = time.perf_counter() - t
        out = score(Path(tmp), corpus)
        out["ingest"] = {"documents": report.new, "seconds": round(seconds, 1)}
        out["similarity_calibration"] = calibration(embedder) if calibrate else None
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedders", default="hashing,e5-small")
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "deals_bench.json"))
    ap.add_argument("--errors", action="store_true", help="print the pairs each run got wrong")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    results = {name: run(name, corpus) for name in args.embedders.split(",") if name}
    print(f"{'embedder':<10} {'part':<8} {'P':>6} {'R':>6} {'R(extr.)':>9} {'pred':>5} {'gold':>5}")
    for name, r in results.items():
        d, s = r["deals"], r["stories"]
        print(
            f"{name:<10} {'deals':<8} {d['p']:>6.3f} {d['r']:>6.3f} {d['recall_matched']:>9.3f} {d['pred_pairs']:>5} {d['gold_pairs']:>5}"
        )
        print(
            f"{name:<10} {'stories':<8} {s['p']:>6.3f} {s['r']:>6.3f} {'':>9} {s['pred_pairs']:>5} {s['gold_pairs']:>5}"
        )
        cal = r.get("similarity_calibration")
        if cal:
            cells = ", ".join(
                f"{k} {v['translation_bonus']:.2f} vs {v['unrelated_bonus']:.3f}"
                for k, v in cal.items()
                if k != "pairs"
            )
            print(
                f"{name:<10} evidence-similarity bonus, X-WMT translations vs unrelated ({cal['pairs']} pairs): {cells}"
            )
        if args.errors:
            for k, v in r["errors"].items():
                for pair in v:
                    print(f"  {k}: {' ~ '.join(pair)}")
            for key in r["deals"]["gold_reports_unextracted"]:
                print(f"  gold report not extracted: {key}")
    out = {"corpus_hash": corpus_hash(corpus), "results": results}
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
