"""BM25 terms for tr/az/en text and a BM25 index that a fresh process loads without rebuilding.

The index is built by bm25s (Lucene BM25: term weights precomputed per (term, chunk) into a sparse
column matrix). It is saved as three ``.npy`` arrays and a vocabulary, and loaded memory-mapped, so
a search in a new process pays neither the tokenising of every chunk nor the bm25s/scipy imports.
A query is scored with one ``np.bincount`` over the query terms' posting slices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.textnorm import fold

STOPWORDS_FILE = Path(__file__).with_name("stopwords.txt")
_WORD = re.compile(r"[^\W_]+")
_SUFFIX_MARKS = "'’"
EMPTY_TERM = "∅"  # stands in for a chunk with no terms (bm25s needs one per chunk)
Scores = npt.NDArray[np.float32]


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
        folded = fold(text)
        stop = stopwords()
        p = self.prefix
        if not self.drop_suffixes:
            return [(m[0][:p], m.start(), m.end()) for m in _WORD.finditer(folded) if m[0] not in stop]
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
        if self.drop_suffixes:
            return [t for t, _, _ in self.spans(text)]
        # Words are folded once per distinct spelling (a cache), not character by character per text:
        # this is most of the cost of indexing 100k chunks. Folding never turns a word character into
        # a non-word one or back, so the words found before and after folding are the same.
        cache = _term_cache(self.prefix)
        out = []
        for word in _WORD.findall(text):
            term = cache.get(word)
            if term is None:
                if len(cache) > _TERM_CACHE_SIZE:
                    cache.clear()
                folded = fold(word)
                term = cache[word] = "" if folded in stopwords() else folded[: self.prefix]
            if term:
                out.append(term)
        return out

    def find(self, text: str, terms: frozenset[str]) -> list[tuple[int, int]]:
        """(start, end) of every word of ``text`` whose term is in ``terms``: ``spans`` filtered,
        without building the spans of the other words."""
        if self.drop_suffixes or not terms:
            return [(s, e) for t, s, e in self.spans(text) if t in terms]
        stop, p = stopwords(), self.prefix
        return [m.span() for m in _WORD.finditer(fold(text)) if m[0][:p] in terms and m[0] not in stop]

    def key(self) -> str:
        """What the terms depend on: part of a saved index's identity."""
        return f"prefix={self.prefix},drop_suffixes={self.drop_suffixes},stop={len(stopwords())}"


DEFAULT_TERMS = TermNormaliser()


_TERM_CACHE_SIZE = 500_000


@cache
def _term_cache(prefix: int) -> dict[str, str]:
    """Word as written → its term ("" for a stop word), for one stem length."""
    return {}


class Bm25Index:
    """Precomputed BM25 weights: ``indptr[t]:indptr[t+1]`` slices ``rows``/``weights`` for term ``t``."""

    FILES = ("weights.npy", "rows.npy", "indptr.npy", "vocab.json")

    def __init__(
        self,
        vocab: dict[str, int],
        weights: npt.NDArray[np.float32],
        rows: npt.NDArray[np.int32],
        indptr: npt.NDArray[np.int64],
        n_rows: int,
    ) -> None:
        self.vocab = vocab
        self.weights = weights
        self.rows = rows
        self.indptr = indptr
        self.n_rows = n_rows

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]]) -> Bm25Index:
        """BM25 (bm25s defaults: Lucene, k1 1.5, b 0.75) over one term list per row."""
        import bm25s

        # Term ids are assigned here, as the terms stream in: handing bm25s ids instead of strings
        # skips its own vocabulary pass over every token.
        vocab: dict[str, int] = {}
        corpus = [[vocab.setdefault(t, len(vocab)) for t in (terms or [EMPTY_TERM])] for terms in documents]
        if not corpus:
            return cls({}, np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64), 0)
        bm25 = bm25s.BM25()
        bm25.index((corpus, vocab), show_progress=False)
        s = bm25.scores
        return cls(
            vocab,
            np.asarray(s["data"], dtype=np.float32),
            np.asarray(s["indices"], dtype=np.int32),
            np.asarray(s["indptr"], dtype=np.int64),
            int(s["num_docs"]),
        )

    def term_ids(self, terms: Iterable[str]) -> list[int]:
        return sorted({self.vocab[t] for t in terms if t in self.vocab})

    def scores(self, term_ids: Sequence[int]) -> Scores:
        """BM25 score of every row for the query terms (0 where none matches)."""
        if not term_ids:
            return np.zeros(self.n_rows, dtype=np.float32)
        slices = [slice(int(self.indptr[t]), int(self.indptr[t + 1])) for t in term_ids]
        rows = np.concatenate([self.rows[s] for s in slices])
        weights = np.concatenate([self.weights[s] for s in slices])
        out: Scores = np.bincount(rows, weights=weights, minlength=self.n_rows).astype(np.float32)
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "weights.npy", self.weights)
        np.save(folder / "rows.npy", self.rows)
        np.save(folder / "indptr.npy", self.indptr)
        meta = {"n_rows": self.n_rows, "vocab": self.vocab}
        (folder / "vocab.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Bm25Index:
        """The saved arrays memory-mapped (pages are read on first use, shared between processes)."""
        meta = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        vocab: dict[str, int] = meta["vocab"]  # written by save(): str → int already
        return cls(
            vocab,
            np.load(folder / "weights.npy", mmap_mode="r"),
            np.load(folder / "rows.npy", mmap_mode="r"),
            np.load(folder / "indptr.npy", mmap_mode="r"),
            int(meta["n_rows"]),
        )
