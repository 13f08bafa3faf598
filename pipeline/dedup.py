"""Exact and near-duplicate detection over main text (republished articles).

Exact: sha1 of the normalised body. Near: MinHash (datasketch) over word 5-shingles of the body
without its first paragraph-worth of words being special — republished copies change the title,
byline and first paragraph, and keep most of the rest, so Jaccard over shingles stays high.
The later copy (by publication date, then by first sight) gets ``duplicate_of``; both are kept.

The stored signatures are compared as one numpy matrix (the estimate datasketch computes —
the share of equal hash values — vectorised), so a nightly run over thousands of documents
stays linear per document instead of building a MinHash object per stored document.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from pipeline.backend.protocols import Store
from pipeline.records import Document, sha1
from pipeline.textnorm import normalize

NUM_PERM = 128
SHINGLE = 5
THRESHOLD = 0.5
SCHEME = "affine64"  # fixed, so stored signatures stay comparable across datasketch versions


@dataclass(frozen=True, slots=True)
class DupResult:
    text_hash: str
    signature: bytes
    duplicate_of: str | None
    demoted: str | None = None  # a stored document this earlier original made a duplicate of itself


def body_of(doc: Document) -> str:
    return doc.text[len(doc.title) :] if doc.text.startswith(doc.title) else doc.text


def minhash(text: str) -> MinHash:
    words = normalize(text).split()
    m = MinHash(num_perm=NUM_PERM, seed=7, scheme=SCHEME)
    m.update_batch(
        [" ".join(words[i : i + SHINGLE]).encode("utf-8") for i in range(max(1, len(words) - SHINGLE + 1))]
    )
    return m


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What duplicate detection compares: the normalised body's hash and its MinHash values."""

    text_hash: str
    signature: bytes


def fingerprint(doc: Document) -> Fingerprint:
    """Computed where the document is prepared (a worker process); compared in the main one."""
    body = body_of(doc)
    values = np.asarray(minhash(body).hashvalues, dtype=np.uint64)
    return Fingerprint(sha1(normalize(body)), values.tobytes())


class _Signatures:
    """Stored signatures as a growable (n, NUM_PERM) matrix, in the store's row order."""

    def __init__(self, store: Store) -> None:
        self.ids: list[str] = []
        self.published: list[str | None] = []
        self.row: dict[str, int] = {}
        self.matrix = np.zeros((64, NUM_PERM), dtype=np.uint64)
        for doc_id, blob, published in store.minhashes(exclude=""):
            self.put(str(doc_id), np.frombuffer(blob, dtype=np.uint64), published)

    def put(self, doc_id: str, values: np.ndarray, published: str | None) -> None:
        i = self.row.get(doc_id)
        if i is None:
            i = len(self.ids)
            if i == len(self.matrix):
                self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
            self.ids.append(doc_id)
            self.published.append(published)
            self.row[doc_id] = i
        self.matrix[i] = values
        self.published[i] = published

    def best(self, values: np.ndarray, exclude: str) -> tuple[float, str, str | None] | None:
        n = len(self.ids)
        if n == 0:
            return None
        scores = (self.matrix[:n] == values).mean(axis=1)
        own = self.row.get(exclude)
        if own is not None:
            scores[own] = -1.0
        i = int(np.argmax(scores))  # first of equal best, as the row-by-row scan did
        if scores[i] < THRESHOLD:
            return None
        return float(scores[i]), self.ids[i], self.published[i]


class Deduplicator:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._signatures: _Signatures | None = None

    @property
    def signatures(self) -> _Signatures:
        if self._signatures is None:
            self._signatures = _Signatures(self.store)
        return self._signatures

    def check(self, doc: Document, fp: Fingerprint | None = None) -> DupResult:
        fp = fp or fingerprint(doc)
        text_hash, blob = fp.text_hash, fp.signature
        values = np.frombuffer(blob, dtype=np.uint64)
        exact = self.store.find_by_text_hash(text_hash, exclude=doc.doc_id)
        if exact is not None:
            return DupResult(text_hash, blob, exact)
        best = self.signatures.best(values, exclude=doc.doc_id)
        if best is None:
            return DupResult(text_hash, blob, None)
        _, other_id, other_published = best
        if doc.published and other_published and doc.published < other_published:
            # The stored copy is the republication: point it at this earlier original.
            self.store.mark_duplicate(other_id, doc.doc_id)
            return DupResult(text_hash, blob, None, demoted=other_id)
        return DupResult(text_hash, blob, other_id)

    def remember(self, doc_id: str, result: DupResult, published: str | None) -> None:
        """Add a stored document's signature (call after its transaction committed)."""
        if self._signatures is not None:
            self._signatures.put(doc_id, np.frombuffer(result.signature, dtype=np.uint64), published)
