"""The crawler against a local site (pytest-httpserver on 127.0.0.1): politeness, retries,
redirects, conditional GET, limits, charsets, SSRF guard, near-duplicates, the frontier."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.backend.sqlite import Store
from pipeline.config import CrawlSettings, Settings
from pipeline.jobs import RunReport, ingest
from tests.conftest import CORPUS, make_settings

# trafilatura probes urllib3's optional SOCKS support at import; its warning is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.DependencyWarning")

GOLD_TR = "tr-01-mka-azersilah-fisek-hatti"


def corpus_page(name: str) -> str:
    return (CORPUS / f"{name}.html").read_text(encoding="utf-8")


def without_canonical(html: str) -> str:
    """The page with no canonical link, so its document URL is the URL it was fetched from."""
    html = re.sub(r'<link rel="canonical"[^>]*>', "", html)
    return re.sub(r'<meta property="og:url"[^>]*>', "", html)


def no_robots(server: HTTPServer) -> None:
    server.expect_request("/robots.txt").respond_with_data("", status=404)


def sitemap(server: HTTPServer, paths: list[str], name: str = "/sitemap.xml") -> str:
    locs = "".join(f"<url><loc>{server.url_for(p)}</loc></url>" for p in paths)
    server.expect_request(name).respond_with_data(
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>',
        content_type="application/xml",
    )
    return server.url_for(name)


def first_then(first: Response, then: str):  # type: ignore[no-untyped-def]
    """A handler answering ``first`` once, then the HTML ``then``."""
    calls = {"n": 0}

    def handler(request: Request) -> Response:
        calls["n"] += 1
        return first if calls["n"] == 1 else Response(then, content_type="text/html")

    return handler


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"crawl.delay_s": 0.0, "crawl.timeout_s": 5.0}
    values.update(overrides)
    return make_settings(tmp_path / "data", **values)


def fast(settings: Settings, **changes: object) -> CrawlSettings:
    base = dataclasses.replace(settings.crawl, retry_backoff_s=0.05, retry_backoff_max_s=0.2)
    return dataclasses.replace(base, **changes)


def run(settings: Settings, *sources: str, **kw: object) -> RunReport:
    kw.setdefault("allow_private", True)
    kw.setdefault("policy", fast(settings))
    return ingest(settings, list(sources), **kw)  # type: ignore[arg-type]


def frontier(settings: Settings, url: str) -> dict[str, object]:
    store = Store(settings.data_path)
    try:
        row = store.frontier_row(url)
        assert row is not None, url
        return row
    finally:
        store.close()


def requested(server: HTTPServer, path: str) -> list[Request]:
    return [req for req, _ in server.log if req.path == path]


# -- politeness ------------------------------------------------------------------------------------
def test_robots_disallow_and_crawl_delay_are_honoured(site: HTTPServer, tmp_path: Path) -> None:
    site.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.6\n", content_type="text/plain"
    )
    times: dict[str, float] = {}

    def page(name: str):  # type: ignore[no-untyped-def]
        def handler(request: Request) -> Response:
            times[request.path] = time.monotonic()
            return Response(corpus_page(name), content_type="text/html; charset=utf-8")

        return handler

    site.expect_request("/a").respond_with_handler(page("en-01-mke-baku-cartridge-line"))
    site.expect_request("/b").respond_with_handler(page("en-02-aselsan-ganja-optronics-jv"))
    site.expect_request("/private/c").respond_with_handler(page("en-03-otokar-licence-armored-vehicles"))
    settings = settings_for(tmp_path)
    report = run(settings, sitemap(site, ["/a", "/b", "/private/c"]))
    assert (report.new, report.skipped_robots, report.failed) == (2, 1, 0), report.failures
    assert not requested(site, "/private/c")
    assert abs(times["/b"] - times["/a"]) >= 0.6
    assert len(requested(site, "/robots.txt")) == 1  # one robots.txt fetch per host and run
    assert frontier(settings, site.url_for("/private/c"))["status"] == "blocked"
    ua = requested(site, "/a")[0].headers["User-Agent"]
    assert ua.startswith("defintel/")


def test_default_politeness_is_at_least_one_second_per_host() -> None:
    from pipeline.config import load_settings

    assert load_settings(env={}).crawl.delay_s >= 1.0


def test_one_request_in_flight_per_host_and_hosts_in_parallel(tmp_path: Path) -> None:
    servers = [HTTPServer(host="127.0.0.1", threaded=True) for _ in range(2)]
    active: dict[int, int] = {}
    peak: dict[int, int] = {}
    lock = threading.Lock()

    def slow(port: int):  # type: ignore[no-untyped-def]
        def handler(request: Request) -> Response:
            with lock:
                active[port] = active.get(port, 0) + 1
                peak[port] = max(peak.get(port, 0), active[port])
            time.sleep(0.3)
            with lock:
                active[port] -= 1
            return Response("<html><body>tiny</body></html>", content_type="text/html")

        return handler

    try:
        for s in servers:
            s.start()
            no_robots(s)
            s.expect_request(re.compile(r"/p\d")).respond_with_handler(slow(s.port))
        from pipeline.crawl.crawler import Crawler
        from pipeline.crawl.fetch import Fetcher
        from pipeline.crawl.frontier import FrontierItem

        settings = settings_for(tmp_path)
        fetcher = Fetcher(fast(settings), allow_private=True)
        crawler = Crawler(fetcher, max_hosts=4)
        started = time.monotonic()
        for s in servers:
            for i in range(3):
                crawler.submit(FrontierItem(s.url_for(f"/p{i}"), "test", "page"))
        outcomes = list(crawler.outcomes())
        elapsed = time.monotonic() - started
        crawler.close()
        fetcher.close()
    finally:
        for s in servers:
            s.stop()
    assert len(outcomes) == 6 and all(o.error is None for o in outcomes)
    assert set(peak.values()) == {1}  # never two requests at once to one host
    assert elapsed < 6 * 0.3  # the two hosts were crawled concurrently


# -- retries, timeouts, Retry-After ---------------------------------------------------------------------
def test_500_then_200_is_retried_within_the_run(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    site.expect_request("/flaky").respond_with_handler(
        first_then(Response("oops", status=500), corpus_page("en-04-roketsan-propellant-transfer"))
    )
    report = run(settings_for(tmp_path), site.url_for("/flaky"))
    assert (report.new, report.failed, report.retried) == (1, 0, 1), report.failures
    assert len(requested(site, "/flaky")) == 2


def test_429_retry_after_is_honoured(site: HTTPServer, tmp_path: Path) -> None:
    from pipeline.crawl.fetch import Fetcher

    no_robots(site)
    site.expect_request("/busy").respond_with_handler(
        first_then(
            Response("slow down", status=429, headers={"Retry-After": "1"}), "<html><body>ok</body></html>"
        )
    )
    fetcher = Fetcher(fast(settings_for(tmp_path)), allow_private=True)
    started = time.monotonic()
    resp = fetcher.fetch(site.url_for("/busy"))
    fetcher.close()
    assert resp.status == 200 and resp.attempts == 2
    assert time.monotonic() - started >= 1.0


def test_slow_page_times_out_is_deferred_then_retried_on_a_later_run(
    site: HTTPServer, tmp_path: Path
) -> None:
    no_robots(site)
    slow = {"on": True, "asked": 0}

    def handler(request: Request) -> Response:
        slow["asked"] += 1  # counted on arrival: the server logs a request only once answered
        if slow["on"]:
            time.sleep(1.0)
        return Response(corpus_page("en-05-tusas-mou-officer-training"), content_type="text/html")

    site.expect_request("/slow").respond_with_handler(handler)
    site.expect_request("/fine").respond_with_data(
        corpus_page("en-06-havelsan-simulator-export"), content_type="text/html"
    )
    settings = settings_for(tmp_path, **{"crawl.timeout_s": 0.3, "crawl.retries": 0})
    url = sitemap(site, ["/slow", "/fine"])
    first = run(settings, url)
    assert (first.new, first.failed, first.deferred) == (1, 1, 1)
    assert "timeout" in first.failures[0]["error"] and first.failures[0]["retry"] > "2000"
    row = frontier(settings, site.url_for("/slow"))
    assert (row["status"], row["attempts"]) == ("retry", 1) and row["next_try"]

    second = run(settings, url)  # backing off: not asked again yet
    assert second.failed == 0 and second.waiting == 1 and slow["asked"] == 1

    slow["on"] = False
    store = Store(settings.data_path)
    store.frontier_set(site.url_for("/slow"), next_try="2000-01-01T00:00:00+00:00")
    store.close()
    third = run(settings, url)
    assert (third.new, third.failed) == (1, 0)
    assert frontier(settings, site.url_for("/slow"))["status"] == "done"


def test_permanent_failures_are_given_up_and_not_retried_forever(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    site.expect_request("/gone").respond_with_data("no", status=404)
    site.expect_request("/broken").respond_with_data("down", status=503)
    settings = settings_for(tmp_path, **{"crawl.retries": 0})
    policy = fast(settings, max_attempts=2)
    url = sitemap(site, ["/gone", "/broken"])
    first = run(settings, url, policy=policy)
    assert (first.failed, first.gave_up, first.deferred) == (2, 1, 1)
    assert {f["source"].rsplit("/", 1)[1]: f["retry"] for f in first.failures}["gone"] == "never"
    store = Store(settings.data_path)
    store.frontier_set(site.url_for("/broken"), next_try="2000-01-01T00:00:00+00:00")
    store.close()
    second = run(settings, url, policy=policy)
    assert second.gave_up == 1 and second.failures[0]["retry"] == "never"
    third = run(settings, url, policy=policy)
    assert third.failed == 0 and third.dead == 2
    assert len(requested(site, "/gone")) == 1 and len(requested(site, "/broken")) == 2


# -- redirects and conditional GET -------------------------------------------------------------------
def test_redirects_resolve_to_one_canonical_document(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    site.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    site.expect_request("/short").respond_with_data("", status=302, headers={"Location": "/old"})
    site.expect_request("/new").respond_with_data(
        without_canonical(corpus_page("en-07-mka-first-rounds")), content_type="text/html"
    )
    settings = settings_for(tmp_path)
    report = run(settings, sitemap(site, ["/short", "/old", "/new"]))
    store = Store(settings.data_path)
    docs = store.documents()
    store.close()
    assert [d["url"] for d in docs] == [site.url_for("/new")]
    assert report.new == 1 and report.failed == 0


def test_304_not_modified_on_the_next_run(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(
            corpus_page("en-08-azersilah-denial-crates"),
            content_type="text/html",
            headers={"ETag": '"v1"', "Last-Modified": "Mon, 03 Mar 2025 10:00:00 GMT"},
        )

    site.expect_request("/article").respond_with_handler(handler)
    settings = settings_for(tmp_path)
    first = run(settings, site.url_for("/article"))
    second = run(settings, site.url_for("/article"))
    assert first.new == 1
    assert (second.not_modified, second.new, second.updated, second.fetched) == (1, 0, 0, 0)
    last = requested(site, "/article")[-1]
    assert last.headers["If-None-Match"] == '"v1"'
    assert last.headers["If-Modified-Since"] == "Mon, 03 Mar 2025 10:00:00 GMT"


# -- limits and content ---------------------------------------------------------------------------
def test_oversize_body_is_refused(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    big = corpus_page("en-09-stm-araz-licence")
    site.expect_request("/big").respond_with_data(big, content_type="text/html")

    def chunked(request: Request) -> Response:  # no Content-Length: the cap applies while reading
        return Response((big[i : i + 500] for i in range(0, len(big), 500)), content_type="text/html")

    site.expect_request("/stream").respond_with_handler(chunked)
    settings = settings_for(tmp_path)
    report = run(settings, sitemap(site, ["/big", "/stream"]), policy=fast(settings, max_bytes=2000))
    assert (report.failed, report.new, report.gave_up) == (2, 0, 2)
    assert all("limit" in f["error"] for f in report.failures)


def test_binary_content_is_refused(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    site.expect_request("/photo").respond_with_data(
        b"\x89PNG\r\n\x1a\n" + bytes(2000), content_type="image/png"
    )
    site.expect_request("/lying").respond_with_data(bytes(range(256)) * 8, content_type="text/html")
    report = run(settings_for(tmp_path), sitemap(site, ["/photo", "/lying"]))
    assert (report.failed, report.new) == (2, 0)
    errors = " | ".join(f["error"] for f in report.failures)
    assert "not HTML (image/png)" in errors and "binary" in errors
    assert len(requested(site, "/photo")) == 1


@pytest.mark.parametrize("where", ["meta", "header"])
def test_windows_1254_pages_decode(site: HTTPServer, tmp_path: Path, where: str) -> None:
    import json

    gold = json.loads((CORPUS / "gold" / f"{GOLD_TR}.json").read_text(encoding="utf-8"))
    html = re.sub(r"<meta charset=[^>]*>", "", corpus_page(GOLD_TR), flags=re.IGNORECASE)
    html = re.sub(r'<meta http-equiv="Content-Type"[^>]*>', "", html, flags=re.IGNORECASE)
    if where == "meta":
        html = html.replace("<head>", '<head><meta charset="windows-1254">', 1)
        ctype = "text/html"
    else:
        ctype = "text/html; charset=windows-1254"
    site.expect_request("/tr").respond_with_data(
        html.encode("cp1254", errors="xmlcharrefreplace"), content_type=ctype
    )
    no_robots(site)
    settings = settings_for(tmp_path)
    assert run(settings, site.url_for("/tr")).new == 1
    store = Store(settings.data_path)
    (doc,) = store.documents()
    store.close()
    assert doc["title"] == gold["title"] and doc["language"] == "tr"


def test_malformed_html_is_stored_or_counted_never_fatal(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    html = corpus_page("en-10-asfat-ganja-overhaul")
    broken = re.sub(r"</(p|div|section|article|body|html)>", "", html)[: int(len(html) * 0.8)]
    broken = broken.replace("<p>", "<p><b><i>", 3) + "<<<>>></td></tr><script>var x = '"
    site.expect_request("/broken").respond_with_data(broken, content_type="text/html")
    site.expect_request("/nothing").respond_with_data("<html><p>&&&</html", content_type="text/html")
    report = run(settings_for(tmp_path), sitemap(site, ["/broken", "/nothing"]))
    assert report.new == 1  # lxml recovers the article from the broken markup
    assert report.failed == 1 and "no main text" in report.failures[0]["error"]


# -- safety ---------------------------------------------------------------------------------------
def test_private_hosts_are_refused_unless_allowed(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    site.expect_request("/a").respond_with_data(
        corpus_page("en-01-mke-baku-cartridge-line"), content_type="text/html"
    )
    settings = settings_for(tmp_path)
    report = run(settings, site.url_for("/a"), allow_private=False)
    assert report.failed == 1 and "refused private/loopback address 127.0.0.1" in report.failures[0]["error"]
    assert not site.log  # nothing was sent
    assert frontier(settings, site.url_for("/a"))["status"] == "dead"


def test_redirect_to_a_private_address_is_refused() -> None:
    import httpx

    from pipeline.crawl.errors import FetchError
    from pipeline.crawl.fetch import Fetcher

    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    fetcher = Fetcher(CrawlSettings(delay_s=0.0), transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError, match=r"refused private/loopback address 169\.254\.169\.254"):
        fetcher.fetch("http://93.184.216.34/article")
    fetcher.close()
    assert all("169.254" not in u for u in asked)


def test_file_urls_are_a_usage_error(tmp_path: Path) -> None:
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match="file:// URLs are not accepted"):
        ingest(settings_for(tmp_path), ["file:///etc/passwd"])
    assert not (tmp_path / "data" / "defintel.sqlite3").exists()


# -- duplicates -------------------------------------------------------------------------------------
def test_near_duplicate_pair_from_a_feed(site: HTTPServer, tmp_path: Path) -> None:
    no_robots(site)
    site.expect_request("/orig").respond_with_data(
        corpus_page("en-01-mke-baku-cartridge-line"), content_type="text/html"
    )
    site.expect_request("/repub").respond_with_data(
        corpus_page("en-11-mke-azersilah-republished"), content_type="text/html"
    )
    items = "".join(
        f"<item><title>x</title><link>{site.url_for(p)}</link></item>" for p in ("/repub", "/orig")
    )
    site.expect_request("/feed.xml").respond_with_data(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>',
        content_type="application/rss+xml",
    )
    settings = settings_for(tmp_path)
    report = run(settings, site.url_for("/feed.xml"))
    assert (report.new, report.duplicates, report.discovered) == (2, 1, 2)
    store = Store(settings.data_path)
    docs = {d["url"].rsplit("/", 1)[1]: d for d in store.documents()}
    store.close()
    (orig,) = (d for d in docs.values() if d["duplicate_of"] is None)
    (copy,) = (d for d in docs.values() if d["duplicate_of"] is not None)
    assert copy["duplicate_of"] == orig["doc_id"] and "republished" not in orig["url"]
