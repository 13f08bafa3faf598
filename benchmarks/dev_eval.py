"""Score defintel on the hand-annotated corpus the way ../shared/SCORING.md scores it.

Runs extraction + NLP in process on every page of corpus/ that has a gold file, and an ingest
(hashing embedder) for the near-duplicate pairs. Reports the dev and held-out splits separately.

    .venv/bin/python benchmarks/dev_eval.py [--corpus corpus] [--out benchmarks/results/dev_eval.json]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline.config import NlpSettings, load_settings
from pipeline.extract import decode_html, extract
from pipeline.nlp.analyze import Analyzer
from pipeline.nlp.registry import load_registry
from pipeline.records import Analysis, Page
from pipeline.textnorm import normalize

ROOT = Path(__file__).resolve().parent.parent
_SUFFIX = re.compile(r"(?:['’][^\s]*|-[^\W\d_]+)$")


def norm(s: str | None) -> str:
    return normalize(s or "").replace("’", "'")


def strip_one(s: str) -> str:
    return _SUFFIX.sub("", s)


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"p": round(p, 3), "r": round(r, 3), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3)}


def entity_names(gold_entity: dict[str, Any], models: str) -> set[str]:
    names = {norm(n) for n in gold_entity["names"]} | {norm(strip_one(n)) for n in gold_entity["names"]}
    entity = load_registry(models).get(gold_entity["id"])
    if entity is not None:
        names |= {norm(a) for a in entity.aliases}
    return names


def score_entities(a: Analysis, gold: dict[str, Any], models: str, acc: dict[str, Any]) -> dict[str, str]:
    """Entity-level matching per SCORING.md; returns gold id → predicted id for linking checks."""
    lang = gold["language"]
    gold_ents = [(g, entity_names(g, models)) for g in gold["entities"]]
    matched: dict[str, str] = {}
    fp = fp_strict = 0
    strict_tp: set[str] = set()
    for m in a.mentions:
        cands = {norm(m.text), norm(strip_one(m.text))}
        hit = next((g for g, names in gold_ents if cands & names), None)
        if hit is None:
            if any(norm(m.text) in norm(n) for g, _ in gold_ents for n in g["names"]):
                continue  # nested inside a gold name: not a false positive
            fp += 1
            fp_strict += 1
            continue
        if hit["id"] in matched:
            continue
        matched[hit["id"]] = m.entity_id
        if m.label == hit["label"]:
            strict_tp.add(hit["id"])
        else:
            fp_strict += 1
        if hit["id"] not in acc["link_pred"]:
            acc["link_pred"][hit["id"]] = {}
        acc["link_pred"][hit["id"]][lang] = m.entity_id
        registry_entity = load_registry(models).get(hit["id"])
        linked_ok = (m.entity_id == hit["id"]) if registry_entity else (m.entity_id.startswith("x-"))
        acc["link"][lang].append(linked_ok)
    tp = len(matched)
    acc["ent"][lang]["tp"] += tp
    acc["ent"][lang]["fp"] += fp
    acc["ent"][lang]["fn"] += len(gold_ents) - tp
    acc["strict"][lang]["tp"] += len(strict_tp)
    acc["strict"][lang]["fp"] += fp_strict
    acc["strict"][lang]["fn"] += len(gold_ents) - len(strict_tp)
    unlisted = [g for g in gold["entities"] if not g.get("in_registry", True) and g["label"] == "ORG"]
    acc["unlisted_org"][0] += sum(1 for g in unlisted if g["id"] in matched)
    acc["unlisted_org"][1] += len(unlisted)
    return matched


def _tokens(s: str) -> list[str]:
    return norm(s).split()


def _token_f1(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    common = sum(min(ta.count(t), tb.count(t)) for t in set(ta))
    if not common:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


def score_agreements(a: Analysis, gold: dict[str, Any], models: str, acc: dict[str, Any]) -> None:
    ents = {g["id"]: entity_names(g, models) for g in gold["entities"]}
    preds = [x.as_json() for x in a.agreements]
    used: set[int] = set()
    for g in gold["agreements"]:
        best = None
        for i, p in enumerate(preds):
            if i in used or p["type"] != g["type"]:
                continue
            pred_parties = {norm(x) for x in p["parties"]}
            hits = sum(1 for pid in g["parties"] if pred_parties & ents.get(pid, set()))
            union = len(g["parties"]) + len(pred_parties) - hits
            if union and hits / union >= 0.5:
                best = i
                break
        if best is None:
            acc["agr"]["fn"] += 1
            continue
        used.add(best)
        p = preds[best]
        acc["agr"]["tp"] += 1
        pred_parties = {norm(x) for x in p["parties"]}
        acc["fields"]["parties"].append(
            len(pred_parties) == len(g["parties"])
            and all(pred_parties & ents.get(pid, set()) for pid in g["parties"])
        )
        acc["fields"]["signed"].append(p["signed"] == g["signed"])
        gv, pv = g.get("value"), p["value"]
        acc["fields"]["value"].append(
            (gv is None and pv is None)
            or (
                gv is not None
                and pv is not None
                and gv["currency"] == pv["currency"]
                and abs(pv["amount"] - gv["amount"]) <= 0.005 * gv["amount"]
            )
        )
        acc["fields"]["local_content_pct"].append(p["local_content_pct"] == g.get("local_content_pct"))
        gq, pq = norm(g.get("quantity")), norm(p["quantity"])
        nums = re.compile(r"\d+")
        acc["fields"]["quantity"].append(
            (not gq and not pq)
            or bool(gq and pq and (gq in pq or pq in gq or nums.findall(gq) == nums.findall(pq)))
        )
        ev = p["evidence"]["text"]
        acc["fields"]["evidence"].append(
            norm(ev) == norm(g["evidence"]) or _token_f1(ev, g["evidence"]) >= 0.8
        )
    acc["agr"]["fp"] += len(preds) - len(used)


def evaluate(corpus: Path, split: str | None, language: str | None = None) -> dict[str, Any]:
    models = str(ROOT / "models")
    analyzer = Analyzer(NlpSettings(models_dir=models))
    acc: dict[str, Any] = {
        "ent": defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0}),
        "strict": defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0}),
        "link": defaultdict(list),
        "link_pred": {},
        "unlisted_org": [0, 0],
        "agr": {"tp": 0, "fp": 0, "fn": 0},
        "fields": defaultdict(list),
    }
    meta: dict[str, list[bool]] = defaultdict(list)
    pages = 0
    started = time.perf_counter()
    for gold_path in sorted((corpus / "gold").glob("*.json")):
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        if (split and gold["split"] != split) or (language and gold["language"] != language):
            continue
        page = corpus / gold["file"]
        doc = extract(
            Page(url=page.resolve().as_uri(), html=decode_html(page.read_bytes()), source=str(page))
        )
        analysis = analyzer.analyze([doc])[0]
        pages += 1
        meta["language"].append(doc.language == gold["language"])
        meta["title"].append(norm(doc.title) == norm(gold["title"]))
        meta["published"].append(doc.published == gold["published"])
        meta["author"].append(norm(doc.author) == norm(gold["author"]))
        score_entities(analysis, gold, models, acc)
        score_agreements(analysis, gold, models, acc)
    seconds = time.perf_counter() - started
    langs = sorted(acc["ent"])
    consistent = [len(set(v.values())) == 1 for v in acc["link_pred"].values() if len(v) > 1]
    return {
        "split": split or "all",
        "pages": pages,
        "seconds": round(seconds, 2),
        "metadata": {k: round(sum(v) / len(v), 3) for k, v in meta.items()},
        "entities": {lang: prf(**acc["ent"][lang]) for lang in langs},
        "entities_strict": {lang: prf(**acc["strict"][lang]) for lang in langs},
        "linking_accuracy": {lang: round(sum(v) / len(v), 3) for lang, v in acc["link"].items() if v},
        "cross_lingual_consistency": round(sum(consistent) / len(consistent), 3) if consistent else None,
        "unlisted_org_recall": round(acc["unlisted_org"][0] / acc["unlisted_org"][1], 3)
        if acc["unlisted_org"][1]
        else None,
        "agreements": prf(**acc["agr"]),
        "agreement_fields": {k: round(sum(v) / len(v), 3) for k, v in acc["fields"].items() if v},
    }


def near_duplicates(corpus: Path) -> dict[str, float]:
    from pipeline.backend.sqlite import Store
    from pipeline.jobs import ingest

    gold = {}
    for p in (corpus / "gold").glob("*.json"):
        g = json.loads(p.read_text(encoding="utf-8"))
        gold[g["file"]] = g
    expected = {
        frozenset((g["url"], gold[g["duplicate_of"]]["url"])) for g in gold.values() if g["duplicate_of"]
    }
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            env={},
            overrides={
                "data_dir": tmp,
                "index.embedder": "hashing",
                "nlp.models_dir": str(ROOT / "models"),
                "ingest.workers": 0,  # in process: 44 pages do not pay for a worker's start-up
            },
        )
        ingest(settings, [str(corpus)])
        docs = Store(settings.data_path).documents()
    url = {d["doc_id"]: d["url"] for d in docs}
    found = {frozenset((d["url"], url[d["duplicate_of"]])) for d in docs if d["duplicate_of"]}
    tp = len(found & expected)
    return {
        "p": round(tp / len(found), 3) if found else 0.0,
        "r": round(tp / len(expected), 3) if expected else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dev_eval.json"))
    args = ap.parse_args()
    corpus = Path(args.corpus)
    results = [evaluate(corpus, "dev"), evaluate(corpus, "heldout")]
    dups = near_duplicates(corpus)
    print(f"{'metric':<34}" + "".join(f"{r['split']:>12}" for r in results))
    rows: list[tuple[str, list[Any]]] = [("pages", [r["pages"] for r in results])]
    for k in ("language", "title", "published", "author"):
        rows.append((f"metadata {k}", [r["metadata"][k] for r in results]))
    for lang in ("tr", "az", "en"):
        rows.append((f"entity F1 {lang}", [r["entities"].get(lang, {}).get("f1") for r in results]))
        rows.append(
            (f"entity F1 strict {lang}", [r["entities_strict"].get(lang, {}).get("f1") for r in results])
        )
        rows.append((f"linking acc {lang}", [r["linking_accuracy"].get(lang) for r in results]))
    rows.append(("cross-lingual id consistency", [r["cross_lingual_consistency"] for r in results]))
    rows.append(("unlisted ORG recall", [r["unlisted_org_recall"] for r in results]))
    rows.append(("agreement F1 (type+parties)", [r["agreements"]["f1"] for r in results]))
    for k in ("parties", "signed", "value", "quantity", "local_content_pct", "evidence"):
        rows.append((f"agreement {k} acc", [r["agreement_fields"].get(k) for r in results]))
    for name, values in rows:
        print(f"{name:<34}" + "".join(f"{'-' if v is None else v:>12}" for v in values))
    print(f"near-duplicate pairs P/R (all pages): {dups['p']}/{dups['r']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"splits": results, "near_duplicates": dups}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
