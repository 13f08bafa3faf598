"""Discovery and URL handling: feeds, sitemap indexes, news sitemaps, site roots with filters,
normalisation, Retry-After, the sources file, the frontier's re-listing rule."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from pipeline.backend.sqlite import Store
from pipeline.config import CrawlSettings
from pipeline.crawl.discovery import Listed, feed_links, html_hrefs, sitemap_links
from pipeline.crawl.frontier import Frontier
from pipeline.crawl.retry import parse_retry_after
from pipeline.crawl.sources import ROOT, SEED, argument_seed, load_sources
from pipeline.crawl.urls import UrlFilter, article_links, normalize
from pipeline.errors import UsageError
from pipeline.jobs import ingest
from tests.conftest import CORPUS, make_settings

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.DependencyWarning")

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
IMAGE = 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80/a/../b/?utm_source=x&b=2&a=1#frag", "http://example.com/b/?a=1&b=2"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/haber/x?fbclid=abc", "https://example.com/haber/x"),
        ("javascript:void(0)", None),
        ("mailto:a@b.c", None),
        ("file:///etc/passwd", None),
    ],
)
def test_urls_are_normalised(raw: str, expected: str | None) -> None:
    assert normalize(raw) == expected


def test_relative_links_resolve_against_the_page() -> None:
    assert normalize("../news/1", "https://site.example/a/b/") == "https://site.example/a/news/1"


def test_sitemap_index_and_news_sitemap() -> None:
    index = f"""<?xml version="1.0"?><sitemapindex {NS}>
      <sitemap><loc>https://s.example/news.xml</loc><lastmod>2025-03-01T10:00:00+03:00</lastmod></sitemap>
      <sitemap><loc>https://s.example/old.xml</loc></sitemap></sitemapindex>""".encode()
    pages, children = sitemap_links(index)
    assert pages == [] and children == [
        Listed("https://s.example/news.xml", "2025-03-01T07:00:00+00:00"),
        Listed("https://s.example/old.xml", None),
    ]
    news = f"""<urlset {NS} {NEWS} {IMAGE}>
      <url><loc>https://s.example/haber/1</loc>
        <news:news><news:publication_date>2025-03-02</news:publication_date></news:news>
        <image:image><image:loc>https://s.example/img/1.jpg</image:loc></image:image></url>
      <url><loc>https://s.example/haber/2?utm_campaign=x</loc><lastmod>2025-03-03T00:00:00Z</lastmod></url>
      <url><loc>https://s.example/haber/1</loc></url></urlset>""".encode()
    pages, children = sitemap_links(news)
    assert children == [] and pages == [
        Listed("https://s.example/haber/1", "2025-03-02T00:00:00+00:00"),
        Listed("https://s.example/haber/2", "2025-03-03T00:00:00+00:00"),
    ]


def test_feed_entries_with_dates() -> None:
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
      <item><title>a</title><link>https://n.example/a</link><pubDate>Tue, 04 Mar 2025 08:00:00 GMT</pubDate></item>
      <item><title>b</title><link>/b</link></item></channel></rss>"""
    assert feed_links(rss, "https://n.example/rss") == [
        Listed("https://n.example/a", "2025-03-04T08:00:00+00:00"),
        Listed("https://n.example/b", None),
    ]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><title>x</title><link href="https://n.example/x"/><updated>2025-03-05T12:00:00Z</updated></entry></feed>"""
    assert feed_links(atom) == [Listed("https://n.example/x", "2025-03-05T12:00:00+00:00")]


def test_hub_links_are_same_site_articles_through_the_source_filter() -> None:
    html = """<html><body><nav><a href="/">Home</a><a href="/category/savunma/">Savunma</a>
      <a href="/tag/mke">MKE</a><a href="/login">Giriş</a></nav>
      <a href="/savunma/2025/03/mke-azersilah-anlasma">story</a>
      <a href="https://www.site.example/savunma/2025/03/roketsan#comments">story 2</a>
      <a href="https://other.example/savunma/2025/03/x">elsewhere</a>
      <a href="/ekonomi/2025/03/borsa">off topic</a><a href="/files/report.pdf">pdf</a>
      <a href="mailto:desk@site.example">mail</a></body></html>"""
    only_defence = UrlFilter.build([r"/savunma/"], [r"/ekonomi/"], "test")
    links = article_links(html_hrefs(html), "https://site.example/", only_defence, 100)
    assert links == [
        "https://site.example/savunma/2025/03/mke-azersilah-anlasma",
        "https://www.site.example/savunma/2025/03/roketsan",
    ]


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (None, None), ("soon", None), ("", None)])
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    got = parse_retry_after(format_datetime(when, usegmt=True))
    assert got is not None and 85 <= got <= 91


