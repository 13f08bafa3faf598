"""Agreement extraction on the hand-annotated corpus, per split and language (scored as SCORING.md §5).

    .venv/bin/python benchmarks/agreements_bench.py [--out benchmarks/results/agreements_bench.json]

Matching and field scoring are those of benchmarks/dev_eval.py (one scorer for both scripts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dev_eval import ROOT, evaluate

FIELDS = ("parties", "signed", "value", "quantity", "local_content_pct", "evidence")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "agreements_bench.json"))
    args = ap.parse_args()
    corpus = Path(args.corpus)
    rows = []
    for split in ("dev", "heldout"):
        for language in (None, "tr", "az", "en"):
            r = evaluate(corpus, split, language)
            rows.append(
                {
                    "split": split,
                    "language": language or "all",
                    "pages": r["pages"],
                    "agreements": r["agreements"],
                    "fields": r["agreement_fields"],
                }
            )
    head = f"{'split':<8}{'lang':<5}{'pages':>6}{'P':>7}{'R':>7}{'F1':>7}" + "".join(
        f"{f[:9]:>10}" for f in FIELDS
    )
    print(head)
    for r in rows:
        a = r["agreements"]
        print(
            f"{r['split']:<8}{r['language']:<5}{r['pages']:>6}{a['p']:>7}{a['r']:>7}{a['f1']:>7}"
            + "".join(f"{r['fields'].get(f, '-'):>10}" for f in FIELDS)
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
