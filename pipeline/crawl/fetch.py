"""Polite, safe HTTP fetching: SSRF guard on every hop, robots.txt, per-host delay, size cap.

Discovery of article URLs from RSS/Atom feeds and XML sitemaps lives here too; a plain page is
treated as an article.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline.config import CrawlSettings
from pipeline.errors import DocumentError, UsageError
from pipeline.records import Page

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_MARKERS = (b"<rss", b"<feed", b"<rdf:rdf")
SITEMAP_MARKERS = (b"<urlset", b"<sitemapindex")


class RobotsDisallowed(DocumentError):
    """robots.txt forbids the URL for our user agent."""


def check_url(url: str, allow_private: bool) -> None:
    """Refuse non-HTTP schemes and, unless allowed, hosts resolving to private/loopback/link-local."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DocumentError(f"refused URL (only http/https): {url}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise DocumentError(f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if (
            addr.is_private
            or addr.is_loopback
            or addr.is_link_local
            or addr.is_reserved
            or addr.is_unspecified
        ):
            raise DocumentError(
                f"refused private/loopback address {addr} for {parts.hostname} (use --allow-private-hosts)"
            )


@dataclass
class Fetcher:
    settings: CrawlSettings
    allow_private: bool = False
    _last: dict[str, float] = field(default_factory=dict)
    _robots: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            timeout=self.settings.timeout_s,
            headers={"User-Agent": self.settings.user_agent},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def _wait(self, host: str, delay: float) -> None:
        last = self._last.get(host)
        if last is not None:
            pause = delay - (time.monotonic() - last)
            if pause > 0:
                time.sleep(pause)
        self._last[host] = time.monotonic()

    def _robots_for(self, url: str) -> object | None:
        from protego import Protego

        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        if base not in self._robots:
            try:
                body, _, _ = self._get(base + "/robots.txt", check_robots=False)
                self._robots[base] = Protego.parse(body.decode("utf-8", "replace"))
            except DocumentError:
                self._robots[base] = None
        return self._robots[base]

    def _get(self, url: str, *, check_robots: bool = True) -> tuple[bytes, str, httpx.Headers]:
        """GET following redirects by hand (each hop checked); returns (body, final URL, headers)."""
        for _ in range(6):
            check_url(url, self.allow_private)
            host = urlsplit(url).netloc
            delay = self.settings.delay_s
            if check_robots:
                robots = self._robots_for(url)
                if robots is not None:
                    if not robots.can_fetch(url, self.settings.user_agent):  # type: ignore[attr-defined]
                        raise RobotsDisallowed(f"robots.txt disallows {url}")
                    delay = max(delay, robots.crawl_delay(self.settings.user_agent) or 0)  # type: ignore[attr-defined]
            self._wait(host, delay)
            try:
                with self.client.stream("GET", url) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    if resp.status_code >= 400:
                        raise DocumentError(f"HTTP {resp.status_code} for {url}")
                    body = bytearray()
                    for part in resp.iter_bytes():
                        body.extend(part)
                        if len(body) > self.settings.max_bytes:
                            raise DocumentError(f"body over {self.settings.max_bytes} bytes: {url}")
                    return bytes(body), str(resp.url), resp.headers
            except httpx.HTTPError as exc:
                raise DocumentError(f"fetch failed for {url}: {exc}") from None
        raise DocumentError(f"too many redirects: {url}")

    def pages(self, url: str) -> Iterator[Page]:
        """The article pages a URL leads to: itself, or the entries of a feed or sitemap."""
        body, final, headers = self._get(url)
        head = body[:2048].lower()
        if any(m in head for m in FEED_MARKERS):
            yield from self._follow(_feed_links(body), url)
        elif any(m in head for m in SITEMAP_MARKERS):
            yield from self._follow(_sitemap_links(body, self), url)
        else:
            yield self._page(body, final, headers, url)

    def _follow(self, links: list[str], source: str) -> Iterator[Page]:
        for link in links:
            try:
                body, final, headers = self._get(link)
                yield self._page(body, final, headers, source)
            except DocumentError as exc:
                yield Page(url=link, html="", source=f"error: {exc}")

    def _page(self, body: bytes, final: str, headers: httpx.Headers, source: str) -> Page:
        from pipeline.extract import decode_html

        ctype = headers.get("content-type", "text/html").lower()
        if not any(t in ctype for t in HTML_TYPES):
            raise DocumentError(f"not HTML ({ctype.split(';')[0]}): {final}")
        charset = None
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";")[0].strip()
        return Page(
            url=final,
            html=decode_html(body, charset),
            source=source,
            fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
        )


def _feed_links(body: bytes) -> list[str]:
    import feedparser

    parsed = feedparser.parse(body)
    return [str(e.link) for e in parsed.entries if getattr(e, "link", None)]


def _sitemap_links(body: bytes, fetcher: Fetcher, depth: int = 0) -> list[str]:
    from lxml import etree

    try:
        root = etree.fromstring(body)
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"malformed sitemap: {exc}") from None
    locs = [str(x).strip() for x in root.xpath("//*[local-name()='loc']/text()")]
    if etree.QName(root).localname == "sitemapindex" and depth < 2:
        out: list[str] = []
        for loc in locs:
            sub, _, _ = fetcher._get(loc)
            out.extend(_sitemap_links(sub, fetcher, depth + 1))
        return out
    return locs


def is_url(source: str) -> bool:
    scheme = urlsplit(source).scheme
    if scheme == "file":
        raise UsageError(f"file:// URLs are not accepted as sources, pass the path instead: {source}")
    return scheme in ("http", "https")
