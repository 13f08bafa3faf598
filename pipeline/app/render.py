"""HTML for the app, built from untrusted crawled text: every piece of page text is ``html.escape``d.

Only this module writes HTML. Tags come from constants here; attribute values that come from the
store (ids, URLs) are escaped too, and URLs must be http(s) to become links. The HTML never holds a
raw newline (``<br>`` instead): Streamlit's markdown would end a raw-HTML block at a blank line and
read the rest as markdown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.textnorm import fold

# displaCy's palette for the labels defintel uses.
LABEL_COLOURS = {"ORG": "#7aecec", "PERSON": "#aa9cfc", "GPE": "#feca74"}
LANG_COLOURS = {"tr": "#e30a17", "az": "#0092bc", "en": "#3c3b6e"}
EVIDENCE_STYLE = "background:#fff3b0;border-bottom:2px solid #e0a800"
CSS = (
    "<style>"
    ".di-text{line-height:2.3;font-size:0.95rem}"
    ".di-ent{padding:0.2em 0.35em;margin:0 0.1em;border-radius:0.35em;color:#111;text-decoration:none}"
    ".di-ent .di-lab{font-size:0.65em;font-weight:700;margin-left:0.4em;text-transform:uppercase;"
    "vertical-align:middle}"
    ".di-badge{color:#fff;border-radius:0.3em;padding:0.05em 0.45em;font-size:0.75em;font-weight:700}"
    ".di-snip mark{background:#ffe066;padding:0 0.1em}"
    ".di-story{font-size:0.85em;color:#444}.di-story summary{cursor:pointer;color:#1c7ed6}"
    ".di-chip{display:inline-block;border-radius:1em;padding:0 0.6em;margin:0.1em;font-size:0.8em;"
    "color:#111;text-decoration:none}"
    "</style>"
)


def esc(text: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if text is None else str(text), quote=True)


def _br(escaped: str) -> str:
    """Line breaks as ``<br>``: ``\r\n``, ``\n`` and a lone ``\r`` alike. Markdown reads a lone
    ``\r`` as a line break too, and a blank line made of two ends the HTML block around the text."""
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def link(page: str, **params: str) -> str:
    """An in-app link (query parameters the app reads on load); values are URL-quoted."""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in {"page": page, **params}.items())
    return "?" + query


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) (a ``javascript:`` URL from a page never becomes a link)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def a(href: str, inner_html: str, *, style: str = "", cls: str = "", new_tab: bool = False) -> str:
    """An anchor; ``inner_html`` must already be escaped/built here."""
    target = ' target="_blank" rel="noopener noreferrer"' if new_tab else ' target="_self"'
    attrs = (f' class="{cls}"' if cls else "") + (f' style="{style}"' if style else "")
    return f'<a href="{esc(href)}"{attrs}{target}>{inner_html}</a>'


def lang_badge(language: str) -> str:
    colour = LANG_COLOURS.get(language, "#666")
    return f'<span class="di-badge" style="background:{colour}">{esc(language.upper() or "?")}</span>'


# -- search snippets ---------------------------------------------------------------------------
def highlight_terms(text: str, words: Iterable[str]) -> str:
    """``text`` escaped, with every occurrence of ``words`` (case- and accent-insensitive) in <mark>.

    Matching runs on the folded text (same length as the original), so a match found there maps
    back to the same offsets in the text as written.
    """
    folded = fold(text)
    exact = len(folded) != len(text)  # folding changed lengths: match the text as written
    spans: list[tuple[int, int]] = []
    for word in {w for w in words if w.strip()}:
        pattern, haystack = (word, text) if exact else (fold(word), folded)
        for m in re.finditer(re.escape(pattern), haystack, flags=re.IGNORECASE):
            spans.append(m.span())
    out: list[str] = []
    pos = 0
    for s, e in _merge(spans):
        out.append(esc(text[pos:s]))
        out.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    out.append(esc(text[pos:]))
    return _br("".join(out))


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def chip(name: str, label: str, href: str) -> str:
    colour = LABEL_COLOURS.get(label, "#ddd")
    return a(href, esc(name), cls="di-chip", style=f"background:{colour}")


def story_more(others: Sequence[Mapping[str, Any]]) -> str:
    """ "+3 reports in 2 languages", expandable to the story's other documents (a ``<details>``)."""
    if not others:
        return ""
    langs = sorted({str(o["language"]) for o in others})
    n = len(others)
    summary = f"+{n} report{'s' if n != 1 else ''} in {len(langs)} language{'s' if len(langs) != 1 else ''}"
    items = "".join(
        f"<li>{esc(str(o['language']).upper())} · {esc(o.get('published') or 'undated')} · "
        f"{a(link('document', doc=str(o['doc_id'])), esc(o.get('title') or '(untitled)'))}</li>"
        for o in others
    )
    return f'<details class="di-story"><summary>{esc(summary)}</summary><ul>{items}</ul></details>'


