"""Hybrid search: dense (FAISS) + BM25, fused by reciprocal rank, filters applied before ranking."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.index.embedders import Embedder, make_embedder
from pipeline.index.vectors import VectorIndex
from pipeline.nlp.registry import load_registry
from pipeline.records import AGREEMENT_TYPES, Hit
from pipeline.store import Store
from pipeline.textnorm import fold, normalize

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[^\W_]+")
MODES = ("hybrid", "dense", "lexical")
STEM = 6  # prefix stemming: Turkish and Azerbaijani suffixes fall away, English stems survive
_STOP = frozenset(
    [
        "ve",
        "ile",
        "bir",
        "bu",
        "da",
        "de",
        "icin",
        "olan",
        "olarak",
        "the",
        "and",
        "of",
        "to",
        "in",
        "a",
        "for",
        "on",
        "with",
        "by",
        "is",
        "was",
        "ve",
        "ile",
        "ucun",
        "bu",
        "olan",
        "da",
        "de",
        "ki",
        "that",
        "from",
        "at",
        "an",
        "as",
        "are",
        "it",
        "its",
    ]
)


def terms(text: str) -> list[str]:
    """BM25 terms: folded (ı/i, ə/e, diacritics), stop words out, prefixes of 6 letters."""
    return [t[:STEM] for t in _TOKEN.findall(fold(text)) if t not in _STOP]


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

    def __init__(self, settings: Settings, store: Store, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder or make_embedder(
            settings.index.embedder, settings.index.e5_model_dir, settings.index.e5_runtime
        )
        self.vectors = VectorIndex.load(index_dir(settings), self.embedder.name, self.embedder.dim)
        self.chunks = store.chunks()
        self.vec_ids = np.array([c["vec_id"] for c in self.chunks], dtype=np.int64)
        self.row_of = {int(v): i for i, v in enumerate(self.vec_ids)}
        self.chunk_doc = [c["doc_id"] for c in self.chunks]
        self._bm25: Any = None
        if self.chunks:
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index([terms(c["text"]) or ["∅"] for c in self.chunks], show_progress=False)

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
        allowed_rows = self._allowed_rows(filters)
        if allowed_rows is not None and allowed_rows.size == 0:
            return []
        n_cand = max(self.settings.index.candidates, k * 10)
        dense = self._dense(query, n_cand, allowed_rows) if mode != "lexical" else []
        lexical, matched = self._lexical(query, n_cand, allowed_rows)
        if mode == "dense":
            lexical = []
        fused: dict[int, float] = {}
        rrf_k = self.settings.index.rrf_k
        for ranking in (dense, lexical):
            for rank, row in enumerate(ranking):
                fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank + 1)
        best: dict[str, tuple[float, int]] = {}
        for row, score in sorted(fused.items(), key=lambda x: -x[1]):
            doc_id = self.chunk_doc[row]
            if doc_id not in best:
                best[doc_id] = (score, row)
        top = sorted(best.items(), key=lambda x: -x[1][0])[:k]
        meta = self.store.document_meta([d for d, _ in top])
        hits = []
        for doc_id, (score, row) in top:
            m = meta[doc_id]
            text = self.chunks[row]["text"]
            hits.append(
                Hit(
                    doc_id,
                    m["url"],
                    m["title"],
                    m["language"],
                    m["published"],
                    score,
                    _snippet(text, matched),
                    tuple(sorted(t for t in matched if t in terms(text))),
                )
            )
        return hits

    def _allowed_rows(self, f: Filters) -> np.ndarray[Any, np.dtype[np.int64]] | None:
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
        return np.array([i for i, d in enumerate(self.chunk_doc) if d in docs], dtype=np.int64)

    def _dense(
        self, query: str, n: int, allowed_rows: np.ndarray[Any, np.dtype[np.int64]] | None
    ) -> list[int]:
        q = self.embedder.queries([query])[0]
        allowed = None if allowed_rows is None else self.vec_ids[allowed_rows].tolist()
        return [self.row_of[i] for i, _ in self.vectors.search(q, n, allowed) if i in self.row_of]

    def _lexical(
        self, query: str, n: int, allowed_rows: np.ndarray[Any, np.dtype[np.int64]] | None
    ) -> tuple[list[int], set[str]]:
        q = [t for t in terms(query) if t]
        if not q or self._bm25 is None:
            return [], set()
        mask = None
        if allowed_rows is not None:
            mask = np.zeros(len(self.chunks), dtype=np.float32)
            mask[allowed_rows] = 1.0
        docs, scores = self._bm25.retrieve(
            [q], k=min(n, len(self.chunks)), show_progress=False, weight_mask=mask, n_threads=1
        )
        rows = [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        return rows, set(q)


def _snippet(text: str, matched: set[str], width: int = 300) -> str:
    """The chunk around its first matching term, cut at word boundaries."""
    if len(text) <= width:
        return text
    folded = fold(text)
    pos = min((p for t in matched if (p := folded.find(t)) >= 0), default=0)
    start = max(0, pos - width // 3)
    start = text.rfind(" ", 0, start) + 1 if start else 0
    end = min(len(text), start + width)
    if end < len(text):
        end = max(start + 1, text.rfind(" ", start, end))
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def index_dir(settings: Settings) -> Path:
    return settings.data_path / "index"