def test_sources_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        """
[[source]]
name = "on"
enabled = true
feeds = ["https://a.example/rss"]
urls = ["https://b.example/", "https://b.example/haber/1"]
roots = ["https://b.example/savunma"]
include = ["/savunma/"]
crawl_delay_s = 3

[[source]]
name = "off"
enabled = false
feeds = ["https://c.example/rss"]
""",
        encoding="utf-8",
    )
    seeds = load_sources(path)
    assert [(s.url, s.kind) for s in seeds] == [
        ("https://a.example/rss", SEED),
        ("https://b.example/", ROOT),  # a site root is a hub page
        ("https://b.example/haber/1", SEED),
        ("https://b.example/savunma", ROOT),
    ]
    assert seeds[0].source.crawl_delay_s == 3.0
    assert seeds[0].source.url_filter.allows("https://b.example/savunma/x")
    assert not seeds[0].source.url_filter.allows("https://b.example/spor/x")
    path.write_text('[[source]]\nenabled = true\ninclude = ["("]\n', encoding="utf-8")
    with pytest.raises(UsageError, match="bad include pattern"):
        load_sources(path)
    with pytest.raises(UsageError, match="not an http"):
        argument_seed("http://")


def test_a_known_page_is_fetched_again_only_when_its_listing_says_it_changed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    frontier = Frontier(store, CrawlSettings())
    due, fresh = frontier.offer([Listed("https://x.example/a", "2025-01-01T00:00:00+00:00")], "s", "page")
    assert fresh == 1 and [d.url for d in due] == ["https://x.example/a"]
    frontier.done(due[0], None, doc_id="d")
    assert frontier.offer([Listed("https://x.example/a", "2025-01-01T00:00:00+00:00")], "s", "page")[0] == []
    assert frontier.offer([Listed("https://x.example/a")], "s", "page")[0] == []
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    again, fresh = frontier.offer([Listed("https://x.example/a", future)], "s", "page")
    assert fresh == 0 and [d.url for d in again] == ["https://x.example/a"]
    store.close()


def test_site_root_and_sitemap_index_end_to_end(site: HTTPServer, tmp_path: Path) -> None:
    def page(name: str) -> str:
        html = (CORPUS / f"{name}.html").read_text(encoding="utf-8")
        return re.sub(r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>', "", html)

    site.expect_request("/robots.txt").respond_with_data("", status=404)
    site.expect_request("/").respond_with_data(
        '<html><body><a href="/category/x/">section</a><a href="/haber/2025/mke-baku">a</a>'
        '<a href="/about-us-and-contact-information">about</a><a href="/spor/2025/mac">sport</a></body></html>',
        content_type="text/html",
    )
    site.expect_request("/haber/2025/mke-baku").respond_with_data(
        page("en-01-mke-baku-cartridge-line"), content_type="text/html"
    )
    site.expect_request("/about-us-and-contact-information").respond_with_data(
        "<html><body><p>Contact us.</p></body></html>", content_type="text/html"
    )
    site.expect_request("/index.xml").respond_with_data(
        f"<sitemapindex {NS}><sitemap><loc>{site.url_for('/news.xml')}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    site.expect_request("/news.xml").respond_with_data(
        f"<urlset {NS} {NEWS}><url><loc>{site.url_for('/n/1')}</loc>"
        "<news:news><news:publication_date>2025-03-01</news:publication_date></news:news></url></urlset>",
        content_type="application/xml",
    )
    site.expect_request("/n/1").respond_with_data(
        page("az-03-aselsan-gence-birge-muessise"), content_type="text/html"
    )
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "t"\nenabled = true\nurls = ["{site.url_for("/")}"]\nexclude = ["/spor/"]\n'
        f'sitemaps = ["{site.url_for("/index.xml")}"]\n',
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "data", **{"crawl.delay_s": 0.0, "sources": str(sources)})
    report = ingest(settings, [], allow_private=True)
    assert (report.new, report.failed, report.not_article) == (2, 0, 1), report.failures
    assert not [r for r, _ in site.log if r.path.startswith(("/spor", "/category"))]
    second = ingest(settings, [], allow_private=True)
    # Discovery pages are looked at again (the child sitemap too); known articles are not.
    assert (second.new, second.fetched, second.failed) == (0, 3, 0)
