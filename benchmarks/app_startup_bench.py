"""How soon the analyst app's first page is ready after start, against a bare Streamlit page.

Each run starts the server as a fresh process on a free port — ``defintel app`` for our app (or
``streamlit run app.py`` with ``--launcher streamlit``) and ``streamlit run`` on a two-widget page
for the baseline, with the same server flags — and opens it in a fresh headless Chromium context
(the Debian ``/usr/bin/chromium`` driven by Playwright; no browser download). Measured from the
moment the process is started:

* ``server_s``: until ``/_stcore/health`` answers 200 (polled every 25 ms);
* ``box_drawn_s``: until the first page's search box is drawn;
* ``first_page_s``: until the search box is drawn *and* the script run has finished (Streamlit's
  "Running…" status widget is gone); the page is opened as soon as the server is up;
* ``page_after_open_s``: the same end point, counted from opening the page;
* ``server_cpu_s``: CPU seconds the server process used by then (Linux ``/proc``): on a shared
  machine the wall times follow the load, this much less.

Our app runs on the bundled corpus ingested into ``--data-dir`` (default ``/tmp/app/data``; ingested
with ``defintel ingest corpus/`` when it holds no store yet) with the default ``e5-small`` embedder
(``make models`` first) or ``--embedder hashing``. The two targets alternate run by run, so load
changes hit both. Prints a table (median and max of ``--runs``) and writes
``benchmarks/results/app_startup_bench.json`` with the load average before and after and the nice
value it ran at (on a shared machine, ``nice -n -10`` lets it measure as on a quiet one).

    .venv/bin/python benchmarks/app_startup_bench.py [--runs 5] [--embedder e5-small|hashing]
        [--data-dir /tmp/app/data] [--launcher defintel|streamlit]

Needs ``pip install playwright`` (dev-only) and ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from browser import CHROMIUM, CHROMIUM_ARGS, free_port, missing_browser, skip, wait_health

from pipeline.cli import STREAMLIT_FLAGS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEARCH_BOX = "input[aria-label^='Search in any language']"
NOT_RUNNING = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
BARE_PAGE = '''"""Baseline: a bare two-widget Streamlit page with the same search box label as the app."""

import streamlit as st

st.sidebar.radio("Page", ["Search", "Other"])
st.text_input("Search in any language (Türkçe, Azərbaycanca, English)")
'''


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DEFINTEL_")}


def ensure_data(data_dir: Path, embedder: str) -> float | None:
    """Ingest the bundled corpus into ``data_dir`` unless it holds a store; seconds taken or None."""
    if (data_dir / "defintel.sqlite3").exists():
        return None
    env = _env()
    env["DEFINTEL_INDEX__EMBEDDER"] = embedder
    env["DEFINTEL_NLP__MODELS_DIR"] = str(ROOT / "models")
    env["DEFINTEL_INDEX__E5_MODEL_DIR"] = str(ROOT / "models" / "e5-small")
    started = time.monotonic()
    cmd = [str(BIN / "defintel"), "-q", "--data-dir", str(data_dir), "ingest", str(ROOT / "corpus")]
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    if done.returncode not in (0, 3):
        sys.exit(f"ingest into {data_dir} failed with exit code {done.returncode}")
    return time.monotonic() - started


def _index_embedder(data_dir: Path) -> str | None:
    current = data_dir / "index" / "CURRENT"
    if not current.exists():
        return None
    config = data_dir / "index" / current.read_text(encoding="utf-8").strip() / "config.json"
    return str(json.loads(config.read_text(encoding="utf-8")).get("embedder")) if config.exists() else None


def _command(target: str, launcher: str, port: int, cfg: Path, bare: Path) -> list[str]:
    if target == "bare":
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(bare),
            *STREAMLIT_FLAGS,
            "--server.port",
            str(port),
        ]
    if launcher == "defintel":
        return [str(BIN / "defintel"), "--config", str(cfg), "app", "--port", str(port)]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        *STREAMLIT_FLAGS,
        "--server.port",
        str(port),
    ]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; -1 elsewhere): unlike the wall
    times, this hardly depends on what else the machine is doing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(browser: Any, target: str, args: argparse.Namespace, cfg: Path, bare: Path) -> dict[str, float]:
    """Start the server, open the page in a fresh context, time it; the server is stopped after."""
    port = free_port()
    env = _env()
    env["DEFINTEL_CONFIG"] = str(cfg)
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    started = time.monotonic()
    proc = subprocess.Popen(
        _command(target, args.launcher, port, cfg, bare),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_health(port, proc, args.timeout)
        server_s = time.monotonic() - started
        opened = time.monotonic()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector(SEARCH_BOX, timeout=args.timeout * 1000)
        drawn_s = time.monotonic() - started
        page.wait_for_function(NOT_RUNNING, timeout=args.timeout * 1000)
        ready_s = time.monotonic() - started
        cpu_s = _cpu_s(proc.pid)  # `defintel app` execs streamlit: the same process
        page_s = time.monotonic() - opened
        errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
        if errors:
            page.screenshot(path=str(cfg.parent / f"error_{target}.png"))
            sys.exit(f"{target}: the first page shows an error; see {cfg.parent / f'error_{target}.png'}")
    finally:
        ctx.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {
        "server_s": round(server_s, 3),
        "box_drawn_s": round(drawn_s, 3),
        "first_page_s": round(ready_s, 3),
        "page_after_open_s": round(page_s, 3),
        "server_cpu_s": round(cpu_s, 3),
    }


def _stats(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh starts per target (default 5)")
    ap.add_argument("--embedder", default="e5-small", choices=("e5-small", "hashing"))
    ap.add_argument("--data-dir", help="data dir with the ingested corpus (default /tmp/app/data[-hashing])")
    ap.add_argument("--launcher", default="defintel", choices=("defintel", "streamlit"))
    ap.add_argument("--timeout", type=float, default=90, help="seconds per wait (default 90)")
    ap.add_argument("--no-json", action="store_true", help="print only (for quick checks)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    missing = missing_browser()
    if missing:
        return skip(missing)
    from playwright.sync_api import sync_playwright

    if args.embedder == "e5-small" and not (ROOT / "models" / "e5-small" / "build_info.json").exists():
        sys.exit("models/e5-small is not built: run `make models` first, or pass --embedder hashing")
    default_dir = "/tmp/app/data" + ("" if args.embedder == "e5-small" else "-hashing")
    data_dir = Path(args.data_dir or default_dir).resolve()
    ingest_s = ensure_data(data_dir, args.embedder)
    built_with = _index_embedder(data_dir)
    if built_with != args.embedder:
        sys.exit(
            f"{data_dir} was indexed with {built_with!r}, not {args.embedder!r}: pick another --data-dir"
        )

    tmp = Path(tempfile.mkdtemp(prefix="defintel-startup-"))
    cfg = tmp / "app.toml"
    cfg.write_text(
        f'data_dir = "{data_dir}"\n[index]\nembedder = "{args.embedder}"\n'
        f'e5_model_dir = "{ROOT / "models" / "e5-small"}"\n[nlp]\nmodels_dir = "{ROOT / "models"}"\n',
        encoding="utf-8",
    )
    bare = tmp / "bare_page.py"
    bare.write_text(BARE_PAGE, encoding="utf-8")
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {"app": [], "bare": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        # One unmeasured start of each: the first start after a while reads files from disk.
        for target in runs:
            one_run(browser, target, args, cfg, bare)
        for i in range(args.runs):
            order = ("app", "bare") if i % 2 == 0 else ("bare", "app")
            for target in order:
                runs[target].append(one_run(browser, target, args, cfg, bare))
        browser.close()
    load_after = os.getloadavg()
    shutil.rmtree(tmp, ignore_errors=True)

    keys = ("server_s", "box_drawn_s", "first_page_s", "page_after_open_s", "server_cpu_s")
    summary: dict[str, Any] = {
        "embedder": args.embedder,
        "launcher": "defintel app" if args.launcher == "defintel" else "streamlit run app.py",
        "data_dir": str(data_dir),
        "ingest_s": None if ingest_s is None else round(ingest_s, 1),
        "runs": args.runs,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "nice": os.nice(0),  # run under `nice -n -10` to measure as if the other jobs were not there
        "results": {t: {k: _stats(r, k) for k in keys} for t, r in runs.items()},
        "raw": runs,
    }
    app = summary["results"]["app"]["first_page_s"]
    bare_fp = summary["results"]["bare"]["first_page_s"]
    summary["ours_s"] = round(app["median"] - bare_fp["median"], 3)
    cpu = {t: summary["results"][t]["server_cpu_s"]["median"] for t in runs}
    summary["ours_cpu_s"] = round(cpu["app"] - cpu["bare"], 3)
    print(
        f"first page after process start · {args.runs} fresh starts each · embedder {args.embedder} · "
        f"{summary['launcher']} · load average {load_before[0]:.2f} → {load_after[0]:.2f}"
    )
    print(f"{'target':<8}" + "".join(f"{k + ' med/max':>26}" for k in keys))
    for target, stats in summary["results"].items():
        cells = "".join(f"{stats[k]['median']:>17.2f} / {stats[k]['max']:<6.2f}" for k in keys)
        print(f"{target:<8}{cells}")
    print(
        f"ours (app − bare, medians): first page {summary['ours_s']:.2f} s, "
        f"server CPU {summary['ours_cpu_s']:.2f} s"
    )
    if not args.no_json:
        out = ROOT / "benchmarks" / "results" / "app_startup_bench.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
