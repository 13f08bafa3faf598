"""Story clusters: the articles that report one event — republications, wire stories re-edited by
another outlet, one press release in Turkish and in Azerbaijani — grouped under one story id.

Signals over pairs of documents published at most ``WINDOW_DAYS`` apart (a hard limit when both
dates are known): a republication link (``duplicate_of``), MinHash similarity of the bodies (the
signatures dedup already stored; a re-edited copy keeps part of its shingles), a deal both report
(as a share of the deals either reports: the deal matching already links reports across languages), the overlap of the organisations and
people they name, and the similarity of their headline + lead in the index's embedder (scaled per
embedder, like deal evidence). Clustering is average-linkage, best pair first, as for deals.
The benchmark is ``benchmarks/deals_bench.py`` (its story section).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

from pipeline.deals import republication_root, similarity_bonus
from pipeline.linkage import average_linkage
from pipeline.records import StoryDoc, sha1

WINDOW_DAYS = 3
THRESHOLD = 2.0
LEAD_CHARS = 400

Vectors = npt.NDArray[np.float32]


def lead_text(title: str, text: str) -> str:
    """Headline + the first words of the body: what tells one event from another."""
    body = text[len(title) :] if text.startswith(title) else text
    return f"{title}. {body.strip()[:LEAD_CHARS]}"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


_FIGURE = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*")
MIN_FIGURES = 3


def figures(text: str) -> frozenset[str]:
    """The figures a text states, written the same in every language (``1.200`` / ``1200`` /
    ``1,200`` → ``1200``; ``7,62`` → ``7.62``), without years: one press release in two languages
    states the same ones, another event rarely does."""
    out = set()
    for raw in _FIGURE.findall(text):
        if re.fullmatch(r"\d{1,3}([.,]\d{3})+", raw):
            value = re.sub(r"[.,]", "", raw)
        else:
            value = raw.replace(",", ".")
        if re.fullmatch(r"(19|20)\d\d", value):
            continue
        out.add(value.lstrip("0") or "0")
    return frozenset(out)


def minhash_similarity(a: bytes | None, b: bytes | None) -> float:
    if not a or not b or len(a) != len(b):
        return 0.0
    va, vb = np.frombuffer(a, dtype=np.uint64), np.frombuffer(b, dtype=np.uint64)
    return float((va == vb).mean())


def story_pair_score(
    a: StoryDoc,
    b: StoryDoc,
    *,
    republished: bool,
    similarity: float,
    figures_a: frozenset[str] = frozenset(),
    figures_b: frozenset[str] = frozenset(),
) -> float | None:
    """How strongly two documents look like reports of one event; None: they cannot be."""
    da, db = _day(a.published), _day(b.published)
    apart = None if da is None or db is None else abs((da - db).days)
    if apart is not None and apart > WINDOW_DAYS and not republished:
        return None
    score = 3.0 if republished else 0.0
    # Re-edited copies keep a part of their 5-word shingles; unrelated texts share almost none.
    score += 3.0 * min(1.0, max(0.0, (minhash_similarity(a.minhash, b.minhash) - 0.05) / 0.35))
    # Deals both report, as a share of those either reports: the same signing is the news of both
    # (a later article recalling one of the deals as background shares only part of them).
    deals = a.deal_ids | b.deal_ids
    if deals:
        score += 1.5 * len(a.deal_ids & b.deal_ids) / len(deals)
    ents = a.entity_ids | b.entity_ids
    if ents:
        score += 1.25 * len(a.entity_ids & b.entity_ids) / len(ents)
    score += similarity
    # The same figures (head counts, quantities, amounts, days) in both: language-independent.
    if min(len(figures_a), len(figures_b)) >= MIN_FIGURES:
        score += 1.5 * len(figures_a & figures_b) / len(figures_a | figures_b)
    if apart is None:
        score -= 0.5  # an undated page joins a story on stronger evidence only
    return score


def cluster_stories(
    docs: Sequence[StoryDoc],
    vectors: dict[str, Vectors],
    embedder: str,
    figures_of: Mapping[str, frozenset[str]] | None = None,
) -> list[list[StoryDoc]]:
    """Group documents into stories (``figures_of``: each document's ``figures``). Deterministic
    for a given input."""
    figs = figures_of or {}
    items = sorted(docs, key=lambda d: d.doc_id)
    dup = {d.doc_id: d.duplicate_of for d in items}
    order = sorted(range(len(items)), key=lambda i: (items[i].published or "", items[i].doc_id))
    keys = [f"doc:{d.doc_id}" for d in items]
    have = [i for i, k in enumerate(keys) if k in vectors]
    sims: dict[tuple[int, int], float] = {}
    if len(have) > 1:
        m = np.stack([vectors[keys[i]] for i in have])
        cos = m @ m.T
        sims = {(x, y): float(cos[p, q]) for p, x in enumerate(have) for q, y in enumerate(have) if x < y}
    scores: dict[tuple[int, int], float | None] = {}
    for pos, i in enumerate(order):
        di = _day(items[i].published)
        for j in order[pos + 1 :]:
            dj = _day(items[j].published)
            a, b = (i, j) if i < j else (j, i)
            republished = republication_root(items[a].doc_id, dup) == republication_root(items[b].doc_id, dup)
            if di is not None and dj is not None and (dj - di).days > WINDOW_DAYS and not republished:
                continue  # dates sorted: only republications can still be in range (rare, checked)
            sim = similarity_bonus(sims[(a, b)], embedder) if (a, b) in sims else 0.0
            scores[(a, b)] = story_pair_score(
                items[a],
                items[b],
                republished=republished,
                similarity=sim,
                figures_a=figs.get(items[a].doc_id, frozenset()),
                figures_b=figs.get(items[b].doc_id, frozenset()),
            )

    clusters = average_linkage(len(items), scores, THRESHOLD, missing=None)
    return [[items[i] for i in c] for c in clusters]


def story_id(members: Sequence[StoryDoc]) -> str:
    """The id of a story: from its earliest document, so it stays while later reports join."""
    first = min(members, key=lambda d: (d.published or "9999", d.doc_id))
    return sha1("story", first.doc_id)


def figures_blob(values: frozenset[str]) -> bytes:
    return json.dumps(sorted(values)).encode()


def figures_from_blob(blob: bytes) -> frozenset[str]:
    return frozenset(json.loads(blob.decode()))
