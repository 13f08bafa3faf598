"""Main text, language ID and throughput of the extraction stage, on public benchmarks.

* Main text: token P/R/F1 on the Zyte article-extraction benchmark (181 pages, 4-token shingles,
  metric of its PROVENANCE.md) and segment P/R/F1 on trafilatura's English evaluation subset
  (164 pages, upstream ``eval_common.py`` metric), for defintel's ``extract()`` body (the text after
  the headline line) and for plain ``trafilatura.extract`` with default settings beside it. The
  stored trafilatura 2.0.0 outputs are rescored first, to show the metric reproduces 0.958.
* Language ID: accuracy on the X-WMT 3-way news sentences (500 × en/az/tr = 1,500) and on the
  ``corpus/`` pages (gold language), for ``langid.detect`` and for langdetect alone.
* Throughput: pages/s of ``extract()`` (decode + parse + main text + metadata + language) over the
  benchmark pages, single process; the load average is printed beside it because the machine is shared.

    .venv/bin/python benchmarks/extract_bench.py [--data ../shared/benchmarks] [--only articles,trafi,langid]
        [--limit N] [--out benchmarks/results/extract_bench.json]

These public sets are evaluation sets: the script reports, nothing is tuned on them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline import langid
from pipeline.errors import DocumentError
from pipeline.extract import decode_html, extract
from pipeline.records import Page

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks"
_TOKEN = re.compile(r"\w+")


# -- Zyte article benchmark metric (PROVENANCE.md, steps 1-6) ---------------------------------------
def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def page_pr(truth: str, pred: str) -> tuple[float | None, float | None]:
    """Per-page (precision, recall); None where the page is left out of that mean."""
    t, p = shingles(truth), shingles(pred)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    total = tp + fp + fn
    if total == 0:
        return 1.0, 1.0
    tp_, fp_, fn_ = tp / total, fp / total, fn / total
    if fp_ == 0 and fn_ == 0:
        return 1.0, 1.0
    precision = tp_ / (tp_ + fp_) if tp_ + fp_ else None
    recall = tp_ / (tp_ + fn_) if tp_ + fn_ else None
    return precision, recall


def score_articles(truth: dict[str, str], pred: dict[str, str]) -> dict[str, float]:
    ps: list[float] = []
    rs: list[float] = []
    exact = 0
    for key, true_text in truth.items():
        p, r = page_pr(true_text, pred.get(key, ""))
        if p is not None:
            ps.append(p)
        if r is not None:
            rs.append(r)
        exact += _TOKEN.findall(true_text) == _TOKEN.findall(pred.get(key, ""))
    prec, rec = sum(ps) / len(ps), sum(rs) / len(rs)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "p": round(prec, 4),
        "r": round(rec, 4),
        "f1": round(f1, 4),
        "accuracy": round(exact / len(truth), 3),
    }


# -- trafilatura evaluation metric (upstream tests/eval_common.py) ----------------------------------
def _ws(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def score_segments(entries: dict[str, Any], pred: dict[str, str | None]) -> dict[str, float]:
    tp = fp = fn = tn = 0
    for url, entry in entries.items():
        out = pred.get(url)
        text = _ws(out) if out is not None else None
        for seg in entry["with"]:
            if text is not None and _ws(seg) in text:
                tp += 1
            else:
                fn += 1
        for seg in entry["without"]:
            if text is not None and _ws(seg) in text:
                fp += 1
            else:
                tn += 1
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "p": round(p, 4),
        "r": round(r, 4),
        "f1": round(2 * tp / (2 * tp + fp + fn), 4),
        "accuracy": round((tp + tn) / (tp + fp + fn + tn), 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


# -- systems ----------------------------------------------------------------------------------------
def ours(data: bytes, url: str) -> str:
    """defintel's main text: ``Document.text`` without the headline line; '' when the page is refused."""
    try:
        doc = extract(Page(url=url, html=decode_html(data), source=url))
    except DocumentError:
        return ""
    return doc.text[len(doc.title) :].lstrip("\n")


def ours_with_title(data: bytes, url: str) -> str:
    """``Document.text`` as stored (headline + body): the trafilatura set counts headlines as content."""
    try:
        return extract(Page(url=url, html=decode_html(data), source=url)).text
    except DocumentError:
        return ""


def trafilatura_defaults(data: bytes, url: str) -> str:
    import trafilatura

    return trafilatura.extract(data, url=url) or ""


def trafilatura_upstream_eval(data: bytes, url: str) -> str:
    """The options upstream's own evaluation uses ("standard": comments off, tables on, fallbacks on)."""
    import trafilatura

    return trafilatura.extract(data, url=url, include_comments=False, include_tables=True) or ""


