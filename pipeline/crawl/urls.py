"""URL normalisation and filtering (courlan), and the scheme rule for URL sources."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import courlan

from pipeline.errors import UsageError

# Links that are never articles, whatever the site: assets, feeds, auth pages, search results.
_NOT_ARTICLE = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|css|js|pdf|zip|gz|mp[34]|avi|mov|xml|rss|json|docx?|xlsx?)$"
    r"|/(?:tag|tags|etiket|author|yazar|muellif|search|ara|axtar|login|signin|register|feed|rss)(?:/|$)",
    re.IGNORECASE,
)


def is_url(source: str) -> bool:
    """True for http(s) sources; file:// is refused outright (pass the path instead)."""
    scheme = urlsplit(source).scheme.lower()
    if scheme == "file":
        raise UsageError(f"file:// URLs are not accepted as sources, pass the path instead: {source}")
    return scheme in ("http", "https")


def normalize(url: str, base: str | None = None) -> str | None:
    """One spelling per resource: absolute, dot segments resolved, lowercase host, default port and
    fragment dropped, tracking parameters removed, query sorted (courlan). None for anything not http(s)."""
    url = url.strip()
    if not url:
        return None
    if base is not None:
        url = urljoin(base, url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # urljoin against the bare origin resolves /a/../b into /b (courlan keeps dot segments).
    path = urlsplit(urljoin(f"{parts.scheme}://{parts.netloc}/", parts.path or "/")).path
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    try:
        # strict=False: strict mode keeps only a short list of query keys and would merge
        # articles addressed as ?newsid=…; tracking parameters go in either mode.
        out = courlan.normalize_url(url, strict=False, trailing_slash=True)
    except ValueError:
        return None
    if not urlsplit(out).path:
        out = out + "/"
    return out


def host_of(url: str) -> str:
    """The politeness key: host and port, lowercased."""
    return urlsplit(url).netloc.lower()


def same_site(url: str, reference: str) -> bool:
    """Same host, ignoring a leading ``www.`` (news sites serve both)."""

    def bare(u: str) -> str:
        host = (urlsplit(u).hostname or "").lower()
        return host[4:] if host.startswith("www.") else host

    return bare(url) == bare(reference) and urlsplit(url).port == urlsplit(reference).port


def is_site_root(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


@dataclass(frozen=True, slots=True)
class UrlFilter:
    """Per-source include/exclude regular expressions (searched in the full URL)."""

    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def build(cls, include: Sequence[str], exclude: Sequence[str], where: str) -> UrlFilter:
        def compile_all(patterns: Sequence[str], key: str) -> tuple[re.Pattern[str], ...]:
            out = []
            for p in patterns:
                try:
                    out.append(re.compile(p))
                except re.error as exc:
                    raise UsageError(f"{where}: bad {key} pattern {p!r}: {exc}") from None
            return tuple(out)

        return cls(compile_all(include, "include"), compile_all(exclude, "exclude"))

    def allows(self, url: str) -> bool:
        if any(p.search(url) for p in self.exclude):
            return False
        return not self.include or any(p.search(url) for p in self.include)


def article_links(hrefs: Iterable[str], page_url: str, url_filter: UrlFilter, limit: int) -> list[str]:
    """Same-site links of a hub page that may be articles: normalised, deduplicated, filtered."""
    out: dict[str, None] = {}
    for href in hrefs:
        url = normalize(href, page_url)
        if url is None or url in out or not same_site(url, page_url) or is_site_root(url):
            continue
        if _NOT_ARTICLE.search(urlsplit(url).path) or courlan.is_navigation_page(url):
            continue
        if courlan.is_not_crawlable(url) or not url_filter.allows(url):
            continue
        out[url] = None
        if len(out) >= limit:
            break
    return list(out)