def result_card(
    hit: Mapping[str, Any],
    entities: Sequence[Mapping[str, Any]],
    agreements: Sequence[str],
    story: Sequence[Mapping[str, Any]] = (),
) -> str:
    """One search result: linked title, source, date, language badge, highlighted snippet, facts;
    ``story``: the story's other documents, collapsed under "+N reports in M languages"."""
    source = urlsplit(hit["url"]).netloc or hit["url"]
    parts = [
        '<div class="di-card">',
        f"<div>{lang_badge(hit['language'])} ",
        a(link("document", doc=hit["doc_id"]), f"<b>{esc(hit['title'] or '(untitled)')}</b>"),
        "</div>",
        f'<div style="color:#666;font-size:0.85em">{esc(source)} · {esc(hit["published"] or "undated")}</div>',
        f'<div class="di-snip">{highlight_terms(hit["snippet"], hit.get("matched_terms", ()))}</div>',
    ]
    if entities:
        chips = "".join(chip(e["canonical"], e["label"], link("entity", id=e["entity_id"])) for e in entities)
        parts.append(f"<div>{chips}</div>")
    if agreements:
        parts.append(f'<div style="font-size:0.85em">Agreements: {esc(", ".join(agreements))}</div>')
    if story:
        parts.append(story_more(story))
    parts.append("</div>")
    return "".join(parts)


# -- document text -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Marked:
    """A span to decorate: an entity mention (``entity_id`` set) or an evidence sentence."""

    start: int
    end: int
    label: str = ""
    entity_id: str = ""
    title: str = ""


def document_html(text: str, mentions: Sequence[Marked], evidence: Sequence[Marked]) -> str:
    """The text with entities highlighted displaCy-style (each a link to its entity page) and the
    evidence sentences of agreements underlined; overlapping mentions keep the first one."""
    n = len(text)
    ments: list[Marked] = []
    last = 0
    for m in sorted(mentions, key=lambda m: (m.start, -m.end)):
        if 0 <= m.start < m.end <= n and m.start >= last:
            ments.append(m)
            last = m.end
    evs = [e for e in evidence if 0 <= e.start < e.end <= n]
    bounds = {0, n}
    for sp in (*ments, *evs):
        bounds.update((sp.start, sp.end))
    cuts = sorted(bounds)
    mention_at = {m.start: m for m in ments}
    out: list[str] = ['<div class="di-text">']
    current: Marked | None = None
    for s, e in pairwise(cuts):
        if current is not None and s >= current.end:
            current = None
        if s in mention_at:
            current = mention_at[s]
        piece = _br(esc(text[s:e]))
        in_ev = [x for x in evs if x.start <= s and e <= x.end]
        if in_ev:
            piece = f'<span style="{EVIDENCE_STYLE}" title="{esc(in_ev[0].title)}">{piece}</span>'
        if current is None:
            out.append(piece)
            continue
        colour = LABEL_COLOURS.get(current.label, "#ddd")
        label = f'<span class="di-lab">{esc(current.label)}</span>' if e == current.end else ""
        out.append(
            a(
                link("entity", id=current.entity_id),
                piece + label,
                cls="di-ent",
                style=f"background:{colour}",
            )
        )
    out.append("</div>")
    return "".join(out)


def legend() -> str:
    items = "".join(
        f'<span class="di-ent" style="background:{c}">{esc(lab)}</span>' for lab, c in LABEL_COLOURS.items()
    )
    return f'<div>{items} <span style="{EVIDENCE_STYLE}">agreement evidence</span></div>'


def external_link(url: str | None, text: str = "Original page ↗") -> str:
    """A link to the original page, or the URL as plain text when it is not http(s)."""
    href = safe_url(url)
    if href is None:
        return f"<span>{esc(url or '')}</span>"
    return a(href, esc(text), new_tab=True)


