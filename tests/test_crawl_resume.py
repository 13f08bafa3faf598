"""The nightly-job guarantees as the CLI delivers them: kill -9 then resume, the run lock, the
stored run report and the log file (subprocesses against a local site)."""

from __future__ import annotations

import fcntl
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.backend.sqlite import Store
from pipeline.index.embedders import make_embedder
from pipeline.index.vectors import VectorIndex
from tests.conftest import CORPUS, ROOT

PAGES = 16
BATCH = 4  # nlp.batch_size: documents stored per transaction batch


def serve_pages(server: HTTPServer, n: int, pause_s: float) -> str:
    """``n`` distinct article pages (corpus pages, canonical link removed, numbered) and a sitemap."""
    names = sorted(p.stem for p in CORPUS.glob("*.html"))
    no_canonical = re.compile(r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>')
    htmls = [no_canonical.sub("", (CORPUS / f"{x}.html").read_text(encoding="utf-8")) for x in names]

    def handler(request: Request) -> Response:
        i = int(request.path.rsplit("/", 1)[1])
        time.sleep(pause_s)
        return Response(htmls[i % len(htmls)], content_type="text/html; charset=utf-8")

    server.expect_request("/robots.txt").respond_with_data("", status=404)
    server.expect_request(re.compile(r"/news/\d+")).respond_with_handler(handler)
    locs = "".join(f"<url><loc>{server.url_for(f'/news/{i}')}</loc></url>" for i in range(n))
    server.expect_request("/sitemap.xml").respond_with_data(
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>',
        content_type="application/xml",
    )
    return server.url_for("/sitemap.xml")


def count(data: Path, sql: str) -> int:
    try:
        db = sqlite3.connect(f"file:{data / 'defintel.sqlite3'}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return 0
    try:
        return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        db.close()


def ingest_cmd(url: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "ingest", url, "--allow-private-hosts", "--format", "json"]


def test_kill_9_mid_run_then_a_clean_resume(site: HTTPServer, cli_env: dict[str, str]) -> None:
    url = serve_pages(site, PAGES, pause_s=0.2)
    env = {**cli_env, "DEFINTEL_CRAWL__DELAY_S": "0", "DEFINTEL_NLP__BATCH_SIZE": str(BATCH)}
    data = Path(env["DEFINTEL_DATA_DIR"])
    proc = subprocess.Popen(
        ingest_cmd(url), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while count(data, "SELECT COUNT(*) FROM documents") < BATCH and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stored = count(data, "SELECT COUNT(*) FROM documents")
    assert BATCH <= stored < PAGES

    out = subprocess.run(ingest_cmd(url), env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["new"] == PAGES - stored and report["failed"] == 0

    store = Store(data)
    try:
        docs = store.documents()
        assert len(docs) == PAGES == len({d["url"] for d in docs})  # nothing lost, nothing twice
        counts = store.frontier_counts()
        assert counts == {"done": PAGES + 1}, counts  # the pages and the sitemap
        chunk_ids = {c["vec_id"] for c in store.chunks()}
        runs = store.runs()
    finally:
        store.close()
    dim = make_embedder("hashing", "", "auto").dim
    index = VectorIndex.load(data / "index", "hashing", dim)
    assert index.ids() == chunk_ids  # the index was repaired to match the store exactly
    assert [r["status"] for r in runs] == ["finished", "interrupted"]
    assert runs[0]["report"]["new"] == report["new"]

    log_text = (data / "logs" / "ingest.log").read_text(encoding="utf-8")
    assert "run 2 finished" in log_text and "index reconciled" in log_text


def test_a_second_run_on_the_same_data_dir_is_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = Path(cli_env["DEFINTEL_DATA_DIR"])
    data.mkdir(parents=True)
    with (data / "ingest.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        out = subprocess.run(
            [sys.executable, "-m", "pipeline", "ingest", str(CORPUS / "en-01-mke-baku-cartridge-line.html")],
            env=cli_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "another ingest is running" in out.stderr
    assert "4242" in out.stderr
    assert not (data / "defintel.sqlite3").exists()
    assert (data / "ingest.lock").exists()
