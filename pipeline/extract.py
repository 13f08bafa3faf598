"""HTML → Document: main text (trafilatura), headline, author, first-publication date, language."""

from __future__ import annotations

import itertools
import json
import logging
import re
import tomllib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import lxml.html
from lxml import etree

from pipeline import langid
from pipeline.dates import find_dates
from pipeline.errors import DocumentError
from pipeline.records import Document, Page, sha1

log = logging.getLogger(__name__)

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_UPDATED = re.compile(
    r"güncel|yenilən|yeniləndi|updated|last modified|son düzəliş|düzəliş edilib|redakt", re.IGNORECASE
)
_AUTHOR_LABEL = re.compile(
    r"^\s*(?:by|written by|reported by|haber|muhabir|yazan|yazar|editör|müəllif|müxbir|hazırladı|"
    r"hazırlayan|müəllif|author)\s*[:\-–]?\s*",
    re.IGNORECASE,
)
_INNER_LABEL = re.compile(
    r"\b(?:by|written by|yazar|yazan|muhabir|müəllif|müxbir|author)\s*:\s*", re.IGNORECASE
)
_LEADING_LABEL = re.compile(r"^[^\W\d_]+\s*:\s*")
_COMPANY = re.compile(r"\b(?:Inc|Ltd|LLC|GmbH|Corp|A\.Ş|MMC|QSC|ASC)\b\.?")
_TRAILER = re.compile(r"\s+(?:[-–—|·•]|\()\s*\S.*$")
# Single words a byline element holds that are no one's name: date and update labels, relative days,
# sections (tr / az / en).
BYLINE_NOT_NAMES = frozenset(
    [
        "tarih",
        "tarix",
        "date",
        "güncelleme",
        "güncellendi",
        "yenilənib",
        "yenilenib",
        "updated",
        "published",
        "yayın",
        "yayınlanma",
        "dün",
        "dünən",
        "bugün",
        "today",
        "yesterday",
        "ekonomi",
        "economy",
        "iqtisadiyyat",
        "business",
        "siyaset",
        "siyasət",
        "politics",
        "dünya",
        "world",
        "gündem",
        "gündəm",
        "savunma",
        "müdafiə",
        "defence",
        "defense",
        "haber",
        "haberler",
        "xəbər",
        "xəbərlər",
        "news",
        "manşet",
        "manset",
        "spor",
        "idman",
        "sport",
        "teknoloji",
        "texnologiya",
        "technology",
        "region",
        "bölge",
        "bölmə",
        "kategori",
        "category",
    ]
)
_CREDIT = re.compile(r"\s*(?:[|/·•,]|\b(?:with|and|kaynak|mənbə|source|via)\b:?)\s*.*$", re.IGNORECASE)
_TITLE_SPLIT = re.compile(r"\s+[|–—\-:»]\s+")
MIN_TEXT_CHARS = 80


def decode_html(data: bytes, declared: str | None = None) -> str:
    """Decode page bytes; refuse empty or binary input. Charset: header, then <meta>, then detection."""
    if not data.strip():
        raise DocumentError("empty document")
    head = data[:4096]
    if b"\x00" in head or _control_ratio(head) > 0.05:
        raise DocumentError("not an HTML document (binary content)")
    candidates = [declared]
    meta = _META_CHARSET.search(head)
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for enc in candidates:
        if not enc:
            continue
        try:
            return data.decode(enc.strip().lower().replace("iso-8859-9", "cp1254"))
        except (LookupError, UnicodeDecodeError):
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise DocumentError("cannot decode the document's text")
    return str(best)


def _control_ratio(data: bytes) -> float:
    bad = sum(1 for b in data if b < 9 or 13 < b < 32)
    return bad / max(1, len(data))


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


def _parse(html: str) -> Any:
    # lxml refuses a str that still carries an XML encoding declaration (XHTML pages); the text is
    # already decoded, so the declaration is dropped.
    html = _XML_DECL.sub("", html, count=1)
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise DocumentError(f"unparseable HTML: {exc}") from None
    if tree is None or not len(tree):
        raise DocumentError("not an HTML document")
    return tree


def _text(el: Any) -> str:
    return " ".join(el.text_content().split())


def _json_ld(tree: Any) -> Iterator[dict[str, Any]]:
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text_content())
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                if "@graph" in item and isinstance(item["@graph"], list):
                    stack.extend(item["@graph"])
                yield item
            elif isinstance(item, list):
                stack.extend(item)


def _article_ld(tree: Any) -> dict[str, Any]:
    for item in _json_ld(tree):
        kind = item.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and ("Article" in k or k == "WebPage") for k in kinds):
            return item
    return {}


