"""The quality gate: every quality figure README.md claims, checked against a floor.

``benchmarks/floors.json`` lists each benchmark (its tier, the script whose functions compute it, the
sha256 of every data file set it reads) and each metric (its floor — or ceiling, for a figure where
lower is better —, the value measured when the floor was set, and the figure README.md states).
This script runs the benchmarks of a tier in process through the benchmark scripts' own functions
(the scoring is theirs, not a copy), prints metric / floor / value / status, writes
``benchmarks/results/gate.json`` and exits 1 listing every failure as ``metric: value < floor``.

Tiers: ``fast`` (seconds each; ``tests/test_gate.py`` runs it in ``make test``) and ``full`` (the fast
tier plus the e5 search, public-set NER and e5 deals benchmarks: ``make gate``).

* Data absent (``../shared/benchmarks`` is not in every checkout, the e5 model is built by
  ``make models``): the benchmark is skipped and the path it looked for is printed — not a failure.
* Data changed since the floors were set (a sha256 differs): the benchmark still runs and its
  values are shown, but every metric of it fails as "data changed" — figures on other data are not
  compared silently. Re-measure, adjust the floors, then ``gate.py --rehash`` records the new
  hashes; say why in the commit message.
* Raising a floor is a one-line change in floors.json; lowering one needs a reason in the commit
  message. Speed figures are not gated (they depend on the machine's load).

    .venv/bin/python benchmarks/gate.py [--tier fast|full] [--only BENCH,...] [--json PATH]
        [--shared ../shared/benchmarks] [--floors benchmarks/floors.json] [--rehash]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/gate.py`: the benchmark modules import as benchmarks.*
    sys.path.insert(0, str(ROOT))

FLOORS = ROOT / "benchmarks" / "floors.json"
OUT = {
    "fast": ROOT / "benchmarks" / "results" / "gate_fast.json",
    "full": ROOT / "benchmarks" / "results" / "gate.json",
}
CORPUS = ROOT / "corpus"
SHARED_PREFIX = "../shared/benchmarks/"
DEFAULT_SHARED = Path(os.environ.get("DEFINTEL_SHARED_BENCHMARKS", ROOT.parent / "shared" / "benchmarks"))
TIERS = ("fast", "full")
FAILING = ("FAIL", "DATA CHANGED", "MISSING", "ERROR")

Values = dict[str, float | None]


@dataclass(frozen=True)
class Context:
    shared: Path  # the public benchmark sets (../shared/benchmarks)
    work: Path  # a scratch folder, removed after the run


Runner = Callable[[Context], Values]


@dataclass(frozen=True)
class Bench:
    name: str
    tier: str
    script: str
    data: dict[str, str]  # path or glob (last component) → sha256 recorded with the floors


@dataclass(frozen=True)
class Floor:
    metric: str  # "<benchmark>.<name>"
    bound: float
    kind: str = "floor"  # "floor": value >= bound; "ceiling": value <= bound
    measured: float | None = None  # the value when the bound was set
    claimed: float | None = None  # the figure README.md states

    @property
    def benchmark(self) -> str:
        return self.metric.split(".", 1)[0]

    def passes(self, value: float) -> bool:
        return value >= self.bound if self.kind == "floor" else value <= self.bound


@dataclass
class Row:
    metric: str
    tier: str
    kind: str
    bound: float
    value: float | None
    claimed: float | None
    status: str  # ok · FAIL · skipped · DATA CHANGED · MISSING · ERROR
    note: str = ""

    def message(self) -> str:
        if self.status == "FAIL":
            op = "<" if self.kind == "floor" else ">"
            return f"{self.metric}: {_fmt(self.value)} {op} {_fmt(self.bound)}" + (
                " (ceiling)" if self.kind == "ceiling" else ""
            )
        return f"{self.metric}: {self.status.lower()}" + (f" ({self.note})" if self.note else "")


@dataclass
class Report:
    tier: str  # "fast tier", "full tier" or "only BENCH,…"
    rows: list[Row] = field(default_factory=list)
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failures(self) -> list[str]:
        return [r.message() for r in self.rows if r.status in FAILING]

    @property
    def skipped(self) -> list[str]:
        """One line per skipped benchmark: how many figures, and the data it looked for."""
        lines: dict[str, list[Row]] = {}
        for r in self.rows:
            if r.status == "skipped":
                lines.setdefault(r.metric.split(".", 1)[0], []).append(r)
        return [f"{b} ({len(rows)} figures): {rows[0].note}" for b, rows in lines.items()]


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


# -- floors.json --------------------------------------------------------------------------------------
def load_floors(path: Path = FLOORS) -> tuple[dict[str, Bench], list[Floor], dict[str, Any]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    benches = {
        name: Bench(name, b["tier"], b["script"], dict(b.get("data", {})))
        for name, b in raw["benchmarks"].items()
    }
    floors = []
    for f in raw["floors"]:
        kind = "ceiling" if "ceiling" in f else "floor"
        floors.append(Floor(f["metric"], float(f[kind]), kind, f.get("measured"), f.get("claimed")))
    problems = [f.metric for f in floors if f.benchmark not in benches]
    problems += [b.name for b in benches.values() if b.tier not in TIERS]
    dupes = {f.metric for f in floors if sum(g.metric == f.metric for g in floors) > 1}
    if problems or dupes:
        raise ValueError(f"{path}: unknown benchmark or tier for {problems}; duplicated {sorted(dupes)}")
    return benches, floors, raw


def dump_floors(benches: dict[str, Bench], floors: list[Floor], about: Any) -> str:
    """floors.json text: one line per benchmark data file and one line per floor (one-line edits)."""
    lines = ["{", f' "about": {json.dumps(about, ensure_ascii=False)},', ' "benchmarks": {']
    for i, b in enumerate(benches.values()):
        lines.append(f'  "{b.name}": {{"tier": "{b.tier}", "script": "{b.script}", "data": {{')
        data = [f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in b.data.items()]
        lines.append(",\n".join(data))
        lines.append("  }}" + ("," if i < len(benches) - 1 else ""))
    lines += [" },", ' "floors": [']
    for i, f in enumerate(floors):
        entry: dict[str, Any] = {"metric": f.metric, f.kind: f.bound, "measured": f.measured}
        if f.claimed is not None:
            entry["claimed"] = f.claimed
        lines.append("  " + json.dumps(entry, ensure_ascii=False) + ("," if i < len(floors) - 1 else ""))
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


# -- data hashes --------------------------------------------------------------------------------------
def resolve(pattern: str, shared: Path) -> Path:
    """A floors.json data path: ``../shared/benchmarks/…`` under ``shared``, anything else under the repo."""
    if pattern.startswith(SHARED_PREFIX):
        return shared / pattern[len(SHARED_PREFIX) :]
    return ROOT / pattern


def data_hash(pattern: str, shared: Path) -> str | None:
    """A file's sha256 (as ``sha256sum`` prints it); for a glob, the sha256 over the (name, sha256) of
    every file it matches, in name order. None when nothing is there."""
    path = resolve(pattern, shared)
    if not any(c in path.name for c in "*?["):
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    files = sorted(p for p in path.parent.glob(path.name) if p.is_file())
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def check_data(bench: Bench, shared: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    """(absent paths, changed-data notes, current hashes) of a benchmark."""
    current = {k: data_hash(k, shared) for k in bench.data}
    absent = [str(resolve(k, shared)) for k, v in current.items() if v is None]
    absent += [str(ROOT / p) for p in REQUIRES.get(bench.name, ()) if not (ROOT / p).exists()]
    changed = [
        f"{k}: floors set on {old[:12]}, now {new[:12]}"
        for k, old in bench.data.items()
        if (new := current[k]) is not None and new != old
    ]
    return absent, changed, current


# -- checking ------------------------------------------------------------------------------------------
def check(
    floors: Iterable[Floor],
    benches: dict[str, Bench],
    values: dict[str, Values],
    *,
    skipped: dict[str, list[str]] | None = None,
    changed: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
) -> list[Row]:
    """One row per floor: ``values`` are the metrics each benchmark produced (names without the
    benchmark prefix); ``skipped`` / ``changed`` / ``errors`` per benchmark: absent paths, changed
    data, the exception of a benchmark that failed."""
    skipped, changed, errors = skipped or {}, changed or {}, errors or {}
    rows = []
    for f in floors:
        bench = f.benchmark
        name = f.metric.split(".", 1)[1]
        row = Row(f.metric, benches[bench].tier, f.kind, f.bound, None, f.claimed, "ok")
        if bench in skipped:
            more = len(skipped[bench]) - 1
            row.status = "skipped"
            row.note = f"data absent: {skipped[bench][0]}" + (f" and {more} more" if more else "")
        elif bench in errors:
            row.status, row.note = "ERROR", f"benchmark {bench} failed: {errors[bench]}"
        elif bench not in values:
            continue  # not in the tier that ran
        else:
            value = values[bench].get(name)
            row.value = None if value is None else float(value)
            if row.value is None:
                row.status, row.note = "MISSING", f"benchmark {bench} produced no {name}"
            elif bench in changed:
                row.status, row.note = "DATA CHANGED", "; ".join(changed[bench])
                if not f.passes(row.value):
                    row.note += (
                        f"; and {Row(f.metric, '', f.kind, f.bound, row.value, None, 'FAIL').message()}"
                    )
            elif not f.passes(row.value):
                row.status = "FAIL"
            if row.status != "MISSING" and f.claimed is not None and _below_claim(row.value, f):
                row.note = (row.note + "; " if row.note else "") + f"README claims {f.claimed}"
        rows.append(row)
    return rows


def _below_claim(value: float | None, f: Floor) -> bool:
    """Is the value worse than the README figure at the README's precision (0.88 vs 0.883: not)? The
    README prints at least two decimals (1.00 is stored as 1.0)."""
    if value is None or f.claimed is None:
        return False
    text = repr(f.claimed)
    decimals = max(2, len(text.split(".")[1]) if "." in text else 0)
    shown = round(value, decimals)
    return shown < f.claimed if f.kind == "floor" else shown > f.claimed


def print_table(report: Report, out: Any = sys.stdout) -> None:
    width = max([len(r.metric) for r in report.rows] + [6])
    print(f"{'metric':<{width}}  {'tier':<4}  {'floor':>9}  {'value':>7}  {'README':>6}  status", file=out)
    for r in report.rows:
        bound = _fmt(r.bound) if r.kind == "floor" else "≤ " + _fmt(r.bound)
        claimed = "" if r.claimed is None else _fmt(r.claimed)
        note = f"  ({r.note})" if r.note else ""
        print(
            f"{r.metric:<{width}}  {r.tier:<4}  {bound:>9}  {_fmt(r.value):>7}  {claimed:>6}  {r.status}{note}",
            file=out,
        )
    times = ", ".join(f"{k} {v.get('seconds', 0):.0f} s" for k, v in report.benchmarks.items())
    print(f"\n{report.tier} in {report.seconds:.0f} s ({times}); load average {_load()}", file=out)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- the benchmarks, through their scripts' functions --------------------------------------------------
def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def run_realnews(ctx: Context) -> Values:
    from benchmarks import realnews_eval as rn

    data = ctx.shared / "realnews_dev"
    score_mod = rn._score_module(data)
    outputs = ctx.work / "realnews"
    rn.run(data, outputs)
    metrics, _details = score_mod.score(str(outputs), str(data))
    return {k: _num(metrics.get(k)) for k in rn.KEYS}


def run_dev_eval(ctx: Context) -> Values:
    from benchmarks import dev_eval as de

    out: Values = {}
    for split in ("dev", "heldout"):
        r = de.evaluate(CORPUS, split)
        out |= {f"{split}.{k}_acc": v for k, v in r["metadata"].items()}
        out |= {f"{split}.entity_f1_{lang}": s["f1"] for lang, s in r["entities"].items()}
        out |= {f"{split}.entity_f1_strict_{lang}": s["f1"] for lang, s in r["entities_strict"].items()}
        out |= {f"{split}.link_acc_{lang}": v for lang, v in r["linking_accuracy"].items()}
        out[f"{split}.xling_id_consistency"] = r["cross_lingual_consistency"]
        out[f"{split}.unlisted_org_recall"] = r["unlisted_org_recall"]
        out[f"{split}.agreement_f1"] = r["agreements"]["f1"]
        out |= {f"{split}.agreement_{k}_acc": v for k, v in r["agreement_fields"].items()}
    return out


def run_neardup(ctx: Context) -> Values:
    from benchmarks import dev_eval as de

    pr = de.near_duplicates(CORPUS)
    return {"corpus_p": pr["p"], "corpus_r": pr["r"]}


def run_extraction(ctx: Context) -> Values:
    from benchmarks import extract_bench as eb

    ours = ["defintel extract() body"]
    base = ctx.shared / "article_extraction_benchmark"
    truth = json.loads((base / "ground-truth.json").read_text(encoding="utf-8"))
    keys = sorted(truth)
    pages = ((k, truth[k]["url"], eb.read_gz(base / "html" / f"{k}.html.gz")) for k in keys)
    preds, _ = eb.run_systems(pages, ours)
    zyte = eb.score_articles({k: truth[k]["articleBody"] for k in keys}, preds[ours[0]])
    base = ctx.shared / "trafilatura_eval_en_subset"
    entries = json.loads((base / "evaldata_en_subset.json").read_text(encoding="utf-8"))
    urls = sorted(entries)
    pages = ((u, u, eb.read_gz(base / "html" / f"{entries[u]['file']}.gz")) for u in urls)
    preds, _ = eb.run_systems(pages, ours)
    trafi = eb.score_segments(entries, dict(preds[ours[0]]))
    return {"zyte_f1": zyte["f1"], "trafilatura_en_f1": trafi["f1"]}


def run_langid(ctx: Context) -> Values:
    from benchmarks import extract_bench as eb
    from pipeline import langid

    pages = eb.corpus_pages()
    stored = {text: got for _, text, got in pages}
    return {
        "xwmt_accuracy": eb.accuracy(eb.xwmt_sentences(ctx.shared), langid.detect)["accuracy"],
        "tatoeba_accuracy": eb.accuracy(eb.tatoeba_sentences(ctx.shared), langid.detect)["accuracy"],
        "corpus_pages_accuracy": eb.accuracy([(g, t) for g, t, _ in pages], stored.__getitem__)["accuracy"],
    }


def run_ner_public(ctx: Context) -> Values:
    from benchmarks import ner_bench as nb
    from pipeline.nlp.entities import EntityFinder

    finder = EntityFinder(str(ROOT / "models"))
    out: Values = {}
    for name, bench in nb.SETS.items():
        r = nb.run_set(bench, ctx.shared, finder, None)
        key = name.replace("-", "_")
        out[f"{key}_strict_f1"] = r["strict"]["f1"]
        out[f"{key}_agnostic_f1"] = r["agnostic"]["f1"]
    return out


def bitext(backend: str) -> Runner:
    def run(ctx: Context) -> Values:
        from benchmarks import search_bench as sb

        res = sb.run_bitext(backend, ctx.shared)
        return {k.replace(" ", "_").replace("→", "_").replace("-", ""): v["accuracy"] for k, v in res.items()}

    return run


def run_search_queries(ctx: Context) -> Values:
    """The corpus query set on e5-small onnx-int8 (the default), as search_bench's ``queries`` part."""
    from benchmarks import search_bench as sb
    from pipeline.backend.sqlite import Store
    from pipeline.index.search import Searcher

    backend = "e5-onnx-int8"
    work = ctx.work / "search"
    base = sb.ingest_corpus(work)
    data = work / backend
    sb.copy_store(base, data)
    model, runtime = sb.BACKENDS[backend]
    settings = sb.base_settings(data, model, runtime)
    store = Store(data)
    try:
        embedder = sb.make_backend(backend)
        sb.build_index(settings, store, embedder)
        q = sb.evaluate_queries(Searcher(settings, store, embedder), sb.gold_queries(store))
    finally:
        store.close()
    out: Values = {"hybrid_mrr_graded": q["hybrid"]["all"]["mrr_graded"]}
    groups = {"all": "", "split=dev": "_dev", "split=heldout": "_heldout", "cross-lingual": "_xling"}
    for mode in ("hybrid", "dense", "lexical"):
        for group, suffix in groups.items():
            out[f"{mode}{suffix}_recall5"] = q[mode][group]["recall@5"]
            out[f"{mode}{suffix}_mrr"] = q[mode][group]["mrr"]
    return out