SYSTEMS: dict[str, Callable[[bytes, str], str]] = {
    "defintel extract() body": ours,
    "defintel extract() title + body": ours_with_title,
    "trafilatura defaults": trafilatura_defaults,
    "trafilatura upstream eval settings": trafilatura_upstream_eval,
}
# The floors (README "Measured"); --gate exits 1 when a score falls below one.
FLOORS = {
    ("article_extraction_benchmark", "defintel extract() body", "f1"): 0.958,
    ("trafilatura_eval_en_subset", "defintel extract() body", "f1"): 0.93,
    ("xwmt_3way_sentences", "defintel langid.detect", "accuracy"): 0.99,
    ("corpus_pages", "defintel extract().language", "accuracy"): 1.0,
}


def run_systems(
    pages: Iterable[tuple[str, str, bytes]], systems: list[str]
) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """key → text per system, and the seconds each system spent in total."""
    preds: dict[str, dict[str, str]] = {name: {} for name in systems}
    seconds = dict.fromkeys(systems, 0.0)
    for key, url, data in pages:
        for name in systems:
            fn = SYSTEMS[name]
            start = time.perf_counter()
            preds[name][key] = fn(data, url)
            seconds[name] += time.perf_counter() - start
    return preds, seconds


def read_gz(path: Path) -> bytes:
    with gzip.open(path, "rb") as fh:
        return fh.read()


def bench_articles(data_dir: Path, limit: int | None) -> dict[str, Any]:
    base = data_dir / "article_extraction_benchmark"
    truth_all = json.loads((base / "ground-truth.json").read_text(encoding="utf-8"))
    keys = sorted(truth_all)[:limit]
    truth = {k: truth_all[k]["articleBody"] for k in keys}
    pages = ((k, truth_all[k]["url"], read_gz(base / "html" / f"{k}.html.gz")) for k in keys)
    # the reference has no headline, so the title + body variant is not scored here
    systems = [n for n in SYSTEMS if n != "defintel extract() title + body"]
    preds, seconds = run_systems(pages, systems)
    stored = json.loads((base / "reference_outputs" / "trafilatura.json").read_text(encoding="utf-8"))
    reference = {k: v["articleBody"] for k, v in stored["output"].items() if k in truth}
    out: dict[str, Any] = {"pages": len(keys), "metric": "4-token shingles, mean P / mean R, F1 of means"}
    out["stored trafilatura 2.0.0 (published .958)"] = score_articles(truth, reference)
    for name in systems:
        out[name] = score_articles(truth, preds[name]) | {"pages_per_s": round(len(keys) / seconds[name], 2)}
    return out


def bench_trafilatura_subset(data_dir: Path, limit: int | None) -> dict[str, Any]:
    base = data_dir / "trafilatura_eval_en_subset"
    entries_all = json.loads((base / "evaldata_en_subset.json").read_text(encoding="utf-8"))
    urls = sorted(entries_all)[:limit]
    entries = {u: entries_all[u] for u in urls}
    pages = ((u, u, read_gz(base / "html" / f"{entries[u]['file']}.gz")) for u in urls)
    preds, seconds = run_systems(pages, list(SYSTEMS))
    out: dict[str, Any] = {"pages": len(urls), "metric": "segments with/without as substrings, micro F1"}
    for name in SYSTEMS:
        scored = score_segments(entries, dict(preds[name]))
        out[name] = scored | {"pages_per_s": round(len(urls) / seconds[name], 2)}
    return out


# -- language ID ------------------------------------------------------------------------------------
def langdetect_alone(text: str) -> str:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    try:
        return str(detect(text))
    except LangDetectException:
        return "und"


def xwmt_sentences(data_dir: Path) -> list[tuple[str, str]]:
    """(language, sentence) for the en, az and tr sides of the 3-way file (tab-split: quotes are text)."""
    lines = (
        (data_dir / "xwmt_news_parallel" / "xwmt_en_az_tr_3way.tsv").read_text(encoding="utf-8").splitlines()
    )
    header = lines[0].split("\t")
    out = []
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        out += [(lang, row[lang]) for lang in ("en", "az", "tr")]
    return out


def tatoeba_sentences(data_dir: Path) -> list[tuple[str, str]]:
    """Short everyday sentences (a secondary check: never looked at while writing the rules)."""
    base = data_dir / "tatoeba"
    files = [
        ("tatoeba.aze-eng.aze", "az"),
        ("tatoeba.aze-eng.eng", "en"),
        ("tatoeba.tur-eng.tur", "tr"),
        ("tatoeba.tur-eng.eng", "en"),
    ]
    if not base.is_dir():
        return []
    return [
        (lang, line)
        for name, lang in files
        for line in (base / name).read_text(encoding="utf-8").splitlines()
    ]


