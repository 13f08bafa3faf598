"""A watch digest as Markdown (an email body) and as an Atom 1.0 feed.

Crawled text is untrusted: in Markdown every piece of it is escaped (HTML characters as entities,
Markdown punctuation with a backslash) and only http(s) links are written; in Atom ElementTree
escapes it. Atom entry ids are derived from content, so a feed reader shows each item once
however many feeds list it: ``urn:defintel:document:<doc_id>`` for a document and
``urn:defintel:deal:<deal_id>:<version>`` for a state of a deal (a corrected value is a new entry).
"""

from __future__ import annotations

import re
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.watch import Digest

ATOM_NS = "http://www.w3.org/2005/Atom"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()|~])")


def md_text(text: object) -> str:
    """Crawled text made inert in Markdown: no HTML, no links, no emphasis, one line."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def safe_link(url: str | None) -> str | None:
    """An http(s) URL with the characters that would end a Markdown link target escaped, else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def _money(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return f"{value['amount']:,} {value['currency'] or ''}".strip()


def deal_headline(deal: dict[str, Any]) -> str:
    parties = ", ".join(deal["parties"]) or "unnamed parties"
    money = _money(deal["value"])
    head = f"{deal['type'].replace('_', ' ')}: {parties}"
    if money:
        head += f" — {money}"
    if deal.get("subject"):
        head += f" ({deal['subject']})"
    return head


def markdown(digest: Digest) -> str:
    """The digest as an email body: per item a headline, source, language, date, one evidence line
    and a link."""
    docs, deals, ents = digest.documents, digest.deals, digest.entities_new
    lines = [
        f"# Watchlist {md_text(digest.watchlist)}: {len(docs)} new document{'s' * (len(docs) != 1)}, "
        f"{len(deals)} deal{'s' * (len(deals) != 1)}, {len(ents)} new entit{'ies' if len(ents) != 1 else 'y'}",
        "",
        f"From {md_text(digest.since or 'the start')} to {md_text(digest.until)}.",
        "",
    ]
    if digest.empty:
        lines += ["Nothing new.", ""]
    if docs:
        lines += ["## Documents", ""]
        for d in docs:
            lines += _doc_md(d)
    if deals:
        lines += ["## Deals", ""]
        for deal in deals:
            lines += _deal_md(deal)
    if ents:
        lines += ["## New entities", ""]
        for e in ents:
            near = ", ".join(md_text(n) for n in e.get("cooccurs_with", []))
            lines.append(f"- **{md_text(e['canonical'])}** ({e['label']}), named with {near}")
        lines.append("")
    return "\n".join(lines)


def _doc_md(d: dict[str, Any]) -> list[str]:
    link = safe_link(d["url"])
    host = urlsplit(d["url"]).netloc or d["url"]
    ev = d["evidence"][0] if d["evidence"] else None
    out = [
        f"### {md_text(d['title'])}",
        "",
        f"Source: {md_text(host)} · Language: {md_text(d['language'])} · Date: {md_text(d['published'] or 'undated')}"
        f" · Matched: {md_text(', '.join(d['matched']))}",
        "",
    ]
    if ev is not None:
        out += [f"> {md_text(ev['text'])}", ""]
    if d.get("republished"):
        out += [f"Also republished at {len(d['republished'])} other address(es).", ""]
    if link:
        out += [f"<{link}>", ""]
    return out


def _deal_md(deal: dict[str, Any]) -> list[str]:
    report = deal["reports"][0]
    link = safe_link(report["url"])
    host = urlsplit(report["url"]).netloc or report["url"]
    change = "corrected" if deal["change"] == "changed" else "new"
    out = [
        f"### {md_text(deal_headline(deal))} ({change})",
        "",
        f"Source: {md_text(host)} · Language: {md_text(report['language'])} · Date: "
        f"{md_text(report['published'] or 'undated')} · Matched: {md_text(', '.join(deal['matched']))}",
        "",
        f"> {md_text(report['evidence']['text'])}",
        "",
    ]
    if link:
        out += [f"<{link}>", ""]
    return out


def _atom_time(ts: str | None, fallback: str) -> str:
    """RFC 3339 as Atom wants it: a bare date becomes midnight UTC."""
    if not ts:
        return fallback
    if len(ts) == 10:
        return f"{ts}T00:00:00+00:00"
    return ts


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def atom(digest: Digest) -> str:
    """The digest as an Atom 1.0 feed: one entry per document and per deal, stable ids."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _sub(feed, "id", f"urn:defintel:watchlist:{quote(digest.watchlist)}")
    _sub(feed, "title", f"defintel watchlist {digest.watchlist}")
    _sub(feed, "updated", digest.until)
    _sub(feed, "generator", "defintel")
    author = _sub(feed, "author")
    _sub(author, "name", "defintel")
    for d in digest.documents:
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"urn:defintel:document:{d['doc_id']}")
        _sub(entry, "title", d["title"] or d["url"])
        if safe_link(d["url"]):
            _sub(entry, "link", href=d["url"], rel="alternate")
        _sub(entry, "updated", _atom_time(d.get("first_seen"), digest.until))
        if d["published"]:
            _sub(entry, "published", _atom_time(d["published"], digest.until))
        _sub(entry, "category", term=d["language"])
        ev = d["evidence"][0]["text"] if d["evidence"] else ""
        _sub(entry, "summary", f"{', '.join(d['matched'])}: {ev}", type="text")
    for deal in digest.deals:
        report = deal["reports"][0]
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"urn:defintel:deal:{deal['deal_id']}:{deal['version']}")
        change = "corrected" if deal["change"] == "changed" else "new"
        _sub(entry, "title", f"{deal_headline(deal)} ({change})")
        if safe_link(report["url"]):
            _sub(entry, "link", href=report["url"], rel="alternate")
        _sub(entry, "updated", _atom_time(deal.get("seen"), digest.until))
        _sub(entry, "category", term=deal["type"])
        _sub(entry, "summary", f"{', '.join(deal['matched'])}: {report['evidence']['text']}", type="text")
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temp name beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
