"""Entities and agreements on the real-news dev pages, in one process (the fast loop).

``../shared/benchmarks/realnews_dev/run.sh`` is the reference: it runs the whole CLI (ingest,
documents, one ``extract`` process per page, search) and scores it as the external checks do.
That takes minutes, most of it process start-up and embedding. This script runs the same
``extract`` → ``Analyzer`` path as ``defintel extract`` for every page in one process, writes
the same ``extract/<page>.json`` files and scores them with the set's own ``score.py`` — so the
entity, linking and agreement figures are the ones ``run.sh`` prints (documents and search are
not run here: their rows in the table stay empty).

The pages are development data: measure on them, never train on them, and never copy their
sentences into the project.

    .venv/bin/python benchmarks/realnews_eval.py [--data ../shared/benchmarks/realnews_dev]
        [--out benchmarks/results/realnews_eval.json] [--errors]

``--errors`` prints, per page, the gold entities missed and the predictions that matched nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.config import NlpSettings
from pipeline.extract import decode_html, extract
from pipeline.nlp.analyze import Analyzer
from pipeline.records import Page

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks" / "realnews_dev"
KEYS = (
    "lang_acc",
    "title_acc",
    "published_acc",
    "author_acc",
    "maintext_f1",
    "entity_f1",
    "entity_f1_strict",
    "entity_f1_tr",
    "entity_f1_az",
    "entity_f1_en",
    "entity_p",
    "entity_r",
    "entity_r_org",
    "entity_r_gpe",
    "entity_r_person",
    "link_acc",
    "xling_id_consistency",
    "id_purity",
    "agreement_f1",
    "agreement_f1_untyped",
    "agreement_p",
    "agreement_r",
    "agreement_value_acc",
    "agreement_signed_acc",
    "agreement_evidence_acc",
)


def _score_module(data: Path) -> Any:
    spec = importlib.util.spec_from_file_location("realnews_score", data / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {data / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(data))
    spec.loader.exec_module(module)
    return module


def run(data: Path, outputs: Path) -> float:
    """Extract + analyse every page into ``outputs/extract``; returns the seconds it took."""
    (outputs / "extract").mkdir(parents=True, exist_ok=True)
    analyzer = Analyzer(NlpSettings(models_dir=str(ROOT / "models")))
    t0 = time.perf_counter()
    for path in sorted((data / "pages").glob("*.html")):
        page = Page(url=path.resolve().as_uri(), html=decode_html(path.read_bytes()), source=str(path))
        analysis = analyzer.analyze([extract(page)])[0]
        out = outputs / "extract" / f"{path.name}.json"
        out.write_text(json.dumps(analysis.as_json(), ensure_ascii=False), encoding="utf-8")
    return time.perf_counter() - t0


def print_errors(data: Path, outputs: Path, score_mod: Any) -> None:
    """Per page: gold entities no prediction matched, predictions that matched no gold name."""
    gold = json.loads((data / "gold.json").read_text(encoding="utf-8"))
    canonical = {e["canonical"]: e for e in json.loads((data / "canonical.json").read_text(encoding="utf-8"))}
    norm = score_mod.normalize
    for g in gold:
        pred = json.loads((outputs / "extract" / f"{g['file']}.json").read_text(encoding="utf-8"))
        names: dict[str, str] = {}
        for e in g["entities"]:
            c = canonical.get(e["canonical"], {"aliases": []})
            for a in [e["canonical"], *c["aliases"], *e["aliases_in_text"]]:
                names[norm(a)] = e["canonical"]
        hit: set[str] = set()
        spurious = []
        for p in pred.get("entities", []):
            keys = {norm(p["text"]), score_mod.strip1(norm(p["text"]))} - {None}
            found = next((names[k] for k in keys if k in names), None)
            if found:
                hit.add(found)
            elif not any(k in n for n in names for k in keys):
                spurious.append(f"{p['text']}[{p['label']}]")
        missed = [
            f"{e['aliases_in_text'][0]}[{e['label']}]" for e in g["entities"] if e["canonical"] not in hit
        ]
        if missed or spurious:
            print(
                f"{g['file']}\n  missed: {', '.join(missed)}\n  spurious: {', '.join(dict.fromkeys(spurious))}"
            )
        gold_ag = [(a["type"], a["parties"]) for a in g["agreements"]]
        pred_ag = [(a["type"], a["parties"]) for a in pred.get("agreements", [])]
        if gold_ag != pred_ag:
            print(f"  agreements gold: {gold_ag}\n  agreements pred: {pred_ag}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "realnews_eval.json")
    ap.add_argument("--errors", action="store_true")
    ap.add_argument("--keep", type=Path, help="also leave the extract outputs in this folder")
    args = ap.parse_args(argv)
    if not (args.data / "score.py").exists():
        print(f"realnews_eval: {args.data} not found (it lives in ../shared/benchmarks); skipped")
        return 0
    score_mod = _score_module(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp)
        seconds = run(args.data, outputs)
        metrics, details = score_mod.score(str(outputs), str(args.data))
        if args.errors:
            print_errors(args.data, outputs, score_mod)
            print(
                "ids differing across languages:",
                json.dumps(details.get("xling_inconsistent"), ensure_ascii=False),
            )
        if args.keep:
            shutil.copytree(outputs, args.keep, dirs_exist_ok=True)
    table = {k: metrics.get(k) for k in KEYS}
    print(f"{'metric':32} value")
    for k, v in table.items():
        print(f"{k:32} {v if v is None else round(float(v), 3)}")
    print(f"pages analysed in {seconds:.1f} s")
    result = {
        "command": "benchmarks/realnews_eval.py",
        "data": str(args.data),
        "seconds": round(seconds, 2),
        "load_average": list(os.getloadavg()),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