def _meta(tree: Any, *names: str) -> str | None:
    for name in names:
        for attr in ("property", "name", "itemprop"):
            hits = tree.xpath(f'//meta[@{attr}="{name}"]/@content')
            if hits and str(hits[0]).strip():
                return str(hits[0]).strip()
    return None


# -- title --------------------------------------------------------------------------------------
def _title(tree: Any, ld: dict[str, Any], fallback: Callable[[], str | None]) -> str:
    site = _meta(tree, "og:site_name")
    h1s = [t for t in (_text(h) for h in tree.xpath("//article//h1 | //main//h1")) if t] or [
        t for t in (_text(h) for h in tree.xpath("//h1")) if t
    ]
    candidates = [*h1s[:1], ld.get("headline"), _meta(tree, "og:title", "twitter:title")]
    # The fallback (a full trafilatura metadata pass, ~150 ms with its date search) only when needed.
    found = next((c for c in candidates if isinstance(c, str) and c.strip()), None) or fallback()
    if found and found.strip():
        # The page's own headline keeps its tags ("… – FOTO", "… - VİDEO"); a <title>-like string
        # also loses a short trailing part, the site's name more often than not.
        return _strip_site(" ".join(found.split()), site, headline=bool(h1s) and found == h1s[0])
    page_title = tree.xpath("//title")
    if page_title and _text(page_title[0]):
        return _strip_site(_text(page_title[0]), site)
    raise DocumentError("no title found")


def _strip_site(title: str, site: str | None, *, headline: bool = False) -> str:
    parts = _TITLE_SPLIT.split(title)
    if len(parts) > 1:
        if site and any(p.strip().lower() == site.strip().lower() for p in parts):
            parts = [p for p in parts if p.strip().lower() != site.strip().lower()]
        elif headline:
            return title
        elif len(parts[-1]) < len(parts[0]) and len(parts[-1].split()) <= 4:
            parts = parts[:-1]
        return " - ".join(parts) if len(parts) > 1 else parts[0]
    return title


# -- author -------------------------------------------------------------------------------------
def clean_author(raw: str | None) -> str | None:
    """A byline reduced to the person's name: labels, agency credits and dates removed."""
    if not raw:
        return None
    name = " ".join(raw.split())
    inner = list(_INNER_LABEL.finditer(name))
    if inner:  # "Dünən, 21:08. Yazar: X": the name follows the last byline label
        name = name[inner[-1].end() :]
    if _COMPANY.search(name):  # "Maritime Reports, Inc. · May 3": the publisher, not a person
        return None
    name = _CREDIT.sub("", name)  # "Kaynak: …", "X, Reuters": a source credit and what follows
    name = _LEADING_LABEL.sub("", name)  # "Tarix: 11.06.2025", "Updated: …": a field label, no name
    name = _AUTHOR_LABEL.sub("", name)
    name = _TRAILER.sub("", name)  # "Ann Lee -TDO- (PARIS)": the desk and city after the name
    name = re.sub(r"[\s,;:()\-–—]+$", "", name).strip()
    dates = find_dates(name)
    if dates:
        name = name[: dates[0].start].strip(" ,;-–—|")
    words = name.split()
    if (
        not words
        or (len(words) == 1 and name.casefold() in BYLINE_NOT_NAMES)
        or len(words) > 5
        or any(ch.isdigit() for ch in name)
        or (name.isupper() and len(words) == 1)
    ):
        return None
    return name


_BYLINE_LABEL = re.compile(
    r"^\s*(?:by|written by|reported by|haber|muhabir|yazan|yazar|müəllif|müxbir|hazırladı|hazırlayan)\b\s*:?\s*",
    re.IGNORECASE,
)
_NOT_ARTICLE = re.compile(r"comment|yorum|şərh|serh|reader|related|sidebar|footer|nav", re.IGNORECASE)


def _outside_article(el: Any) -> bool:
    """In a comment block, a sidebar, a related box or the footer (by class or id up the tree)."""
    for anc in [el, *el.iterancestors()]:
        if _NOT_ARTICLE.search(f"{anc.get('class') or ''} {anc.get('id') or ''}") or anc.tag in (
            "footer",
            "nav",
        ):
            return True
    return False


