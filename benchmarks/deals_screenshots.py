"""Screenshots of the deal and story views: the Agreements page (one row per deal, a deal's sources
opened) and a search whose results fold a story into one card (its "+N reports" opened).

Same harness as ``app_screenshots.py`` (fresh temp data dir, ``streamlit run app.py``, the Debian
Chromium through Playwright; needs ``pip install playwright``). Writes ``docs/app_deals.png`` and
``docs/app_story_card.png``.

    .venv/bin/python benchmarks/deals_screenshots.py [--out docs] [--embedder hashing]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from app_screenshots import RATES, ROOT, _ingest, _settled
from browser import CHROMIUM, CHROMIUM_ARGS, free_port, missing_browser, skip, wait_health

QUERY = "Baykar TB2 Bakü lisanslı üretim"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--embedder", default="hashing", choices=("hashing", "e5-small"))
    args = ap.parse_args()
    missing = missing_browser()
    if missing:
        return skip(missing)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    tmp = Path(tempfile.mkdtemp(prefix="defintel-deal-shots-"))
    data_dir = tmp / "data"
    _ingest(data_dir, args.embedder)
    cfg = tmp / "app.toml"
    cfg.write_text(
        f'data_dir = "{data_dir}"\n[index]\nembedder = "{args.embedder}"\n'
        f'e5_model_dir = "{ROOT / "models" / "e5-small"}"\n[nlp]\nmodels_dir = "{ROOT / "models"}"\n' + RATES,
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINTEL_")}
    env["DEFINTEL_CONFIG"] = str(cfg)
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
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_health(port, proc, timeout=90, poll_s=0.3)
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp / "profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1440, "height": 1400},
            )
            page = ctx.new_page()
            page.goto(f"{base}?page=agreements")
            _settled(page, "[data-testid='stDataFrame']")
            page.locator("[data-testid='stExpander'] summary", has_text="Baykar").first.click()
            page.wait_for_timeout(800)
            page.locator(
                "[data-testid='stExpander'] summary", has_text="Baykar"
            ).first.scroll_into_view_if_needed()
            page.screenshot(path=str(out / "app_deals.png"))
            page.goto(base)
            box = page.locator("input[aria-label^='Search in any language']")
            _settled(page, "input[aria-label^='Search in any language']")
            box.fill(QUERY)
            box.press("Enter")
            _settled(page, ".di-card")
            page.locator(".di-story summary").first.click()
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "app_story_card.png"))
            ctx.close()
        print(f"wrote {out / 'app_deals.png'} and {out / 'app_story_card.png'}")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
