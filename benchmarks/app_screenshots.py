"""Browser check of the analyst app, as a user would do it: one screenshot per page into docs/.

Ingests the bundled corpus into a fresh temporary data dir (``hashing`` embedder by default, so the
check takes seconds; ``--embedder e5-small`` for the real model), starts ``streamlit run app.py``
on it, drives the Debian Chromium (``/usr/bin/chromium``, headless) with Playwright, runs a
cross-lingual search (an Azerbaijani query that finds Turkish and English pages too), follows the
first result to its document view and the first entity to its entity page, then opens the
Agreements, Timeline, Graph and Ingestion status pages, a deal's sources, a story card of a search,
and the Watchlists page (the corpus is ingested in two nights with a watchlist made between them).

Prints a table and writes ``benchmarks/results/app_screenshots.json`` (page, seconds until the page
was drawn, screenshot path, what was checked on it). Needs ``pip install playwright`` (the Python
package only: no browser is downloaded, the system Chromium is used).

    .venv/bin/python benchmarks/app_screenshots.py [--data-dir DIR] [--out docs] [--embedder hashing]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from browser import CHROMIUM, CHROMIUM_ARGS, free_port, missing_browser, skip, wait_health

ROOT = Path(__file__).resolve().parent.parent
QUERY = "Azərsilah patron istehsalı"  # Azerbaijani: "Azersilah cartridge production"
STORY_QUERY = "Baykar TB2 Bakü lisanslı üretim"  # Turkish; its reports fold into one story card
WATCH_ENTITIES = ["Azərsilah", "Baykar"]
WATCH_QUERIES = ["technology transfer"]
WATCH_TYPES = ["contract"]
# Sample rates for the screenshot's USD column (USD per unit; not live rates).
RATES = "[app.usd_rates]\nEUR = 1.08\nAZN = 0.588\nTRY = 0.029\n"


def _ingest(data_dir: Path, embedder: str) -> float:
    """The bundled corpus in two nights, a watchlist made between them (so the Watchlists page has
    something new to show): the pages numbered below 10 first, the rest second."""
    from pipeline.backend import open_store
    from pipeline.config import load_settings
    from pipeline.jobs import ingest
    from pipeline.watch import save_watchlist

    settings = load_settings(
        env={},
        overrides={
            "data_dir": str(data_dir),
            "index.embedder": embedder,
            "nlp.models_dir": str(ROOT / "models"),
            "index.e5_model_dir": str(ROOT / "models" / "e5-small"),
        },
    )
    pages = sorted((ROOT / "corpus").glob("*.html"))
    nights = [[p for p in pages if int(p.name[3:5]) < 10], [p for p in pages if int(p.name[3:5]) >= 10]]
    started = time.monotonic()
    for night, files in enumerate(nights):
        report = ingest(settings, [str(p) for p in files])
        if report.failed:
            sys.exit(f"ingest failed for {report.failed} pages: {report.failures}")
        if night == 0:
            store = open_store(settings, readonly=False)
            try:
                save_watchlist(store, settings, "caspian", WATCH_ENTITIES, WATCH_QUERIES, WATCH_TYPES)
            finally:
                store.close()
    return time.monotonic() - started


def _settled(page: Any, selector: str, timeout_ms: int = 60_000) -> None:
    """Wait for ``selector`` and for Streamlit to finish the script run (no 'running' widget)."""
    page.wait_for_selector(selector, timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms
    )
    page.wait_for_timeout(800)  # charts and data grids draw after the script run ends


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", help="an already ingested data dir (default: ingest into a temp dir)")
    ap.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go (default: docs/)")
    ap.add_argument("--embedder", default="hashing", choices=("hashing", "e5-small"))
    args = ap.parse_args()
    missing = missing_browser()
    if missing:
        return skip(missing)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="defintel-shots-"))
    data_dir = Path(args.data_dir) if args.data_dir else tmp / "data"
    ingest_s = None if args.data_dir else _ingest(data_dir, args.embedder)
    cfg = tmp / "app.toml"
    cfg.write_text(
        f'data_dir = "{data_dir}"\n[index]\nembedder = "{args.embedder}"\n'
        f'e5_model_dir = "{ROOT / "models" / "e5-small"}"\n[nlp]\nmodels_dir = "{ROOT / "models"}"\n' + RATES,
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINTEL_")}
    env["DEFINTEL_CONFIG"] = str(cfg)
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--browser.gatherUsageStats=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    results: list[dict[str, Any]] = []
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_health(port, proc, timeout=90, poll_s=0.3)
        server_s = time.monotonic() - started
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp / "profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1440, "height": 1000},
            )
            page = ctx.new_page()

            def shot(name: str, selector: str, checked: str, t0: float) -> None:
                try:
                    _settled(page, selector)
                except Exception:
                    failed = tmp / f"failed_{name}.png"
                    page.screenshot(path=str(failed))
                    print(f"page {name}: {selector!r} never appeared; see {failed}", file=sys.stderr)
                    raise
                seconds = time.monotonic() - t0
                path = out / f"app_{name}.png"
                page.screenshot(path=str(path))  # Streamlit scrolls inside the page: the viewport is the view
                shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
                results.append(
                    {"page": name, "seconds": round(seconds, 2), "png": str(shown), "checked": checked}
                )

            # First page: from opening the URL (fresh session, empty caches) to a drawn search box.
            t0 = time.monotonic()
            page.goto(base)
            _settled(page, "input[aria-label^='Search in any language']")
            first_page_s = time.monotonic() - t0
            page.screenshot(path=str(tmp / "first.png"))
            t0 = time.monotonic()
            box = page.locator("input[aria-label^='Search in any language']")
            box.fill(QUERY)
            box.press("Enter")
            try:
                page.wait_for_selector(".di-card", timeout=30_000)
            except PlaywrightTimeout:  # the Enter can land before the widget is live: commit by blur
                box.fill(QUERY)
                box.press("Tab")
            shot("search", ".di-card", f"cross-lingual query {QUERY!r} → result cards", t0)
            langs = sorted(set(page.locator(".di-card .di-badge").all_inner_texts()))
            results[-1]["result_languages"] = langs

            t0 = time.monotonic()
            page.locator(".di-card a[href*='page=document']").first.click()
            shot("document", ".di-text", "first result → document view with entity highlighting", t0)

            t0 = time.monotonic()
            page.locator(".di-text a.di-ent").first.click()
            shot("entity", "h3", "first highlighted entity → entity page", t0)

            for name, selector, checked in (
                ("agreements", "[data-testid='stDataFrame']", "sortable table with USD column"),
                ("timeline", ".vega-embed", "agreement events per pair over time"),
                ("graph", ".vega-embed", "entity network, all types"),
                ("status", "[data-testid='stDataFrame']", "runs table and failures"),
            ):
                t0 = time.monotonic()
                page.goto(f"{base}?page={name}")
                shot(name, selector, checked, t0)

            # Deals: one row per deal; a deal's sources opened.
            t0 = time.monotonic()
            page.set_viewport_size({"width": 1440, "height": 1400})
            page.goto(f"{base}?page=agreements")
            _settled(page, "[data-testid='stDataFrame']")
            deal = page.locator("[data-testid='stExpander'] summary", has_text="Baykar").first
            deal.click()
            page.wait_for_timeout(800)
            deal.scroll_into_view_if_needed()
            shot("deals", "[data-testid='stExpander']", "a deal's reports opened (Baykar)", t0)
            # A search whose results fold a story's reports into one card.
            t0 = time.monotonic()
            page.goto(base)
            _settled(page, "input[aria-label^='Search in any language']")
            box = page.locator("input[aria-label^='Search in any language']")
            box.fill(STORY_QUERY)
            box.press("Enter")
            _settled(page, ".di-card")
            page.locator(".di-story summary").first.click()
            page.wait_for_timeout(500)
            shot("story_card", ".di-story", f"{STORY_QUERY!r} → a story card opened", t0)
            # The watchlist made between the two nights: what is new since the last visit (a data dir
            # given with --data-dir may have no list: the page then invites to create one).
            t0 = time.monotonic()
            page.goto(f"{base}?page=watch")
            shot(
                "watchlists",
                "text=/New since your last visit|No watchlist yet/",
                "watchlist caspian: new documents and deals since last visit",
                t0,
            )
            ctx.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)  # kept only when a page failed (its screenshot is there)
    load = os.getloadavg()
    summary = {
        "embedder": args.embedder,
        "ingest_s": None if ingest_s is None else round(ingest_s, 1),
        "server_ready_s": round(server_s, 2),
        "first_page_s": round(first_page_s, 2),
        "load_avg_1m": round(load[0], 2),
        "pages": results,
    }
    print(
        f"embedder {args.embedder} · ingest {summary['ingest_s']} s · server up {server_s:.2f} s after "
        f"`streamlit run` · first page drawn {first_page_s:.2f} s after opening it "
        f"(incl. 0.8 s settle wait) · load average {load[0]:.2f}"
    )
    print(f"{'page':<12}{'seconds':>8}  {'screenshot':<28} checked")
    for r in results:
        print(f"{r['page']:<12}{r['seconds']:>8.2f}  {Path(r['png']).name:<28} {r['checked']}")
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "app_screenshots.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