def _labelled_bylines(tree: Any) -> list[str]:
    """Names after a byline label ("Muhabir:", "Müəllif:", "By") near the headline."""
    h1 = tree.xpath("//h1")
    elements = _elements_after(tree, h1[0]) if h1 else list(tree.iter())
    out = []
    for el in elements[:400]:
        if not isinstance(el.tag, str) or el.tag in ("script", "style") or not el.text:
            continue
        m = _BYLINE_LABEL.match(el.text)
        if not m or _outside_article(el):
            continue
        rest = _text(el)[m.end() :].strip() if len(_text(el)) > m.end() else ""
        if not rest:
            nxt = el.getnext()
            rest = (el.tail or "").strip() or (_text(nxt) if nxt is not None else "")
        if rest:
            out.append(rest)
    return out


def _author(tree: Any, ld: dict[str, Any], fallback: Callable[[], str | None]) -> str | None:
    candidates: list[str | None] = []
    ld_author = ld.get("author")
    for item in ld_author if isinstance(ld_author, list) else [ld_author]:
        if isinstance(item, dict):
            candidates.append(item.get("name"))
        elif isinstance(item, str):
            candidates.append(item)
    candidates.append(_meta(tree, "author", "article:author", "dc.creator"))
    candidates.extend(_labelled_bylines(tree))
    xp = (
        '//*[@rel="author" or @itemprop="author" or contains(@class,"author") or contains(@class,"byline")'
        ' or contains(@class,"yazar") or contains(@class,"muellif") or contains(@class,"reporter")'
        ' or contains(@class,"muhabir") or contains(@class,"writer")]'
    )
    for el in tree.xpath(xp):
        if el.tag in ("script", "style", "meta") or _outside_article(el):
            continue
        names = el.xpath('.//*[@itemprop="name" or contains(@class,"name")]')
        candidates.append(_text(names[0]) if names else _text(el))
    for cand in candidates:
        if cand and not cand.startswith("http"):
            cleaned = clean_author(cand)
            if cleaned:
                return cleaned
    last = fallback()
    return clean_author(last) if last and not last.startswith("http") else None


# -- published date -----------------------------------------------------------------------------
def _iso_day(value: str | None) -> str | None:
    if not value:
        return None
    hits = find_dates(value)
    return hits[0].value.isoformat() if hits and hits[0].has_year else None


def _published(tree: Any, ld: dict[str, Any], html: str) -> str | None:
    structured = [
        ld.get("datePublished"),
        _meta(tree, "article:published_time", "datePublished", "pubdate", "publishdate", "date", "dc.date"),
    ]
    structured += [str(t) for t in tree.xpath('//time[@itemprop="datePublished"]/@datetime')]
    structured += [str(t) for t in tree.xpath('//*[@itemprop="datePublished"]/@content')]
    for value in structured:
        day = _iso_day(value if isinstance(value, str) else None)
        if day:
            return day
    day = _date_near_headline(tree)
    if day:
        return day
    from htmldate import find_date

    # Metadata and URL only: htmldate's free-text search turns a year in the story ("in 2014") into a
    # publication date (2014-01-01); a page that states no date gets none.
    found = find_date(html, original_date=True, extensive_search=False, outputformat="%Y-%m-%d")
    return str(found) if found else None


DATELINE_CHARS = 160


def _date_near_headline(tree: Any) -> str | None:
    """The first dated line after the headline that is not an 'updated' line.

    Sidebars, tickers and related boxes also carry dates; starting at the <h1> and skipping
    update labels keeps the first-publication date of the article itself.
    """
    h1 = tree.xpath("//h1")
    seen = 0
    body = 0  # paragraphs of running text passed: a dateline comes before the story, not inside it
    candidates = _elements_after(tree, h1[0]) if h1 else list(tree.iter())
    for el in candidates:
        if not isinstance(el.tag, str) or el.tag in ("script", "style"):
            continue
        own = " ".join(((el.text or "") + " " + " ".join((c.tail or "") for c in el)).split())
        if len(own) > DATELINE_CHARS:
            # A date inside running text is an event's ("signed on 20 February 2008"), not the
            # page's; only a line that opens with it ("12.03.2025 — Bakı") is a dateline.
            hits = [h for h in find_dates(own[:DATELINE_CHARS]) if h.has_year and h.start <= 20]
            if hits and not _UPDATED.search(own[:DATELINE_CHARS]) and body == 0:
                return hits[0].value.isoformat()
            body += el.tag == "p"
            if body >= 3:
                break
            continue
        dt = el.get("datetime")
        parent = el.getparent()
        parent_class = (parent.get("class") or "") if parent is not None else ""
        context = f"{own} {el.get('class') or ''} {parent_class}"
        if dt and not _UPDATED.search(context):
            day = _iso_day(dt)
            if day:
                return day
        if own and not _UPDATED.search(own):
            hits = [h for h in find_dates(own) if h.has_year]
            if hits:
                return hits[0].value.isoformat()
        seen += 1
        if seen > 400:
            break
    return None


