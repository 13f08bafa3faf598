"""Exact and near-duplicate detection over main text (republished articles).

Exact: sha1 of the normalised body. Near: MinHash (datasketch) over word 5-shingles of the body
without its first paragraph-worth of words being special — republished copies change the title,
byline and first paragraph, and keep most of the rest, so Jaccard over shingles stays high.
The later copy (by publication date, then by first sight) gets ``duplicate_of``; both are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from pipeline.records import Document, sha1
from pipeline.store import Store
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


def body_of(doc: Document) -> str:
    return doc.text[len(doc.title) :] if doc.text.startswith(doc.title) else doc.text


def minhash(text: str) -> MinHash:
    words = normalize(text).split()
    m = MinHash(num_perm=NUM_PERM, seed=7, scheme=SCHEME)
    for i in range(max(1, len(words) - SHINGLE + 1)):
        m.update(" ".join(words[i : i + SHINGLE]).encode("utf-8"))
    return m


class Deduplicator:
    def __init__(self, store: Store) -> None:
        self.store = store

    def check(self, doc: Document) -> DupResult:
        body = body_of(doc)
        text_hash = sha1(normalize(body))
        sig = minhash(body)
        blob = np.asarray(sig.hashvalues, dtype=np.uint64).tobytes()
        exact = self.store.find_by_text_hash(text_hash, exclude=doc.doc_id)
        if exact is not None:
            return DupResult(text_hash, blob, exact)
        best: tuple[float, str, str | None] | None = None
        for other_id, other_blob, other_published in self.store.minhashes(exclude=doc.doc_id):
            other = MinHash(
                num_perm=NUM_PERM,
                seed=7,
                scheme=SCHEME,
                hashvalues=np.frombuffer(other_blob, dtype=np.uint64),
            )
            score = sig.jaccard(other)
            if score >= THRESHOLD and (best is None or score > best[0]):
                best = (score, other_id, other_published)
        if best is None:
            return DupResult(text_hash, blob, None)
        _, other_id, other_published = best
        if doc.published and other_published and doc.published < other_published:
            # The stored copy is the republication: point it at this earlier original.
            self.store.db.execute(
                "UPDATE documents SET duplicate_of = ? WHERE doc_id = ?", (doc.doc_id, other_id)
            )
            return DupResult(text_hash, blob, None)
        return DupResult(text_hash, blob, other_id)