def watch_card(doc: Mapping[str, Any]) -> str:
    """One new document of a watchlist: linked title (the document page), source, language, date,
    why it matched, and the evidence sentence."""
    source = urlsplit(doc["url"]).netloc or doc["url"]
    why = "".join(f'<span class="di-chip" style="background:#e8eefc">{esc(m)}</span>' for m in doc["matched"])
    evidence = doc["evidence"][0]["text"] if doc["evidence"] else ""
    parts = [
        '<div style="margin-bottom:1.1rem">',
        f"<div>{lang_badge(doc['language'])} ",
        a(link("document", doc=doc["doc_id"]), f"<b>{esc(doc['title'] or '(untitled)')}</b>"),
        "</div>",
        f'<div style="color:#666;font-size:0.85em">{esc(source)} · {esc(doc["published"] or "undated")} · {why}</div>',
        f'<div style="{EVIDENCE_STYLE};display:inline">{esc(evidence)}</div>',
        "</div>",
    ]
    return "".join(parts)


def deal_card(deal: Mapping[str, Any], headline: str) -> str:
    """One new or corrected deal of a watchlist: headline, evidence, link to its report."""
    report = deal["reports"][0]
    change = "corrected" if deal.get("change") == "changed" else "new"
    parts = [
        '<div style="margin-bottom:1.1rem">',
        f"<div>{lang_badge(report['language'])} <b>{esc(headline)}</b> ({esc(change)}) ",
        a(link("document", doc=report["doc_id"]), "report"),
        "</div>",
        f'<div style="{EVIDENCE_STYLE};display:inline">{esc(report["evidence"]["text"])}</div>',
        "</div>",
    ]
    return "".join(parts)


def _muted(inner_html: str) -> str:
    return f"<span style='color:#666'>{inner_html}</span>"


def document_header(title: str, language: str, meta_html: str, url: str | None) -> str:
    """The document page's head: title, language badge, (escaped) date · byline · source, link."""
    return (
        f"<div><h3>{esc(title)}</h3>{lang_badge(language)} "
        f'<span style="color:#666">{meta_html}</span> · {external_link(url)}</div>'
    )


def duplicate_list(docs: Sequence[Mapping[str, Any]]) -> str:
    """A document's near-duplicates, each linked, marked copy or first seen."""
    items = "".join(
        f"<li>{lang_badge(d['language'])} "
        f"{a(link('document', doc=d['doc_id']), esc(d['title']))} "
        + _muted(f"{esc(d['published'] or 'undated')}{' (copy)' if d['duplicate_of'] else ' (first seen)'}")
        + "</li>"
        for d in docs
    )
    return f"<div><ul>{items}</ul></div>"


def entity_header(canonical: str, label: str, in_registry: bool, entity_id: str) -> str:
    """The entity page's head: name, type badge, where it comes from, short id."""
    colour = LABEL_COLOURS.get(label, "#ddd")
    origin = "registry entity" if in_registry else "found in the pages (not in the registry)"
    return (
        f"<div><h3>{esc(canonical)} "
        f'<span class="di-ent" style="background:{colour}">{esc(label)}</span></h3>'
        + _muted(f"{origin} · id {esc(entity_id[:12])}")
        + "</div>"
    )


def story_list(groups: Sequence[Sequence[Mapping[str, Any]]]) -> str:
    """One line per story: its first document, the others folded under "+N reports in M languages"."""
    items = "".join(
        f"<li>{lang_badge(g[0]['language'])} {esc(g[0]['published'] or 'undated')} · "
        f"{a(link('document', doc=g[0]['doc_id']), esc(g[0]['title']))}"
        f"{story_more(g[1:])}</li>"
        for g in groups
    )
    return f"<div><ul>{items}</ul></div>"


def conflict_line(field: str, values: Sequence[tuple[str, int]]) -> str:
    """Where a deal's reports disagree: the field and each value with how many reports give it."""
    shown = "; ".join(f"{esc(text)} ({n} report{'s' if n != 1 else ''})" for text, n in values)
    return f"<div>⚠ <b>{esc(field)}</b>: {shown}</div>"


def deal_sources(reports: Sequence[Mapping[str, Any]]) -> str:
    """A deal's reports: language, date, linked title and the sentence stating it."""
    items = "".join(
        f"<li>{lang_badge(r['language'])} {esc(r['published'] or 'undated')} · "
        f"{a(link('document', doc=r['doc_id']), esc(r['title']))}"
        f"<br><i>{esc(r['evidence'])}</i></li>"
        for r in reports
    )
    return f"<ul>{items}</ul>"


def cooccurring(entities: Sequence[Mapping[str, Any]]) -> str:
    """Entities named with another, as linked chips with their document counts."""
    chips = "".join(
        chip(f"{c['name']} ({c['documents']})", c["type"] or "", link("entity", id=c["entity_id"]))
        for c in entities
    )
    return f"<div>{chips}</div>"
