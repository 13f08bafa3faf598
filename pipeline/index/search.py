"""Hybrid search: dense (FAISS) + BM25, fused by reciprocal rank, filters applied before ranking.

Multilingual embedders rank passages in the query's own language above better matches in another
language (the language itself is part of every vector). Dense scores are therefore standardised
per passage language before they are compared: z = (q·p − q·μ_L) / √(qᵀ Σ_L q), with μ_L and Σ_L
the mean and covariance of the language's passage vectors — the same as centering the passages of
each language, computed from small statistics instead of rewriting the index. BM25 ranks are
likewise counted within each language before the reciprocal-rank fusion. On the corpus query set
(e5-small, dense) this lifted recall@5 from 0.62 to 0.86 on the dev split (0.78 → 1.00 held out).

Filters resolve to the set of allowed chunk rows first (SQL for the document side, then one numpy
gather over the chunk → document map); dense and BM25 scores are ranked only within those rows, so
a filtered query still returns k documents when k exist. Dense scoring is one exact matrix-vector
product over the stored vectors; the HNSW graph of ``vectors.py`` answers only unfiltered queries
over a single-language index (per-language standardisation needs every language's best passages).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.index.embedders import Embedder, make_embedder
from pipeline.index.vectors import VectorIndex
from pipeline.nlp.registry import load_registry
from pipeline.records import AGREEMENT_TYPES, Hit
from pipeline.store import Store
from pipeline.textnorm import fold_char, normalize

log = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "lexical")
STOPWORDS_FILE = Path(__file__).with_name("stopwords.txt")
_WORD = re.compile(r"[^\W_]+")
_SUFFIX_MARKS = "'’"
Rows = npt.NDArray[np.int64]
# Passage statistics come from at most this many vectors per language: a sample estimates a mean and
# a 384x384 covariance well and keeps loading a large index fast.
STATS_SAMPLE = 20_000
MIN_LANGUAGE_CHUNKS = 5  # fewer chunks than this: no reliable statistics, scores left as they are


@dataclass(frozen=True, slots=True)
class LanguageStats:
    """Mean and covariance of one language's passage vectors (see the module docstring)."""

    rows: Rows
    mean: npt.NDArray[np.float32]
    cov: npt.NDArray[np.float32]

    def standardise(
        self, q: npt.NDArray[np.float32], scores: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        spread = float(np.sqrt(max(float(q @ self.cov @ q), 1e-12)))
        out: npt.NDArray[np.float32] = ((scores - float(q @ self.mean)) / spread).astype(np.float32)
        return out


class _FoldTable(dict[int, str]):
    """``str.translate`` table computing ``textnorm.fold_char`` once per code point (C-speed folding)."""

    def __missing__(self, key: int) -> str:
        value = fold_char(chr(key))
        self[key] = value
        return value


_FOLD = _FoldTable()


def fast_fold(text: str) -> str:
    """Same result as ``textnorm.fold`` (length-preserving), an order of magnitude faster."""
    return text.translate(_FOLD)


@cache
def stopwords() -> frozenset[str]:
    lines = STOPWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@dataclass(frozen=True, slots=True)
class TermNormaliser:
    """BM25 terms for tr/az/en text, one scheme for every language so a term matches across them.

    Folding makes ı/i, ə/e and diacritics equal (``Azərsilah`` = ``Azersilah``); a suffix written
    after an apostrophe (``MKE'nin``) or a hyphen after an abbreviation (``MKA-nın``) is dropped;
    then words are cut to a ``prefix``-letter stem, a crude but language-agnostic stemmer for
    agglutinative Turkish and Azerbaijani (``fişeklerin`` → ``fisekl``) that leaves English stems.
    """

    prefix: int = 6
    # Measured (benchmarks/search_bench.py, dev split): dropping suffixes did not raise recall or MRR,
    # so it is off; the snippet's matched words still skip such suffixes when it is on.
    drop_suffixes: bool = False

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """(term, start, end) for every term of ``text``; offsets index into ``text``."""
        folded = fast_fold(text)
        stop = stopwords()
        out: list[tuple[str, int, int]] = []
        prev_end = -2
        prev_upper = False
        for m in _WORD.finditer(folded):
            s, e = m.span()
            if self.drop_suffixes and s == prev_end + 1:
                mark = text[s - 1]
                if mark in _SUFFIX_MARKS or (
                    mark == "-" and prev_upper and text[s:e].islower() and e - s <= 5
                ):
                    prev_end = e
                    continue
            word = m.group()
            prev_end, prev_upper = e, text[s:e].isupper()
            if word in stop:
                continue
            out.append((word[: self.prefix], s, e))
        return out

    def terms(self, text: str) -> list[str]:
        return [t for t, _, _ in self.spans(text)]


DEFAULT_TERMS = TermNormaliser()


def terms(text: str) -> list[str]:
    """BM25 terms with the default normaliser."""
    return DEFAULT_TERMS.terms(text)


@dataclass(frozen=True, slots=True)
class Fusion:
    """How the dense and BM25 rankings are fused (reciprocal rank; see the module docstring).

    ``lexical_per_language``: BM25 ranks are counted within each passage language, for the same
    reason dense scores are standardised per language (a query shares words mostly with passages in
    its own language). ``lexical_weight`` scales BM25's reciprocal-rank contribution.
    """

    # Chosen on the dev split of the corpus query set with e5-small (benchmarks/search_bench.py):
    # BM25 ranks per language at half weight beside the dense ranks.
    lexical_weight: float = 0.5
    lexical_per_language: bool = True


DEFAULT_FUSION = Fusion()


@dataclass(frozen=True, slots=True)
class Filters:
    languages: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    entity: str | None = None
    agreement_type: str | None = None

    def active(self) -> bool:
        return bool(self.languages or self.since or self.until or self.entity or self.agreement_type)


class Searcher:
    """Loads chunks, the FAISS index and a BM25 index once; answers many queries."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: Embedder | None = None,
        normaliser: TermNormaliser = DEFAULT_TERMS,
        fusion: Fusion = DEFAULT_FUSION,
    ) -> None:
        self.settings = settings
        self.fusion = fusion
        self.store = store
        self.normaliser = normaliser
        self.embedder = embedder or make_embedder(
            settings.index.embedder, settings.index.e5_model_dir, settings.index.e5_runtime
        )
        self.vectors = VectorIndex.load(index_dir(settings), self.embedder.name, self.embedder.dim)
        self.chunks = store.chunks()
        self.vec_ids: Rows = np.array([c["vec_id"] for c in self.chunks], dtype=np.int64)
        self.row_of = {int(v): i for i, v in enumerate(self.vec_ids)}
        self.chunk_doc = [c["doc_id"] for c in self.chunks]
        self.doc_ids = sorted(set(self.chunk_doc))
        doc_index = {d: i for i, d in enumerate(self.doc_ids)}
        self.chunk_doc_index: Rows = np.array([doc_index[d] for d in self.chunk_doc], dtype=np.int64)
        self._doc_index = doc_index
        ids, self._matrix = self.vectors.contents()  # a view: valid while self.vectors lives
        position = {int(v): i for i, v in enumerate(ids)}
        self._row_pos: Rows = np.array([position.get(int(v), -1) for v in self.vec_ids], dtype=np.int64)
        self._has_vector = self._row_pos >= 0
        self.lang_stats = self._language_stats()
        self._bm25: Any = None
        if self.chunks:
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index([normaliser.terms(c["text"]) or ["∅"] for c in self.chunks], show_progress=False)

    def search(
        self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid"
    ) -> list[Hit]:
        """Top-k documents. ``mode`` is ``hybrid`` (default), ``dense`` or ``lexical`` (for benchmarks)."""
        if mode not in MODES:
            raise UsageError(f"unknown search mode {mode!r} (choose from {', '.join(MODES)})")
        if not query.strip():
            raise UsageError("empty query")
        if k < 1:
            raise UsageError("--k must be at least 1")
        filters = filters or Filters()
        if not self.chunks:
            return []
        allowed_rows = self.allowed_rows(filters)
        if allowed_rows is not None and allowed_rows.size == 0:
            return []
        n_cand = max(self.settings.index.candidates, k * 10)
        query_terms = set(self.normaliser.terms(query))
        dense = self._dense(query, n_cand, allowed_rows) if mode != "lexical" else []
        lexical = self._lexical(query_terms, n_cand, allowed_rows) if mode != "dense" else []
        fused: dict[int, float] = {}
        rrf_k = self.settings.index.rrf_k
        for weight, ranking in ((1.0, dense), (self.fusion.lexical_weight, lexical)):
            for rank, row in ranking:
                fused[row] = fused.get(row, 0.0) + weight / (rrf_k + rank + 1)
        best: dict[str, tuple[float, int]] = {}
        for row, score in sorted(fused.items(), key=lambda x: -x[1]):
            doc_id = self.chunk_doc[row]
            if doc_id not in best:
                best[doc_id] = (score, row)
                if len(best) == k:
                    break
        top = sorted(best.items(), key=lambda x: -x[1][0])
        meta = self.store.document_meta([d for d, _ in top])
        hits = []
        for doc_id, (score, row) in top:
            m = meta[doc_id]
            snippet, matched = self.snippet(self.chunks[row]["text"], query_terms)
            hits.append(
                Hit(doc_id, m["url"], m["title"], m["language"], m["published"], score, snippet, matched)
            )
        return hits

    def allowed_rows(self, f: Filters) -> Rows | None:
        """Chunk rows passing the filters (None = no filter): computed before any ranking."""
        if not f.active():
            return None
        if f.agreement_type and f.agreement_type not in AGREEMENT_TYPES:
            raise UsageError(
                f"unknown agreement type {f.agreement_type!r} (choose from {', '.join(AGREEMENT_TYPES)})"
            )
        entity_ids = None
        if f.entity:
            names = set(load_registry(self.settings.nlp.models_dir).variants(f.entity))
            entity_ids = self.store.entity_ids_matching(names, normalize)
        docs = self.store.filter_doc_ids(
            languages=f.languages,
            since=f.since,
            until=f.until,
            entity_ids=entity_ids,
            agreement_type=f.agreement_type,
        )
        keep = np.zeros(len(self.doc_ids), dtype=bool)
        keep[[self._doc_index[d] for d in docs if d in self._doc_index]] = True
        rows: Rows = np.flatnonzero(keep[self.chunk_doc_index]).astype(np.int64)
        return rows

    def _language_stats(self) -> dict[str, LanguageStats]:
        if not self.chunks:
            return {}
        languages = {d: m["language"] for d, m in self.store.document_meta(self.doc_ids).items()}
        chunk_lang = np.array([languages.get(d, "") for d in self.chunk_doc])
        rng = np.random.default_rng(0)
        stats: dict[str, LanguageStats] = {}
        for lang in sorted(set(chunk_lang.tolist())):
            rows = np.flatnonzero(chunk_lang == lang).astype(np.int64)
            pos = self._row_pos[rows]
            pos = pos[pos >= 0]
            if pos.size < MIN_LANGUAGE_CHUNKS:
                continue
            if pos.size > STATS_SAMPLE:
                pos = np.sort(rng.choice(pos, STATS_SAMPLE, replace=False))
            x = np.asarray(self._matrix[pos], dtype=np.float64)
            mean = x.mean(axis=0)
            cov = (x - mean).T @ (x - mean) / len(x)
            stats[lang] = LanguageStats(rows, mean.astype(np.float32), cov.astype(np.float32))
        if len(stats) < 2:
            return {}  # one language: standardising changes no ranking
        return stats

    def allowed_count(self, f: Filters) -> int:
        rows = self.allowed_rows(f)
        return len(self.chunks) if rows is None else int(rows.size)

    def _dense(self, query: str, n: int, allowed_rows: Rows | None) -> list[tuple[int, int]]:
        """(rank, row) of the best ``n`` chunks by dense score."""
        return list(enumerate(self._dense_rows(query, n, allowed_rows)))

    def _dense_rows(self, query: str, n: int, allowed_rows: Rows | None) -> list[int]:
        q = self.embedder.queries([query])[0]
        if self.vectors.kind == "hnsw" and allowed_rows is None and not self.lang_stats:
            return [self.row_of[i] for i, _ in self.vectors.search(q, n) if i in self.row_of]
        # Exact: one matrix-vector product over every stored vector (~10 ms at 100k x 384 on one
        # core), then per-group selection. Cheaper than one FAISS search per language with an
        # IDSelector, whose selector build and per-id checks cost more than the product itself.
        row_scores = np.full(len(self.chunks), -np.inf, dtype=np.float32)
        row_scores[self._has_vector] = (self._matrix @ q)[self._row_pos[self._has_vector]]
        # Per passage language, standardised, then merged: a language whose raw scores all sit
        # lower still gets its best passages in. Languages too small for statistics: raw cosine.
        merged: list[tuple[float, int]] = []
        for lang, rows in self._language_groups(allowed_rows):
            best = _top(row_scores, rows, n)
            raw = row_scores[best]
            z = self.lang_stats[lang].standardise(q, raw) if lang in self.lang_stats else raw
            merged.extend((float(zs), int(r)) for r, zs in zip(best, z, strict=True) if np.isfinite(zs))
        merged.sort(key=lambda x: -x[0])
        return [row for _, row in merged[:n]]

    def _lexical(self, query_terms: set[str], n: int, allowed_rows: Rows | None) -> list[tuple[int, int]]:
        """(rank, row) of the best ``n`` chunks by BM25; ranks counted per language if so configured."""
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        ids = [vocab[t] for t in sorted(query_terms) if t in vocab]
        if not ids:
            return []
        # bm25s.get_scores scores every chunk in one sparse pass; its retrieve() adds thread-pool
        # overhead per call that dominated the latency at 100k chunks.
        scores = np.asarray(self._bm25.get_scores(ids), dtype=np.float32)
        if self.fusion.lexical_per_language and self.lang_stats:
            groups = [rows for _, rows in self._language_groups(allowed_rows)]
        else:
            groups = [np.arange(len(self.chunks), dtype=np.int64) if allowed_rows is None else allowed_rows]
        out: list[tuple[int, int]] = []
        for rows in groups:
            best = [int(r) for r in _top(scores, rows, n) if scores[r] > 0]
            out.extend(enumerate(best))
        return sorted(out)

    def _language_groups(self, allowed_rows: Rows | None) -> list[tuple[str, Rows]]:
        """The allowed rows split by passage language; languages without statistics as one group."""
        if not self.lang_stats:
            rows = np.arange(len(self.chunks), dtype=np.int64) if allowed_rows is None else allowed_rows
            return [("", rows)]
        groups: list[tuple[str, Rows]] = []
        covered = np.zeros(len(self.chunks), dtype=bool)
        for lang, stats in self.lang_stats.items():
            rows = (
                stats.rows
                if allowed_rows is None
                else np.intersect1d(stats.rows, allowed_rows, assume_unique=True)
            )
            covered[rows] = True
            groups.append((lang, rows))
        rest = np.flatnonzero(~covered) if allowed_rows is None else allowed_rows[~covered[allowed_rows]]
        groups.append(("", rest.astype(np.int64)))
        return [(lang, rows) for lang, rows in groups if rows.size]

    def snippet(self, text: str, query_terms: set[str], width: int = 300) -> tuple[str, tuple[str, ...]]:
        """The window of the chunk with the most query-term hits, and the words it matched there.

        Matched words are returned as written (``Azərsilahın``), in order of first appearance, so
        the app can highlight them in the snippet.
        """
        spans = [(s, e) for t, s, e in self.normaliser.spans(text) if t in query_terms]
        start, end = 0, len(text)
        if len(text) > width:
            best_start, best_hits = 0, -1
            for s, _ in spans:  # each hit as a window start, pulled back a little for context
                ws = max(0, s - width // 6)
                hits = sum(1 for a, b in spans if a >= ws and b <= ws + width)
                if hits > best_hits:
                    best_start, best_hits = ws, hits
            start = text.rfind(" ", 0, best_start) + 1 if best_start else 0
            end = min(len(text), start + width)
            if end < len(text):
                end = max(start + 1, text.rfind(" ", start, end))
        words: list[str] = []
        for s, e in spans:
            if s >= start and e <= end and text[s:e] not in words:
                words.append(text[s:e])
        snippet = ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")
        return snippet, tuple(words)


def _top(scores: npt.NDArray[np.float32], rows: Rows, n: int) -> Rows:
    """The ``n`` rows of ``rows`` with the highest scores, best first."""
    if rows.size == 0:
        return rows
    sub = scores[rows]
    if rows.size > n:
        part = np.argpartition(-sub, n - 1)[:n]
        return rows[part[np.argsort(-sub[part], kind="stable")]]
    return rows[np.argsort(-sub, kind="stable")]


def index_dir(settings: Settings) -> Path:
    return settings.data_path / "index"
