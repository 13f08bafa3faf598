"""Crawler throughput and incremental re-run cost on a local site built from the corpus.

Serves N (default 1,000) distinct article pages — corpus pages with the canonical link removed
and a variant token woven into every paragraph, so no two pages are exact or near duplicates — plus
a sitemap, on 127.0.0.1 (ETag / If-None-Match supported). Then, with politeness off (delay 0) and
the hashing embedder:

* fetch only: the crawler (threads, frontier-free) fetching every page;
* first ingest: sitemap → fetch → extract → NLP → store → index, pages/s;
* second ingest over the unchanged site: its time as a share of the first (goal ≤ 5 %): the
  sitemap answers 304 and known articles are not asked for again;
* a third ingest naming every page as a SOURCE: each is re-checked with a conditional GET (304).

Prints a table and writes benchmarks/results/crawl_bench.json.
Usage: .venv/bin/python benchmarks/crawl_bench.py [--pages 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import load_settings  # noqa: E402
from pipeline.crawl.crawler import Crawler  # noqa: E402
from pipeline.crawl.fetch import Fetcher  # noqa: E402
from pipeline.crawl.frontier import FrontierItem  # noqa: E402
from pipeline.jobs import ingest  # noqa: E402

CORPUS = ROOT / "corpus"
RESULTS = ROOT / "benchmarks" / "results" / "crawl_bench.json"
_CANONICAL = re.compile(r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>')
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)


def variant(html: str, i: int) -> str:
    """Page ``i``: a variant token after every fourth word of each paragraph (so every word
    5-shingle differs between variants) and a numbered title."""
    token = f"vx{i:04d}"

    def weave(m: re.Match[str]) -> str:
        words = m.group(1).split(" ")
        out = [w if (k + 1) % 4 else f"{w} {token}" for k, w in enumerate(words)]
        return "<p>" + " ".join(out) + "</p>"

    html = _PARAGRAPH.sub(weave, _CANONICAL.sub("", html))
    return re.sub(r"<title>(.*?)</title>", rf"<title>\1 ({i})</title>", html, count=1, flags=re.DOTALL)


def build_site(n: int) -> dict[str, bytes]:
    pages = sorted(CORPUS.glob("*.html"))
    if not pages:
        sys.exit(f"no corpus pages in {CORPUS}")
    texts = [p.read_text(encoding="utf-8") for p in pages]
    return {f"/news/{i}": variant(texts[i % len(texts)], i).encode() for i in range(n)}


class Site:
    def __init__(self, pages: dict[str, bytes]) -> None:
        site = self
        self.pages = pages
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests += 1
                body = site.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                ctype = "application/xml" if self.path.endswith(".xml") else "text/html; charset=utf-8"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        locs = "".join(f"<url><loc>{self.base}{p}</loc></url>" for p in pages)
        self.pages["/sitemap.xml"] = (
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        ).encode()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()

    site = Site(build_site(args.pages))
    urls = [site.base + p for p in site.pages if p.startswith("/news/")]
    with tempfile.TemporaryDirectory(prefix="crawl-bench-") as tmp:
        settings = load_settings(
            env={},
            overrides={
                "data_dir": tmp,
                "index.embedder": "hashing",
                "nlp.models_dir": str(ROOT / "models"),
                "crawl.delay_s": 0.0,
            },
        )
        policy = dataclasses.replace(settings.crawl, delay_s=0.0)

        fetcher = Fetcher(policy, allow_private=True)
        crawler = Crawler(fetcher, policy.max_hosts)
        started = time.monotonic()
        for url in urls:
            crawler.submit(FrontierItem(url, "bench", "page"))
        fetched = sum(1 for o in crawler.outcomes() if o.error is None)
        fetch_s = time.monotonic() - started
        crawler.close()
        fetcher.close()

        sitemap = site.base + "/sitemap.xml"
        first = ingest(settings, [sitemap], allow_private=True, policy=policy)
        requests_before = site.requests
        second = ingest(settings, [sitemap], allow_private=True, policy=policy)
        second_requests = site.requests - requests_before
        # Every page named as a SOURCE is re-checked: 1,000 conditional GETs answered 304.
        third = ingest(settings, urls, allow_private=True, policy=policy)
    site.close()

    load = os.getloadavg()
    result = {
        "pages": args.pages,
        "fetch_only": {
            "pages": fetched,
            "seconds": round(fetch_s, 2),
            "pages_per_s": round(fetched / fetch_s, 1),
        },
        "first_run": {
            "seconds": round(first.seconds, 2),
            "pages_per_s": round(first.new / first.seconds, 2),
            "new": first.new,
            "duplicates": first.duplicates,
            "failed": first.failed,
        },
        "second_run": {
            "seconds": round(second.seconds, 2),
            "share_of_first": round(second.seconds / first.seconds, 4),
            "new": second.new,
            "not_modified": second.not_modified,
            "http_requests": second_requests,
        },
        "recheck_all_run": {
            "seconds": round(third.seconds, 2),
            "share_of_first": round(third.seconds / first.seconds, 4),
            "not_modified": third.not_modified,
            "new": third.new,
        },
        "settings": {"delay_s": 0.0, "embedder": "hashing", "max_hosts": policy.max_hosts, "host": "one"},
        "load_average": [round(x, 2) for x in load],
        "cpus": os.cpu_count(),
    }
    rows = [
        (
            "fetch only (crawler, no NLP)",
            f"{fetched} pages in {fetch_s:.2f} s",
            f"{fetched / fetch_s:.1f} pages/s",
        ),
        (
            "first ingest (fetch+extract+NLP+store+index)",
            f"{first.new} new in {first.seconds:.1f} s",
            f"{first.new / first.seconds:.2f} pages/s",
        ),
        (
            "second ingest, site unchanged",
            f"{second.seconds:.2f} s, {second_requests} HTTP request(s)",
            f"{100 * second.seconds / first.seconds:.2f} % of first (goal ≤ 5 %)",
        ),
        (
            "every page re-checked (conditional GET)",
            f"{third.not_modified} × 304 in {third.seconds:.2f} s",
            f"{100 * third.seconds / first.seconds:.2f} % of first",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"crawl_bench: {args.pages} pages on 127.0.0.1, politeness off, hashing embedder")
    for name, what, rate in rows:
        print(f"  {name.ljust(width)}  {what:<36}  {rate}")
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    if first.failed or first.duplicates:
        print(f"  note: first run failed={first.failed} duplicates={first.duplicates}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
