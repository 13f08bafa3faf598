"""The quality gate (benchmarks/gate.py): the fast tier against benchmarks/floors.json, and the gate's
own logic on a small floors file with stand-in benchmarks."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from benchmarks import gate

ROOT = Path(__file__).resolve().parent.parent


# -- the fast tier --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fast_report() -> gate.Report:
    return gate.run_gate("fast", log=io.StringIO())


def test_fast_tier_meets_every_floor(fast_report: gate.Report) -> None:
    table = io.StringIO()
    gate.print_table(fast_report, table)
    print(table.getvalue())
    assert not fast_report.failures, "\n".join(fast_report.failures) + "\n\n" + table.getvalue()


def test_fast_tier_checks_every_fast_floor_and_skips_only_absent_data(fast_report: gate.Report) -> None:
    benches, floors, _ = gate.load_floors()
    fast = {f.metric for f in floors if benches[f.benchmark].tier == "fast"}
    assert {r.metric for r in fast_report.rows} == fast
    for row in fast_report.rows:
        if row.status == "skipped":  # only where ../shared/benchmarks (or a file of it) is missing
            path = row.note.removeprefix("data absent: ").split(" and ")[0]
            assert row.note.startswith("data absent: ") and not Path(path).exists(), row
        else:
            assert row.status == "ok" and row.value is not None, row
    # the bundled corpus is always there: its figures are never skipped
    corpus_rows = [r for r in fast_report.rows if r.metric.split(".")[0] in ("dev_eval", "neardup")]
    assert corpus_rows and all(r.status == "ok" for r in corpus_rows)


# -- floors.json ----------------------------------------------------------------------------------------
def test_floors_file_is_one_line_per_floor_and_below_what_was_measured() -> None:
    benches, floors, raw = gate.load_floors()
    text = gate.FLOORS.read_text(encoding="utf-8")
    assert gate.dump_floors(benches, floors, raw["about"]) == text  # the canonical layout
    lines = text.splitlines()
    for f in floors:
        assert sum(f'"metric": "{f.metric}"' in line for line in lines) == 1
        assert f.measured is not None and f.claimed is not None, f
        assert f.passes(f.measured), f  # a floor is set under (a ceiling over) the measured value
    assert set(benches) <= set(gate.RUNNERS)
    assert {b.tier for b in benches.values()} == set(gate.TIERS)
    assert all(b.data and all(len(h) == 64 for h in b.data.values()) for b in benches.values())


def test_the_full_tier_includes_the_fast_one() -> None:
    benches, _, _ = gate.load_floors()
    fast = {b.name for b in gate.selected(benches, "fast")}
    full = {b.name for b in gate.selected(benches, "full")}
    assert fast < full
    assert {b.name for b in gate.selected(benches, "full", ["langid"])} == {"langid"}
    with pytest.raises(ValueError, match="nope"):
        gate.selected(benches, "fast", ["nope"])


# -- the gate's logic, on stand-in benchmarks --------------------------------------------------------
def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _setup(tmp_path: Path, floors: list[dict[str, object]], data: str = "v1") -> tuple[Path, Path]:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "demo.txt").write_text(data, encoding="utf-8")
    spec = {
        "about": "test",
        "benchmarks": {
            "demo": {"tier": "fast", "script": "-", "data": {"../shared/benchmarks/demo.txt": _sha("v1")}},
            "gone": {"tier": "fast", "script": "-", "data": {"../shared/benchmarks/absent/x.txt": "0" * 64}},
        },
        "floors": floors,
    }
    path = tmp_path / "floors.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path, shared


DEMO = {"f1": 0.5, "recall": 0.9, "noise": 0.02}


@pytest.fixture()
def demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(gate.RUNNERS, "demo", lambda ctx: dict(DEMO))
    monkeypatch.setitem(gate.RUNNERS, "gone", lambda ctx: {"x": 1.0})


def test_a_value_below_its_floor_fails_naming_metric_floor_and_value(
    tmp_path: Path, demo: None, capsys: pytest.CaptureFixture[str]
) -> None:
    floors, shared = _setup(
        tmp_path,
        [
            {"metric": "demo.f1", "floor": 0.6, "measured": 0.62, "claimed": 0.62},
            {"metric": "demo.recall", "floor": 0.85, "measured": 0.9, "claimed": 0.9},
            {"metric": "demo.noise", "ceiling": 0.01, "measured": 0.005, "claimed": 0.005},
        ],
    )
    out = tmp_path / "gate.json"
    code = gate.main(["--tier", "fast", "--floors", str(floors), "--shared", str(shared), "--json", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "demo.f1: 0.5 < 0.6" in err
    assert "demo.noise: 0.02 > 0.01 (ceiling)" in err
    assert "demo.recall" not in err.replace("[gate]", "")
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["failures"] == ["demo.f1: 0.5 < 0.6", "demo.noise: 0.02 > 0.01 (ceiling)"]
    status = {m["metric"]: (m["status"], m["value"]) for m in result["metrics"]}
    assert status["demo.recall"] == ("ok", 0.9)
    assert "README claims 0.62" in next(m["note"] for m in result["metrics"] if m["metric"] == "demo.f1")


def test_absent_data_is_skipped_with_its_path_not_failed(
    tmp_path: Path, demo: None, capsys: pytest.CaptureFixture[str]
) -> None:
    floors, shared = _setup(
        tmp_path,
        [
            {"metric": "demo.f1", "floor": 0.4, "measured": 0.5, "claimed": 0.5},
            {"metric": "gone.x", "floor": 0.9, "measured": 1.0, "claimed": 1.0},
        ],
    )
    report = gate.run_gate("fast", floors_path=floors, shared=shared, log=io.StringIO())
    assert report.failures == []
    row = next(r for r in report.rows if r.metric == "gone.x")
    assert row.status == "skipped" and str(shared / "absent" / "x.txt") in row.note
    out = tmp_path / "gate.json"
    assert gate.main(["--floors", str(floors), "--shared", str(shared), "--json", str(out)]) == 0
    assert f"skipped: gone (1 figures): data absent: {shared / 'absent' / 'x.txt'}" in capsys.readouterr().err
    assert json.loads(out.read_text(encoding="utf-8"))["skipped"] == report.skipped


def test_changed_data_is_reported_and_fails_until_rehashed(tmp_path: Path, demo: None) -> None:
    floors, shared = _setup(
        tmp_path, [{"metric": "demo.f1", "floor": 0.4, "measured": 0.5, "claimed": 0.5}], data="v2"
    )
    report = gate.run_gate("fast", floors_path=floors, shared=shared, log=io.StringIO())
    row = next(r for r in report.rows if r.metric == "demo.f1")
    assert row.status == "DATA CHANGED" and row.value == 0.5  # still measured, not silently compared
    assert f"floors set on {_sha('v1')[:12]}, now {_sha('v2')[:12]}" in row.note
    assert "../shared/benchmarks/demo.txt" in report.failures[0]
    (below,) = gate.check(
        [gate.Floor("demo.f1", 0.6)],
        {"demo": gate.Bench("demo", "fast", "-", {})},
        {"demo": {"f1": 0.5}},
        changed={"demo": ["demo.txt: floors set on a, now b"]},
    )
    assert below.status == "DATA CHANGED" and below.note.endswith("; and demo.f1: 0.5 < 0.6")
    before = floors.read_text(encoding="utf-8")
    assert gate.rehash(floors, shared, ["demo", "gone"]) == [
        "demo: data hashes updated",
        "gone: data absent, hashes kept",
    ]
    assert _sha("v2") in floors.read_text(encoding="utf-8")
    assert '"floor": 0.4' in floors.read_text(encoding="utf-8") and _sha("v1") in before
    assert gate.run_gate("fast", floors_path=floors, shared=shared, log=io.StringIO()).failures == []


def test_a_metric_not_produced_or_a_broken_benchmark_fails(tmp_path: Path, demo: None) -> None:
    floors, shared = _setup(
        tmp_path,
        [
            {"metric": "demo.f1", "floor": 0.4, "measured": 0.5, "claimed": 0.5},
            {"metric": "demo.renamed", "floor": 0.4, "measured": 0.5, "claimed": 0.5},
        ],
    )
    report = gate.run_gate("fast", floors_path=floors, shared=shared, log=io.StringIO())
    assert report.failures == ["demo.renamed: missing (benchmark demo produced no renamed)"]

    def broken(ctx: gate.Context) -> gate.Values:
        raise RuntimeError("model file unreadable")

    report = gate.run_gate(
        "fast", floors_path=floors, shared=shared, runners={"demo": broken}, log=io.StringIO()
    )
    assert {r.status for r in report.rows} == {"ERROR"}
    assert "RuntimeError: model file unreadable" in report.failures[0]


def test_claims_compare_at_the_readme_precision() -> None:
    f = gate.Floor("x.f1", 0.8, claimed=0.88)
    benches = {"x": gate.Bench("x", "fast", "-", {})}
    (row,) = gate.check([f], benches, {"x": {"f1": 0.883}})
    assert row.status == "ok" and row.note == ""  # 0.883 is 0.88 as the README rounds it
    (row,) = gate.check([f], benches, {"x": {"f1": 0.874}})
    assert row.status == "ok" and row.note == "README claims 0.88"
    (row,) = gate.check([gate.Floor("x.f1", 0.9, claimed=1.0)], benches, {"x": {"f1": 0.993}})
    assert row.note == "README claims 1.0"  # the README prints 1.00