def _elements_after(tree: Any, anchor: Any) -> list[Any]:
    elements = list(tree.iter())
    try:
        i = elements.index(anchor)
    except ValueError:
        return elements
    return elements[i:] + elements[:i]


# -- main text ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Boilerplate:
    """The vocabulary of ``boilerplate.toml``, compiled once."""

    block: frozenset[str]
    small: frozenset[str]
    small_max_chars: int
    lines: re.Pattern[str]


@lru_cache(maxsize=1)
def boilerplate() -> Boilerplate:
    data = tomllib.loads(resources.files("pipeline").joinpath("boilerplate.toml").read_text(encoding="utf-8"))
    containers, lines = data["containers"], data["lines"]["patterns"]
    return Boilerplate(
        block=frozenset(containers["block"]),
        small=frozenset(containers["small"]),
        small_max_chars=int(containers["small_max_chars"]),
        lines=re.compile("|".join(f"(?:{p})" for p in lines), re.IGNORECASE),
    )


_NAME_PART = re.compile(r"[-_]+")
# "no-sidebar", "has-comments", "with-related": a page-level flag on a wrapper, not the box itself.
_FLAG_PARTS = frozenset({"no", "has", "with", "without", "show", "hide", "enable", "disable"})


def _name_keys(el: Any) -> frozenset[str]:
    """Parts of the element's class names and id ("story__dateline" → story, dateline, story-dateline)."""
    return _keys_of(f"{el.get('class') or ''} {el.get('id') or ''}".lower())


@lru_cache(maxsize=8192)
def _keys_of(names: str) -> frozenset[str]:
    # cached: sites repeat the same few hundred class strings on every element of a kind
    keys: set[str] = set()
    for name in names.split():
        parts = [p for p in _NAME_PART.split(name) if p]
        if _FLAG_PARTS & set(parts):
            continue
        keys.update(parts)
        keys.update(f"{a}-{b}" for a, b in itertools.pairwise(parts))
        keys.add(name)
    return frozenset(keys)


def _prune_boilerplate(tree: Any) -> int:
    """Remove containers named as boilerplate (tr/az/en vocabulary) from ``tree``; return how many.

    trafilatura's own list is English; Turkish and Azerbaijani sites name their comment, related,
    ticker and share boxes in their language, and those survive it. Guarded so that a site which
    names its article wrapper with one of these words keeps its text: an element holding the
    headline or more than a third of the page's paragraph text is never removed.
    """
    vocab = boilerplate()
    total = sum(len(_text(p)) for p in tree.iter("p")) or 1
    doomed = []
    for el in tree.xpath("//*[@class or @id]"):
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "h1"):
            continue
        keys = _name_keys(el)
        block = bool(keys & vocab.block)
        small = bool(keys & vocab.small)
        if not (block or small):
            continue
        text_len = len(_text(el))
        if not block and text_len > vocab.small_max_chars:
            continue
        if el.xpath(".//h1") or sum(len(_text(p)) for p in el.iter("p")) > total / 3:
            continue
        if any(len(_text(p)) > text_len + 20 for p in el.iterancestors("p")):
            continue  # inline in a paragraph ("<span class=dateline>KOBE –</span> A total of…")
        doomed.append(el)
    removed = 0
    doomed_set = set(doomed)
    for el in doomed:
        parent = el.getparent()
        if parent is None or any(a in doomed_set for a in el.iterancestors()):
            continue
        # keep the tail text, which belongs to the parent
        if el.tail and el.tail.strip():
            prev = el.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + el.tail
            else:
                parent.text = (parent.text or "") + el.tail
        parent.remove(el)
        removed += 1
    return removed


_TIME = re.compile(r"\b\d{1,2}[:.]\d{2}(?:\s*[ap]\.?m\.?)?\b", re.IGNORECASE)
_DATE_LABEL = re.compile(
    r"\b(?:published|updated|last updated|posted|on|at|yayınlanma|yayımlanma|güncellenme|güncelleme|"
    r"tarihi?|dərc edilib|dərc olunub|yenilənib|yeniləndi|tarix|saat|gmt|utc|[+-]\d{2}:?\d{2})\b",
    re.IGNORECASE,
)


