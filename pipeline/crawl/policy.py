"""Crawl policy: what a fetched URL is for, and which failures a later run will not mend.

The ingest run asks these; they hold no state and touch no store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pipeline.crawl.discovery import classify, feed_links, sitemap_links
from pipeline.crawl.errors import FetchError
from pipeline.crawl.fetch import Fetcher, Response, to_page
from pipeline.crawl.sources import ROOT
from pipeline.records import Page

# Fetch failures after which a later run will not help: the page is gone, forbidden, not HTML,
# too big, or the target is refused by the SSRF guard.
PERMANENT_KINDS = frozenset({"content_type", "too_large", "refused", "redirects"})
ARTICLE_KINDS = frozenset({"page", "link"})  # frontier kinds of article URLs (crawl/frontier.py)

Route = Literal["feed", "sitemap", "hub", "article"]


def permanent(exc: FetchError) -> bool:
    """A failure no later run will mend (an HTTP status that is not worth retrying included)."""
    return exc.kind in PERMANENT_KINDS or (
        exc.kind == "http" and exc.status is not None and not exc.retryable
    )


def route(resp: Response, kind: str) -> Route:
    """What a fetched URL of frontier ``kind`` is: a feed or a sitemap listing pages (unless it
    was listed as an article itself), a site root's HTML (a hub whose links may be articles), or
    an article."""
    found = classify(resp)
    if found in ("feed", "sitemap") and kind not in ARTICLE_KINDS:
        return "feed" if found == "feed" else "sitemap"
    if found == "html" and kind == ROOT:
        return "hub"
    return "article"


def article_pages(fetcher: Fetcher, url: str) -> Iterator[Page]:
    """The article pages a URL leads to: itself, or the entries of a feed or sitemap
    (``defintel extract URL``)."""
    resp = fetcher.fetch(url)
    kind = classify(resp)
    if kind == "html":
        yield to_page(resp, url)
        return
    if kind == "feed":
        links = [x.url for x in feed_links(resp.body)]
    elif kind == "sitemap":
        links = [x.url for x in sitemap_links(resp.body)[0]]
    else:
        raise FetchError(f"neither HTML nor a feed or sitemap: {url}", kind="content_type")
    for link in links:
        yield to_page(fetcher.fetch(link), url)