def corpus_pages() -> list[tuple[str, str, str]]:
    """(gold language, extracted text, language extract() gave) for every corpus page with a gold file."""
    out = []
    for gold_path in sorted((ROOT / "corpus" / "gold").glob("*.json")):
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        page = ROOT / "corpus" / gold["file"]
        doc = extract(
            Page(url=page.resolve().as_uri(), html=decode_html(page.read_bytes()), source=str(page))
        )
        out.append((gold["language"], doc.text, doc.language))
    return out


def accuracy(items: list[tuple[str, str]], detector: Callable[[str], str]) -> dict[str, Any]:
    by_lang: dict[str, list[int]] = {}
    errors: Counter[str] = Counter()
    for lang, text in items:
        got = detector(text)
        by_lang.setdefault(lang, []).append(got == lang)
        if got != lang:
            errors[f"{lang}->{got}"] += 1
    total = [ok for oks in by_lang.values() for ok in oks]
    return {
        "accuracy": round(sum(total) / len(total), 4),
        "n": len(total),
        "per_language": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_lang.items())},
        "errors": dict(errors.most_common()),
    }


def bench_langid(data_dir: Path) -> dict[str, Any]:
    sentences = xwmt_sentences(data_dir)
    pages = corpus_pages()
    out = {
        "xwmt_3way_sentences": {
            "defintel langid.detect": accuracy(sentences, langid.detect),
            "langdetect alone": accuracy(sentences, langdetect_alone),
        },
        "corpus_pages": {
            # the language extract() stored (text + <html lang> hint), looked up by text
            "defintel extract().language": accuracy(
                [(gold, text) for gold, text, _ in pages], {text: got for _, text, got in pages}.__getitem__
            ),
            "langdetect alone": accuracy([(gold, text) for gold, text, _ in pages], langdetect_alone),
        },
    }
    tatoeba = tatoeba_sentences(data_dir)
    if tatoeba:
        out["tatoeba_sentences"] = {
            "defintel langid.detect": accuracy(tatoeba, langid.detect),
            "langdetect alone": accuracy(tatoeba, langdetect_alone),
        }
    return out


# -- report -----------------------------------------------------------------------------------------
def print_table(results: dict[str, Any]) -> None:
    for bench in ("article_extraction_benchmark", "trafilatura_eval_en_subset"):
        if bench not in results:
            continue
        res = results[bench]
        print(f"\n{bench} ({res['pages']} pages; {res['metric']})")
        print(f"  {'system':<40}{'P':>8}{'R':>8}{'F1':>8}{'acc':>7}{'pages/s':>9}")
        for name, row in res.items():
            if isinstance(row, dict):
                speed = row.get("pages_per_s", "")
                print(f"  {name:<40}{row['p']:>8}{row['r']:>8}{row['f1']:>8}{row['accuracy']:>7}{speed:>9}")
    if "langid" in results:
        print("\nlanguage ID accuracy")
        for bench, systems in results["langid"].items():
            for name, row in systems.items():
                per = " ".join(f"{k}={v}" for k, v in row["per_language"].items())
                print(f"  {bench:<22}{name:<30}{row['accuracy']:>8}  (n={row['n']}; {per})")
    print(f"\nload average while measuring: {results['load_average']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the shared benchmarks folder")
    ap.add_argument("--only", default="articles,trafi,langid", help="comma list of articles, trafi, langid")
    ap.add_argument(
        "--limit", type=int, default=None, help="first N pages of each extraction set (smoke runs)"
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "extract_bench.json"))
    ap.add_argument("--gate", action="store_true", help="exit 1 when a score is below the issue's floor")
    args = ap.parse_args(argv)
    data_dir = Path(args.data)
    needed = {
        "articles": "article_extraction_benchmark",
        "trafi": "trafilatura_eval_en_subset",
        "langid": "xwmt_news_parallel",
    }
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in needed]
    if unknown:
        ap.error(f"unknown --only part(s): {', '.join(unknown)}")
    missing = [needed[p] for p in parts if not (data_dir / needed[p]).is_dir()]
    if missing:
        print(f"benchmark data not found under {data_dir}: {', '.join(missing)}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    if "articles" in parts:
        results["article_extraction_benchmark"] = bench_articles(data_dir, args.limit)
    if "trafi" in parts:
        results["trafilatura_eval_en_subset"] = bench_trafilatura_subset(data_dir, args.limit)
    if "langid" in parts:
        results["langid"] = bench_langid(data_dir)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    results["cpu_count"] = os.cpu_count()
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")
    failures = below_floor(results)
    for line in failures:
        print(f"below floor: {line}", file=sys.stderr)
    return 1 if args.gate and failures else 0


def below_floor(results: dict[str, Any]) -> list[str]:
    flat = {**results, **results.get("langid", {})}
    out = []
    for (bench, system, metric), floor in FLOORS.items():
        if bench in flat and system in flat[bench] and flat[bench][system][metric] < floor:
            out.append(f"{bench} / {system} / {metric} = {flat[bench][system][metric]} < {floor}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