def _is_dateline(par: str) -> bool:
    """A short paragraph that is only a date, times and labels ("8 October 2024, 09:40 · Updated …")."""
    if len(par) > 160:
        return False
    hits = find_dates(par)
    if not any(h.has_year for h in hits):
        return False
    rest = par
    for hit in reversed(hits):
        rest = rest[: hit.start] + " " + rest[hit.end :]
    rest = _DATE_LABEL.sub(" ", _TIME.sub(" ", rest))
    return len(re.findall(r"[^\W\d_]{2,}", rest)) <= 2


def clean_paragraphs(text: str, title: str | None = None) -> list[str]:
    """trafilatura's lines → article paragraphs: whitespace collapsed, boilerplate lines dropped.

    Drops the headline when it is repeated, datelines, and short lines that match the line patterns
    of ``boilerplate.toml`` (also-read headings, comment notes, share/subscribe prompts, rights notes).
    """
    vocab = boilerplate()
    out = []
    for line in text.splitlines():
        par = " ".join(line.split())
        if not par or (title and par == title):
            continue
        bare = par.lstrip("-•*· ").strip()
        if len(bare) <= 300 and (vocab.lines.fullmatch(bare) or _is_dateline(bare)):
            continue
        out.append(par)
    return out


@lru_cache(maxsize=1)
def _trafilatura() -> Any:
    """Import trafilatura once. Its downloader probes urllib3 for optional SOCKS support and the
    probe warns (DependencyWarning) when PySocks is absent; we never download through it, so that
    warning is silenced here instead of failing runs that turn warnings into errors."""
    from urllib3.exceptions import DependencyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DependencyWarning)
        import trafilatura
    return trafilatura


def _main_text(html: str, url: str | None) -> str:
    """Main text, one paragraph per line.

    The page is parsed with trafilatura's own loader, pruned of named boilerplate containers and
    handed over as a tree. Tables are kept (spec sheets and figures are article content here);
    when the precise pass returns almost nothing, a recall-favouring pass on the unpruned page
    is tried.
    """
    trafilatura = _trafilatura()
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        raise DocumentError("unparseable HTML")
    pruned = _prune_boilerplate(tree)
    log.debug("pruned %d boilerplate containers", pruned)
    result = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,
        include_tables=True,
        include_images=False,
        deduplicate=False,
    )
    text = (getattr(result, "text", None) or "").strip()
    if len(text) < MIN_TEXT_CHARS:
        # Pruning or precision settings can drop short or unusual pages: retry favouring recall.
        second = trafilatura.bare_extraction(html, url=url, favor_recall=True, include_comments=False)
        text2 = (getattr(second, "text", None) or "").strip()
        if len(text2) > len(text):
            text = text2
    return text


class _TrafilaturaMetadata:
    """trafilatura's own title/author guess, computed only when our rules found nothing (it costs
    a full metadata pass), on the unpruned page so that bylines are still there."""

    def __init__(self, html: str, url: str | None) -> None:
        self._html, self._url = html, url
        self._doc: Any = None
        self._done = False

    def _get(self, field: str) -> str | None:
        if not self._done:
            from trafilatura.metadata import extract_metadata

            self._done = True
            self._doc = extract_metadata(self._html, self._url)
        value = getattr(self._doc, field, None)
        return value if isinstance(value, str) else None

    def title(self) -> str | None:
        return self._get("title")

    def author(self) -> str | None:
        return self._get("author")


def _canonical_url(tree: Any) -> str | None:
    for href in [*tree.xpath('//link[@rel="canonical"]/@href'), _meta(tree, "og:url")]:
        if isinstance(href, str) and href.startswith(("http://", "https://")):
            return href.strip()
    return None


def extract(page: Page) -> Document:
    """Extract one page. Raises DocumentError when it holds no article."""
    tree = _parse(page.html)
    ld = _article_ld(tree)
    url_hint = page.url if page.url.startswith("http") else None
    body = _main_text(page.html, url_hint)
    if len(body) < MIN_TEXT_CHARS:
        raise DocumentError("no main text found")
    meta = _TrafilaturaMetadata(page.html, url_hint)
    title = _title(tree, ld, meta.title)
    paragraphs = clean_paragraphs(body, title)
    if not paragraphs:
        raise DocumentError("no main text found")
    text = "\n\n".join([title, *paragraphs])
    html_lang = (tree.get("lang") or tree.get("xml:lang") or "").strip() or None
    url = _canonical_url(tree) or page.url
    return Document(
        doc_id=sha1(url),
        url=url,
        language=langid.detect(text, html_lang),
        title=title,
        published=_published(tree, ld, page.html),
        author=_author(tree, ld, meta.author),
        text=text,
        source=page.source,
        html_lang=html_lang,
    )
