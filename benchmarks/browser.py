"""What the browser-driven benchmarks share: headless Chromium flags and the Streamlit server's start.

Used by ``app_screenshots.py`` and ``app_startup_bench.py`` (run as scripts from this folder).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing_browser() -> str | None:
    """Why a browser check cannot run here (no playwright package, no Chromium), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package: .venv/bin/pip install playwright (no browser download)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def skip(why: str) -> int:
    """A browser check is a dev-only tool: without its browser it is skipped, not failed."""
    print(f"skipped: {why}", file=sys.stderr)
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_health(port: int, proc: subprocess.Popen[bytes], timeout: float, poll_s: float = 0.025) -> None:
    """Return once Streamlit's health endpoint answers 200; exit if the server dies or is too slow."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(poll_s)
    sys.exit("the server did not become healthy in time")
