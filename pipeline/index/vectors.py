"""The FAISS vector index in the data dir: self-describing, swapped atomically, updated in place.

Layout: ``<data>/index/CURRENT`` names the live generation folder ``gen-<n>/`` holding
``faiss.index`` and ``config.json`` (embedder, dimension, metric, count, kind). A save writes a new
generation folder completely, then replaces ``CURRENT`` with ``os.replace``: a reader or a crash
never sees config and vectors out of step.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from pipeline.errors import UsageError
from pipeline.index.embedders import Vectors

log = logging.getLogger(__name__)

METRIC = "inner_product"  # vectors are L2-normalised: inner product = cosine


class VectorIndex:
    def __init__(self, embedder: str, dim: int, index: Any | None = None) -> None:
        self.embedder = embedder
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.dirty = False

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> set[int]:
        if self.count == 0:
            return set()
        return {int(i) for i in faiss.vector_to_array(self.index.id_map)}

    def add(self, ids: Sequence[int], vectors: Vectors) -> None:
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)}x{self.dim} vectors, got {vectors.shape}")
        self.index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )
        self.dirty = True

    def remove(self, ids: Iterable[int]) -> int:
        arr = np.fromiter(ids, dtype=np.int64)
        if arr.size == 0 or self.count == 0:
            return 0
        removed = int(self.index.remove_ids(faiss.IDSelectorBatch(arr)))
        self.dirty = self.dirty or removed > 0
        return removed

    def search(self, query: Vectors, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (id, score) among ``allowed`` ids (all when None): the filter applies inside the search."""
        if self.count == 0 or k <= 0:
            return []
        params = None
        if allowed is not None:
            if len(allowed) == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))  # type: ignore[call-arg]
        scores, ids = self.index.search(
            np.ascontiguousarray(query.reshape(1, -1)), min(k, self.count), params=params
        )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def config(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "dimension": self.dim,
            "metric": METRIC,
            "count": self.count,
            "kind": "flat",
            "faiss_version": faiss.__version__,
        }

    # -- persistence ----------------------------------------------------------------------
    def save(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        current = _current(root)
        n = int(current.name.split("-")[1]) + 1 if current else 1
        gen = root / f"gen-{n}"
        tmp = root / f".tmp-gen-{n}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        faiss.write_index(self.index, str(tmp / "faiss.index"))
        (tmp / "config.json").write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(gen, ignore_errors=True)
        tmp.rename(gen)
        pointer = root / f".CURRENT-{os.getpid()}"
        pointer.write_text(gen.name + "\n", encoding="utf-8")
        pointer.replace(root / "CURRENT")
        for old in root.glob("gen-*"):
            if old != gen:
                shutil.rmtree(old, ignore_errors=True)
        self.dirty = False

    @classmethod
    def load(cls, root: Path, embedder: str, dim: int) -> VectorIndex:
        """The saved index, or a new empty one; refuses an index built with another embedder."""
        current = _current(root)
        if current is None:
            return cls(embedder, dim)
        config = json.loads((current / "config.json").read_text(encoding="utf-8"))
        if config.get("embedder") != embedder or int(config.get("dimension", -1)) != dim:
            raise UsageError(
                f"the index in {root} was built with embedder {config.get('embedder')!r} "
                f"(dim {config.get('dimension')}), not {embedder!r} (dim {dim}): use the same embedder "
                "or remove the index folder and run `defintel ingest` again"
            )
        return cls(embedder, dim, faiss.read_index(str(current / "faiss.index")))


def _current(root: Path) -> Path | None:
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None
    gen = root / pointer.read_text(encoding="utf-8").strip()
    return gen if (gen / "faiss.index").exists() else None
