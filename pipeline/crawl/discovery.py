"""Discovery: what a fetched seed is (feed, sitemap, HTML) and which URLs it lists.

Feeds via feedparser, sitemaps (urlset, sitemap index, news and image extensions) via lxml, hub
pages (site roots) via lxml links filtered by ``urls.article_links``. Every listed URL comes with
the date the source gives for it (lastmod / updated / news publication date), so a known article
is fetched again only when its source says it changed.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.crawl.errors import FetchError
from pipeline.crawl.fetch import HTML_TYPES, Response
from pipeline.crawl.urls import normalize

log = logging.getLogger(__name__)

FEED_MARKERS = (b"<rss", b"<feed", b"<rdf:rdf")
SITEMAP_MARKERS = (b"<urlset", b"<sitemapindex")


@dataclass(frozen=True, slots=True)
class Listed:
    """A URL a feed, sitemap or hub lists, with the change date it gives (ISO UTC) if any."""

    url: str
    lastmod: str | None = None


def classify(resp: Response) -> str:
    """'feed', 'sitemap', 'html' or 'other', from the body's start (types lie; bodies less so)."""
    head = resp.body[:4096].lstrip().lower()
    if any(m in head for m in SITEMAP_MARKERS):
        return "sitemap"
    if any(m in head for m in FEED_MARKERS):
        return "feed"
    if resp.content_type in HTML_TYPES or b"<html" in head or b"<!doctype html" in head:
        return "html"
    return "other"


def iso_utc(value: str | None) -> str | None:
    """A W3C datetime (sitemaps) as ISO UTC seconds; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def feed_links(body: bytes, base: str | None = None) -> list[Listed]:
    import feedparser

    parsed = feedparser.parse(body)
    out: dict[str, Listed] = {}
    for entry in parsed.entries:
        url = normalize(str(entry.get("link") or ""), base)
        if url is None:
            continue
        stamp = entry.get("updated_parsed") or entry.get("published_parsed")
        lastmod = (
            datetime.fromtimestamp(calendar.timegm(stamp), UTC).isoformat(timespec="seconds")
            if stamp
            else None
        )
        out.setdefault(url, Listed(url, lastmod))
    return list(out.values())


def sitemap_links(body: bytes, base: str | None = None) -> tuple[list[Listed], list[Listed]]:
    """(pages, child sitemaps) of a urlset or a sitemap index."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise FetchError(f"malformed sitemap: {exc}", kind="content") from None
    if root is None:
        raise FetchError("malformed sitemap: no XML root", kind="content")

    def child_text(node: etree._Element, *names: str) -> str | None:
        for name in names:
            found = node.xpath(f".//*[local-name()='{name}']/text()")
            if found:
                return str(found[0]).strip()
        return None

    entries: list[Listed] = []
    seen: set[str] = set()
    kind = etree.QName(root).localname
    tag = "sitemap" if kind == "sitemapindex" else "url"
    for node in root.xpath(f"./*[local-name()='{tag}']"):
        # Only the entry's own <loc>: image/video extensions carry <image:loc> too.
        locs = node.xpath("./*[local-name()='loc']/text()")
        url = normalize(str(locs[0]), base) if locs else None
        if url is None or url in seen:
            continue
        seen.add(url)
        lastmod = iso_utc(child_text(node, "lastmod", "publication_date"))
        entries.append(Listed(url, lastmod))
    return ([], entries) if kind == "sitemapindex" else (entries, [])


def html_hrefs(html: str) -> list[str]:
    """Every <a href> of a page, in document order."""
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    return [str(h) for h in tree.xpath("//a/@href")]