def deals(embedder: str) -> Runner:
    def run(ctx: Context) -> Values:
        from benchmarks import deals_bench as db

        r = db.run(embedder, CORPUS, calibrate=False)
        return {
            "deals_p": r["deals"]["p"],
            "deals_r": r["deals"]["r"],
            "stories_p": r["stories"]["p"],
            "stories_r": r["stories"]["r"],
        }

    return run


def run_deals_calibration(ctx: Context) -> Values:
    from benchmarks import deals_bench as db

    cal = db.calibration("e5-small", ctx.shared / "xwmt_news_parallel" / "xwmt_en_az_tr_3way.tsv")
    pairs = [v for k, v in (cal or {}).items() if k != "pairs"]
    if not pairs:
        return {}
    return {
        "xwmt_translation_bonus_min": min(v["translation_bonus"] for v in pairs),
        "xwmt_unrelated_bonus_max": max(v["unrelated_bonus"] for v in pairs),
    }


RUNNERS: dict[str, Runner] = {
    "realnews": run_realnews,
    "dev_eval": run_dev_eval,
    "neardup": run_neardup,
    "deals_hashing": deals("hashing"),
    "extraction": run_extraction,
    "langid": run_langid,
    "bitext_hashing": bitext("hashing"),
    "ner_public": run_ner_public,
    "bitext_e5": bitext("e5-onnx-int8"),
    "search_e5": run_search_queries,
    "deals_e5": deals("e5-small"),
    "deals_calibration_e5": run_deals_calibration,
}
# What a benchmark needs besides its hashed data (absent: skipped, like absent data).
REQUIRES: dict[str, tuple[str, ...]] = {
    "bitext_e5": ("models/e5-small/onnx/model_int8.onnx",),
    "search_e5": ("models/e5-small/onnx/model_int8.onnx",),
    "deals_e5": ("models/e5-small/onnx/model_int8.onnx",),
    "deals_calibration_e5": ("models/e5-small/onnx/model_int8.onnx",),
}


