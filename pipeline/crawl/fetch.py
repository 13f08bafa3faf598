"""Polite, safe HTTP fetching of one URL.

Every hop of a redirect chain is checked (scheme, SSRF guard on the resolved and on the connected
address, robots.txt) and waits for its host's slot. Conditional GET with a stored ETag /
Last-Modified; a size cap checked on Content-Length and while streaming (decoded bytes, so a
compression bomb is cut too); content types other than HTML, XML feeds/sitemaps and text are
refused before their body is read. Transient failures are retried with backoff inside the run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx

from pipeline.config import CrawlSettings
from pipeline.crawl.errors import FetchError, RobotsDisallowed
from pipeline.crawl.retry import backoff_s, is_retryable_status, parse_retry_after
from pipeline.crawl.robots import ROBOTS_MAX_BYTES, RobotsCache
from pipeline.crawl.safety import check_address, check_url
from pipeline.crawl.throttle import HostThrottle
from pipeline.crawl.urls import host_of, is_url, normalize
from pipeline.errors import DocumentError
from pipeline.records import Page

__all__ = ["FetchError", "Fetcher", "Response", "RobotsDisallowed", "is_url"]

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
XML_TYPES = frozenset(
    {
        "text/xml",
        "application/xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/x-rss+xml",
    }
)
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip"})
# Served for sitemaps and badly configured pages alike; the body is sniffed afterwards.
SNIFF_TYPES = frozenset({"", "text/plain", "application/octet-stream", "binary/octet-stream"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/rss+xml;q=0.9,*/*;q=0.1"


@dataclass(frozen=True, slots=True)
class Response:
    """What one fetch brought back (after redirects)."""

    url: str  # as asked
    final_url: str  # after redirects
    status: int  # 200-299, or 304 (not modified; empty body)
    body: bytes
    content_type: str  # media type, lowercased, no parameters
    charset: str | None
    etag: str | None
    last_modified: str | None
    attempts: int = 1  # HTTP attempts this fetch took (retries + 1)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def _media_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    parts = [p.strip() for p in header.split(";")]
    charset = None
    for p in parts[1:]:
        if p.lower().startswith("charset="):
            charset = p.split("=", 1)[1].strip().strip("\"'") or None
    return parts[0].lower(), charset


class Fetcher:
    """HTTP for the crawler; thread-safe (one shared client, per-host slots)."""

    def __init__(
        self,
        settings: CrawlSettings,
        allow_private: bool = False,
        *,
        throttle: HostThrottle | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = settings
        self.allow_private = allow_private or self.policy.allow_private_hosts
        self.throttle = throttle or HostThrottle(self.policy.delay_s)
        self.robots = RobotsCache(self._robots_text, self.policy.user_agent)
        self.client = httpx.Client(
            timeout=httpx.Timeout(self.policy.timeout_s),
            headers={"User-Agent": self.policy.user_agent, "Accept": ACCEPT},
            follow_redirects=False,
            trust_env=False,  # a proxy would hide the address the SSRF guard must see
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    # -- one URL, with in-run retries ---------------------------------------------------------
    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Response:
        """GET ``url`` (conditionally when a validator is given), retrying transient failures."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self.get(url, etag=etag, last_modified=last_modified)
            except FetchError as exc:
                # robots_unreachable is remembered for the whole run: retrying now cannot help.
                exc.attempts = attempt
                if not exc.retryable or exc.kind == "robots_unreachable" or attempt > self.policy.retries:
                    raise
                if exc.retry_after is not None and exc.retry_after > self.policy.max_retry_after_s:
                    raise  # the server asks for longer than a run should wait: a later run retries
                pause = backoff_s(self.policy, attempt, exc.retry_after)
                log.info("retry %d/%d of %s in %.1fs: %s", attempt, self.policy.retries, url, pause, exc)
                self.throttle.hold(host_of(url), pause)
                continue
            return dataclasses.replace(resp, attempts=attempt)

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
        check_robots: bool = True,
    ) -> Response:
        """One GET, redirects followed by hand (each hop checked); raises FetchError."""
        limit = max_bytes or self.policy.max_bytes
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _ in range(self.policy.max_redirects + 1):
            check_url(current, self.allow_private)
            host = host_of(current)
            if check_robots:
                self.robots.check(current)
                self.throttle.raise_delay(host, self.robots.delay(current))
            with self.throttle.slot(host):
                location = self._exchange(url, current, headers, limit)
            if isinstance(location, Response):
                return location
            current = location
        raise FetchError(f"more than {self.policy.max_redirects} redirects: {url}", kind="redirects")

    def _exchange(self, asked: str, url: str, headers: dict[str, str], limit: int) -> Response | str:
        """One HTTP exchange: a Response, or the next URL of a redirect."""
        started = time.monotonic()
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                self._check_peer(resp, url)
                if resp.status_code == 304:
                    return Response(
                        asked,
                        url,
                        304,
                        b"",
                        "",
                        None,
                        resp.headers.get("etag"),
                        resp.headers.get("last-modified"),
                    )
                if resp.status_code in REDIRECTS:
                    if "location" not in resp.headers:
                        raise FetchError(
                            f"redirect without Location from {url}", kind="http", status=resp.status_code
                        )
                    return urljoin(url, resp.headers["location"])
                if resp.status_code >= 300:
                    raise FetchError(
                        f"HTTP {resp.status_code} for {url}",
                        kind="http",
                        status=resp.status_code,
                        retryable=is_retryable_status(resp.status_code),
                        retry_after=parse_retry_after(resp.headers.get("retry-after")),
                    )
                ctype, charset = _media_type(resp.headers.get("content-type"))
                if ctype not in HTML_TYPES | XML_TYPES | GZIP_TYPES | SNIFF_TYPES:
                    raise FetchError(
                        f"not HTML ({ctype}): {url}", kind="content_type", status=resp.status_code
                    )
                body = self._read(resp, url, limit, started)
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"timeout after {self.policy.timeout_s}s: {url} ({type(exc).__name__})",
                kind="timeout",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(
                f"fetch failed for {url}: {type(exc).__name__}: {exc}", kind="network", retryable=True
            ) from None
        if ctype in GZIP_TYPES or (body[:2] == b"\x1f\x8b" and url.endswith(".gz")):
            body = _gunzip(body, limit, url)
        return Response(
            asked,
            url,
            resp.status_code,
            body,
            ctype,
            charset,
            resp.headers.get("etag"),
            resp.headers.get("last-modified"),
        )

    def _check_peer(self, resp: httpx.Response, url: str) -> None:
        stream = resp.extensions.get("network_stream")
        if stream is None:  # in-memory transports (tests) have no socket
            return
        peer = stream.get_extra_info("server_addr")
        if peer:
            check_address(str(peer[0]), host_of(url), self.allow_private)

    def _read(self, resp: httpx.Response, url: str, limit: int, started: float) -> bytes:
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"body of {declared} bytes over the {limit}-byte limit: {url}", kind="too_large")
        body = bytearray()
        for part in resp.iter_bytes():
            body.extend(part)
            if len(body) > limit:
                raise FetchError(f"body over the {limit}-byte limit: {url}", kind="too_large")
            # A server trickling bytes never trips the per-read timeout: cap the whole body too.
            if time.monotonic() - started > 3 * self.policy.timeout_s:
                raise FetchError(
                    f"body not complete after {3 * self.policy.timeout_s}s: {url}",
                    kind="timeout",
                    retryable=True,
                )
        return bytes(body)

    def _robots_text(self, robots_url: str) -> tuple[int, str]:
        resp = self.get(robots_url, max_bytes=ROBOTS_MAX_BYTES, check_robots=False)
        return resp.status, resp.body.decode("utf-8", "replace")


def _gunzip(body: bytes, limit: int, url: str) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise FetchError(f"bad gzip body: {url}: {exc}", kind="content") from None
    if len(out) > limit:
        raise FetchError(f"gzip body over the {limit}-byte limit: {url}", kind="too_large")
    return out


def to_page(resp: Response, source: str) -> Page:
    """An HTML response as a Page (charset: header, then <meta>, then detection)."""
    from pipeline.extract import decode_html

    if resp.content_type and resp.content_type not in HTML_TYPES | SNIFF_TYPES:
        raise FetchError(f"not HTML ({resp.content_type}): {resp.final_url}", kind="content_type")
    try:
        html = decode_html(resp.body, resp.charset)
    except DocumentError as exc:
        raise FetchError(f"{exc}: {resp.final_url}", kind="content") from None
    return Page(
        url=normalize(resp.final_url) or resp.final_url,  # one spelling → one doc_id
        html=html,
        source=source,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        etag=resp.etag,
        last_modified=resp.last_modified,
    )
