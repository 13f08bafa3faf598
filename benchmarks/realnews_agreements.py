"""Agreement extraction on the real-news dev pages, split into two halves (an overfitting check).

Runs the same ``extract`` → ``Analyzer`` path as ``benchmarks/realnews_eval.py`` and scores the
agreements with the set's own ``score.py``, then reports P/R/F1 (typed and untyped) and the
field accuracies separately for the pages at even and odd positions of the sorted file names
("A" = 0, 2, 4, …; "B" = 1, 3, 5, …) and overall. Develop on one half, check that the other
half does not drop. ``--diff`` prints, per page, the gold and predicted agreements with the
fields that were wrong on matched pairs.

The pages are development data: measure on them, never train on them, and never copy their
sentences into the project.

    .venv/bin/python benchmarks/realnews_agreements.py [--diff] [--half A|B]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.realnews_eval import DEFAULT_DATA, ROOT, _score_module, run

FIELDS = ("parties", "signed", "value", "quantity", "local_content_pct", "evidence")


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def half_metrics(details: dict[str, Any], files: list[str]) -> dict[str, float]:
    """Agreement metrics over ``files`` from ``score.py``'s per-page details."""
    c: Counter[str] = Counter()
    for f in files:
        d = details[f]
        c["gold"] += d["gold"]
        c["pred"] += d["pred"]
        c["tp"] += len(d["matched"])
        for row in d["matched"]:
            for k in FIELDS:
                c[k] += k not in row["wrong_fields"]
    p, r, f1 = _prf(c["tp"], c["pred"], c["gold"])
    out = {"p": p, "r": r, "f1": f1, "gold": c["gold"], "pred": c["pred"], "tp": c["tp"]}
    for k in FIELDS:
        out[k] = c[k] / c["tp"] if c["tp"] else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--diff", action="store_true")
    ap.add_argument("--half", choices=("A", "B"), help="--diff only the pages of this half")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "realnews_agreements.json")
    args = ap.parse_args(argv)
    if not (args.data / "score.py").exists():
        print(f"realnews_agreements: {args.data} not found; skipped")
        return 0
    score_mod = _score_module(args.data)
    gold = json.loads((args.data / "gold.json").read_text(encoding="utf-8"))
    files = sorted(g["file"] for g in gold)
    halves = {"A": files[0::2], "B": files[1::2], "all": files}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp)
        run(args.data, outputs)
        metrics, details = score_mod.score(str(outputs), str(args.data))
        ag = details["agreements"]
        if args.diff:
            by_file = {g["file"]: g for g in gold}
            for f in halves[args.half] if args.half else files:
                pred = json.loads((outputs / "extract" / f"{f}.json").read_text(encoding="utf-8"))
                preds = pred.get("agreements", [])
                golds = by_file[f]["agreements"]
                d = ag[f]
                wrong = {row["gold"]: row["wrong_fields"] for row in d["matched"]}
                matched_p = {row["pred"] for row in d["matched"]}
                if not golds and not preds:
                    continue
                ok = len(d["matched"]) == len(golds) == len(preds) and not any(wrong.values())
                print(f"{'ok ' if ok else '!! '}{f}")
                if ok:
                    continue
                for j, g in enumerate(golds):
                    tag = f"wrong={wrong[j]}" if j in wrong else "MISSED"
                    print(f"   G{j} {g['type']:13} {g['parties']} {tag}")
                    print(f"        value={g['value']} signed={g['signed']} q={g['quantity']!r}")
                    print(f"        ev: {g['evidence'][:220]}")
                for i, p in enumerate(preds):
                    tag = "" if i in matched_p else "SPURIOUS"
                    parties = [
                        x.get("canonical") or x.get("text") if isinstance(x, dict) else x
                        for x in p["parties"]
                    ]
                    print(f"   P{i} {p['type']:13} {parties} {tag}")
                    print(f"        value={p.get('value')} signed={p.get('signed')} q={p.get('quantity')!r}")
                    ev = p.get("evidence")
                    ev = ev.get("text") if isinstance(ev, dict) else ev
                    print(f"        ev: {(ev or '')[:220]}")
    print(f"{'half':5} {'P':>6} {'R':>6} {'F1':>6} {'gold':>5} {'pred':>5} {'tp':>4}  " + " ".join(FIELDS))
    result: dict[str, Any] = {"command": "benchmarks/realnews_agreements.py", "halves": {}}
    for name, fs in halves.items():
        m = half_metrics(ag, fs)
        result["halves"][name] = {"pages": len(fs), **{k: round(v, 3) for k, v in m.items()}}
        print(
            f"{name:5} {m['p']:6.3f} {m['r']:6.3f} {m['f1']:6.3f} "
            f"{m['gold']:5} {m['pred']:5} {m['tp']:4}  " + " ".join(f"{m[k]:.3f}" for k in FIELDS)
        )
    print(f"overall untyped F1 {metrics['agreement_f1_untyped']:.3f}")
    result["f1_untyped"] = round(metrics["agreement_f1_untyped"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