# -- running -------------------------------------------------------------------------------------------
def selected(benches: dict[str, Bench], tier: str, only: Iterable[str] = ()) -> list[Bench]:
    """The benchmarks of a tier (``full`` includes ``fast``), or those named in ``only``."""
    names = set(only)
    if names:
        unknown = names - set(benches)
        if unknown:
            raise ValueError(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        return [b for b in benches.values() if b.name in names]
    return [b for b in benches.values() if tier == "full" or b.tier == tier]


def run_gate(
    tier: str = "fast",
    *,
    floors_path: Path = FLOORS,
    shared: Path = DEFAULT_SHARED,
    only: Iterable[str] = (),
    runners: dict[str, Runner] | None = None,
    log: Any = sys.stderr,
) -> Report:
    runners = RUNNERS if runners is None else runners
    benches, floors, _ = load_floors(floors_path)
    only = list(only)
    report = Report(f"{tier} tier" if not only else "only " + ",".join(only))
    values: dict[str, Values] = {}
    skipped: dict[str, list[str]] = {}
    changed: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="defintel-gate-") as tmp:
        for bench in selected(benches, tier, only):
            absent, changes, hashes = check_data(bench, shared)
            info: dict[str, Any] = {"tier": bench.tier, "script": bench.script, "data": hashes}
            report.benchmarks[bench.name] = info
            if absent:
                skipped[bench.name] = absent
                print(f"[gate] {bench.name}: skipped, data absent: {', '.join(absent)}", file=log)
                continue
            if changes:
                changed[bench.name] = changes
                print(f"[gate] {bench.name}: DATA CHANGED: {'; '.join(changes)}", file=log)
            if bench.name not in runners:
                errors[bench.name] = "no runner in gate.py"
                continue
            t0 = time.perf_counter()
            work = Path(tmp) / bench.name
            work.mkdir()
            try:
                values[bench.name] = runners[bench.name](Context(shared, work))
            except Exception as exc:  # noqa: BLE001 — one broken benchmark must not hide the others
                errors[bench.name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc(file=log)
            info["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"[gate] {bench.name}: {info['seconds']} s", file=log)
    report.seconds = round(time.perf_counter() - started, 1)
    report.rows = check(floors, benches, values, skipped=skipped, changed=changed, errors=errors)
    return report


def write_json(report: Report, path: Path) -> None:
    result = {
        "command": " ".join(["benchmarks/gate.py", *sys.argv[1:]]),
        "tier": report.tier,
        "seconds": report.seconds,
        "load_average": _load(),
        "cpus": os.cpu_count(),
        "failures": report.failures,
        "skipped": report.skipped,
        "benchmarks": report.benchmarks,
        "metrics": [asdict(r) for r in report.rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def rehash(floors_path: Path, shared: Path, names: Iterable[str]) -> list[str]:
    """Record the current data hashes of these benchmarks in floors.json (floors untouched)."""
    benches, floors, raw = load_floors(floors_path)
    notes = []
    for name in names:
        b = benches[name]
        new = {k: data_hash(k, shared) for k in b.data}
        if None in new.values():
            notes.append(f"{name}: data absent, hashes kept")
            continue
        if new != b.data:
            notes.append(f"{name}: data hashes updated")
            benches[name] = Bench(b.name, b.tier, b.script, {k: str(v) for k, v in new.items()})
    floors_path.write_text(dump_floors(benches, floors, raw.get("about")), encoding="utf-8")
    return notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", choices=TIERS, default="full")
    ap.add_argument("--only", default="", help="comma list of benchmarks (overrides --tier)")
    ap.add_argument(
        "--json",
        type=Path,
        help="where to write the report (default benchmarks/results/gate.json, gate_fast.json)",
    )
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the public benchmark sets")
    ap.add_argument("--floors", type=Path, default=FLOORS)
    ap.add_argument(
        "--rehash", action="store_true", help="record the current data hashes in floors.json and exit"
    )
    args = ap.parse_args(argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    try:
        benches, _, _ = load_floors(args.floors)
        chosen = selected(benches, args.tier, only)
    except (ValueError, OSError, KeyError) as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 2
    if args.rehash:
        for note in rehash(args.floors, args.shared, [b.name for b in chosen]) or ["no data changed"]:
            print(note)
        return 0
    if not args.shared.is_dir():
        print(f"[gate] no public benchmark sets at {args.shared}: the benchmarks reading them are skipped")
    report = run_gate(args.tier, floors_path=args.floors, shared=args.shared, only=only)
    print_table(report)
    out = args.json or (OUT[args.tier] if not only else OUT["fast"].with_name("gate_only.json"))
    write_json(report, out)
    print(f"wrote {out}")
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in report.failures:
        print(f"gate failure: {line}", file=sys.stderr)
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
