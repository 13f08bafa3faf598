"""End-to-end ingest throughput, per-stage time, peak memory and unchanged re-run cost (issue #13).

Builds a synthetic corpus of N distinct tr/az/en article pages from the authored pages in
``corpus/`` at run time (nothing generated is committed): each page keeps the HTML template of an
authored page of its language (navigation, cookie bar, related links: the boilerplate extraction must
remove) and gets a new body of ``--paragraphs`` paragraphs drawn at random from every authored
article body of that language, a numbered headline, its own canonical URL and a publication date.
With ~100 source paragraphs per language and 14 drawn per page (~600 words), two pages share about
two paragraphs, so they are distinct documents, not near-duplicates.

Then, with the default settings (e5-small embedder, its fastest runtime) and ``defintel ingest`` run
as a fresh process (how the nightly job runs it):

* ``dir``: ingest the folder of pages; docs/s, per-stage seconds (from the run report's ``stages``),
  peak RSS of the whole process tree (sampled every 0.2 s with psutil, workers included) and RSS
  at each quarter of the run (flat = not growing with corpus size);
* ``rerun``: the same command again over the unchanged folder, its time as a share of the first;
* ``http``: the same pages served on 127.0.0.1 with a sitemap, ingested through the crawler with
  politeness off (delay 0) into a fresh data dir.

Prints a table and writes benchmarks/results/ingest_bench.json.
Usage: .venv/bin/python benchmarks/ingest_bench.py [--pages 2000] [--only dir,rerun,http]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.extract import decode_html, extract  # noqa: E402
from pipeline.records import Page  # noqa: E402

CORPUS = ROOT / "corpus"
RESULTS = ROOT / "benchmarks" / "results" / "ingest_bench.json"
DEFINTEL = ROOT / ".venv" / "bin" / "defintel"
_P = re.compile(r"<p>(.*?)</p>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _plain(fragment: str) -> str:
    return " ".join(_TAG.sub("", fragment).split())


class Template:
    """An authored page split around its article body: the first body <p> is the insertion point."""

    def __init__(self, path: Path) -> None:
        html = path.read_text(encoding="utf-8")
        doc = extract(Page(url=path.resolve().as_uri(), html=html, source=str(path)))
        self.language = doc.language
        self.title = doc.title
        body = doc.text[len(doc.title) :]
        spans = [m for m in _P.finditer(html) if len(_plain(m.group(1))) > 60 and _plain(m.group(1)) in body]
        if not spans:
            raise ValueError(f"{path}: no article paragraphs found")
        self.paragraphs = [m.group(1) for m in spans]
        self.head = html[: spans[0].start()]
        self.tail = html[spans[-1].end() :]
        # Whatever lies between the first and the last body paragraph (figures, quotes) is dropped.

    def page(self, title: str, url: str, published: date, paragraphs: list[str]) -> str:
        head = self.head.replace(self.title, title)
        head = re.sub(r'(<link rel="canonical" href=")[^"]*', rf"\g<1>{url}", head)
        head = re.sub(r'(<meta property="og:url" content=")[^"]*', rf"\g<1>{url}", head)
        iso = published.isoformat()
        head = re.sub(r"\d{4}-\d{2}-\d{2}T", f"{iso}T", head)
        head = re.sub(r'datetime="\d{4}-\d{2}-\d{2}"', f'datetime="{iso}"', head)
        body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
        return head + body + self.tail


def build_corpus(n: int, out: Path, paragraphs: int = 14, seed: int = 13) -> list[Path]:
    """Write ``n`` distinct pages to ``out`` (about a third per language); return their paths."""
    rng = random.Random(seed)
    templates: dict[str, list[Template]] = {}
    for path in sorted(CORPUS.glob("*.html")):
        t = Template(path)
        templates.setdefault(t.language, []).append(t)
    pools = {lang: [p for t in ts for p in t.paragraphs] for lang, ts in templates.items()}
    langs = sorted(templates)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    start = date(2023, 1, 1)
    for i in range(n):
        lang = langs[i % len(langs)]
        t = rng.choice(templates[lang])
        body = rng.sample(pools[lang], min(paragraphs, len(pools[lang])))
        url = f"https://bench.example/{lang}/{i:05d}"
        title = f"{t.title} ({i})"
        html = t.page(title, url, start + timedelta(days=rng.randrange(1000)), body)
        path = out / f"{lang}-{i:05d}.html"
        path.write_text(html, encoding="utf-8")
        paths.append(path)
    return paths


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_ingest(data_dir: Path, sources: list[str], extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """``defintel ingest SOURCES --format json`` as a fresh process; wall time, report, RSS samples."""
    env = {**os.environ, **(extra_env or {})}
    cmd = [str(DEFINTEL), "--data-dir", str(data_dir), "-q", "ingest", *sources, "--format", "json"]
    cmd += ["--allow-private-hosts"] if any(s.startswith("http") for s in sources) else []
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            samples.append((time.monotonic() - started, _tree_rss(ps)))
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.monotonic() - started
    if proc.returncode not in (0, 3):
        raise SystemExit(f"ingest failed (exit {proc.returncode}): {err.strip()[-2000:]}")
    report = json.loads(out)
    peak = max((r for _, r in samples), default=0)
    quarters = []
    for q in (0.25, 0.5, 0.75, 1.0):
        window = [r for t, r in samples if t <= q * wall]
        quarters.append(round(max(window, default=0) / 2**20))
    return {
        "wall_s": round(wall, 2),
        "report": report,
        "peak_rss_mib": round(peak / 2**20),
        "peak_rss_mib_by_quarter": quarters,
    }


class _Site:
    """The generated pages on 127.0.0.1 with a sitemap; ETag answered with 304."""

    def __init__(self, paths: list[Path]) -> None:
        self.pages = {f"/news/{p.stem}": p.read_bytes() for p in paths}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/sitemap.xml":
                    host = self.headers.get("Host")
                    locs = "".join(f"<url><loc>http://{host}{u}</loc></url>" for u in site.pages)
                    body = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
                    self._send(body.encode(), "application/xml")
                    return
                data = site.pages.get(path)
                if data is None:
                    self.send_error(404)
                    return
                self._send(data, "text/html; charset=utf-8")

            def _send(self, body: bytes, ctype: str) -> None:
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def _row(name: str, run: dict[str, Any]) -> str:
    r = run["report"]
    stages = " ".join(f"{k}={v:.0f}s" for k, v in r.get("stages", {}).items())
    return (
        f"{name:<8} {run['wall_s']:>8.1f} {run['docs_per_s']:>7.2f} {r['new']:>6} {r['failed']:>5} "
        f"{run['peak_rss_mib']:>8} {run['peak_rss_mib_by_quarter']!s:<24} {stages}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--paragraphs", type=int, default=14, help="paragraphs per generated page")
    ap.add_argument("--only", default="dir,rerun,http", help="comma list of: dir, rerun, http")
    ap.add_argument("--embedder", default=None, help="override [index] embedder (default: the config's)")
    ap.add_argument("--workers", type=int, default=None, help="override [ingest] workers")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    only = set(args.only.split(","))
    env: dict[str, str] = {"DEFINTEL_CRAWL__DELAY_S": "0"}
    if args.embedder:
        env["DEFINTEL_INDEX__EMBEDDER"] = args.embedder
    if args.workers is not None:
        env["DEFINTEL_INGEST__WORKERS"] = str(args.workers)
    results: dict[str, Any] = {
        "pages": args.pages,
        "cpu_count": os.cpu_count(),
        "load_before": os.getloadavg(),
        "env": env,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="defintel-ingest-bench-") as tmp:
        pages_dir = Path(tmp) / "pages"
        t0 = time.monotonic()
        paths = build_corpus(args.pages, pages_dir, args.paragraphs)
        words = sum(
            len(_plain(" ".join(_P.findall(decode_html(p.read_bytes())))).split()) for p in paths[:200]
        ) / min(200, len(paths))
        results["corpus"] = {
            "build_s": round(time.monotonic() - t0, 1),
            "paragraph_words_per_page": round(words),
            "bytes": sum(p.stat().st_size for p in paths),
        }
        print(f"corpus: {len(paths)} pages, ~{words:.0f} words of <p> text per page, in {pages_dir}")
        runs = results["runs"]
        if "dir" in only or "rerun" in only:
            data = Path(tmp) / "data-dir"
            runs["dir"] = run_ingest(data, [str(pages_dir)], env)
            if "rerun" in only:
                runs["rerun"] = run_ingest(data, [str(pages_dir)], env)
                runs["rerun"]["share_of_first"] = round(runs["rerun"]["wall_s"] / runs["dir"]["wall_s"], 4)
        if "http" in only:
            with _Site(paths) as base:
                runs["http"] = run_ingest(Path(tmp) / "data-http", [f"{base}/sitemap.xml"], env)
        for run in runs.values():
            run["docs_per_s"] = round(run["report"]["new"] / run["wall_s"], 2) if run["wall_s"] else 0.0
    results["load_after"] = os.getloadavg()
    print(
        f"\n{'run':<8} {'wall s':>8} {'docs/s':>7} {'new':>6} {'fail':>5} {'peakMiB':>8} {'RSS by quarter MiB':<24} stages"
    )
    for name, run in results["runs"].items():
        print(_row(name, run))
    if "rerun" in results["runs"]:
        print(f"unchanged re-run: {results['runs']['rerun']['share_of_first']:.1%} of the first run")
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
