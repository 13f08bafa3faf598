"""The FAISS vector index in the data dir: self-describing, swapped atomically, updated in place.

Layout: ``<data>/index/CURRENT`` names the live generation folder ``gen-<n>/`` holding the vectors
and ``config.json`` (embedder, dimension, metric, count, kind, format). The vectors are saved as
``ids.npy`` + ``vectors.npy``: a reader maps them straight from the file, aligned for BLAS,
without importing FAISS or copying them (``load(mmap=True)``: a read-only exact index for search).
An HNSW index also saves its graph as ``faiss.index`` (format ``npy+faiss``); generations written
before the npy files (``faiss.index`` only) still load. A save writes a new generation folder completely, then replaces
``CURRENT`` with ``os.replace``: a reader or a crash never sees config and vectors out of step.

Exact or HNSW by size. The mutable truth in memory is always an exact ``IndexIDMap2(IndexFlatIP)``
(it supports removing ids); at or above ``hnsw_threshold`` vectors an HNSW graph is kept beside it
and is what is saved (its flat storage holds every vector, so the exact index is rebuilt from it on
load without a second file). FAISS HNSW cannot remove ids, so a removal drops the graph: searches
fall back to the exact index and the next ``save`` rebuilds the graph. Additions go into both.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from pipeline.backend.rows import TitledChunk
from pipeline.errors import UsageError
from pipeline.index.embedders import Vectors

if TYPE_CHECKING:
    from pipeline.backend.protocols import Store

log = logging.getLogger(__name__)

METRIC = "inner_product"  # vectors are L2-normalised: inner product = cosine
KINDS = ("auto", "flat", "hnsw")
# Exact search over N x 384 float32 costs ~N/10M s per query on one core: about 10 ms at 100k.
# Below this size exact is fast enough and needs no graph build (minutes at 100k on 2 cores).
HNSW_THRESHOLD = 200_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64
# A filter that keeps less than this share of the vectors is searched exactly: HNSW with a
# selective IDSelector walks many rejected nodes and loses recall.
HNSW_MIN_ALLOWED_SHARE = 0.5

IdArray = npt.NDArray[np.int64]


def _faiss_module() -> Any:
    """FAISS, imported on first use: a search process reading a mapped exact index never needs it.
    (Untyped: faiss's bundled stubs lag its SWIG API, e.g. SearchParametersHNSW, IndexFlat.get_xb.)"""
    import faiss

    return faiss


class VectorIndex:
    def __init__(
        self,
        embedder: str,
        dim: int,
        index: Any | None = None,
        *,
        kind: str = "auto",
        hnsw_threshold: int = HNSW_THRESHOLD,
    ) -> None:
        if kind not in KINDS:
            raise UsageError(f"unknown index kind {kind!r} (choose from {', '.join(KINDS)})")
        self.embedder = embedder
        self.dim = dim
        self.kind_choice = kind
        self.hnsw_threshold = hnsw_threshold
        self.hnsw: Any | None = None
        self.generation: str | None = None  # the saved generation this index was loaded from or saved as
        self._mapped: tuple[IdArray, Vectors] | None = None  # a read-only index mapped from its files
        self.dirty = False
        if isinstance(index, tuple):
            self._mapped = index
            self.flat: Any = None
            return
        faiss = _faiss_module()
        self.flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if index is not None:
            inner = faiss.downcast_index(index.index)
            if isinstance(inner, faiss.IndexHNSW):
                self.hnsw = index
                ids, vectors = _hnsw_contents(index, inner, dim)
                self.flat.add_with_ids(vectors, ids)
            else:
                self.flat = index

    @property
    def index(self) -> Any:
        """The FAISS index that answers unfiltered queries."""
        return self.hnsw if self.hnsw is not None else self.flat

    @property
    def kind(self) -> str:
        return "hnsw" if self.hnsw is not None else "flat"

    @property
    def count(self) -> int:
        if self._mapped is not None:
            return len(self._mapped[0])
        return int(self.flat.ntotal)

    @property
    def read_only(self) -> bool:
        return self._mapped is not None

    def _writable(self) -> None:
        if self._mapped is not None:
            raise RuntimeError(
                "this vector index was loaded read-only (mmap=True): load it without mmap to change it"
            )

    def wants_hnsw(self) -> bool:
        return self.kind_choice == "hnsw" or (
            self.kind_choice == "auto" and self.count >= self.hnsw_threshold
        )

    def ids(self) -> set[int]:
        if self.count == 0:
            return set()
        if self._mapped is not None:
            return {int(i) for i in self._mapped[0]}
        return {int(i) for i in _faiss_module().vector_to_array(self.flat.id_map)}

    def contents(self) -> tuple[IdArray, Vectors]:
        """Every id and its vector: a read-only view of the storage (no copy), valid only while
        this index lives and is not modified."""
        if self._mapped is not None:
            return self._mapped
        if self.count == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        faiss = _faiss_module()
        inner: Any = faiss.downcast_index(self.flat.index)
        view = faiss.rev_swig_ptr(inner.get_xb(), self.count * self.dim).reshape(self.count, self.dim)
        view.flags.writeable = False
        ids: IdArray = faiss.vector_to_array(self.flat.id_map).astype(np.int64)
        return ids, view

    def add(self, ids: Sequence[int], vectors: Vectors) -> None:
        self._writable()
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)}x{self.dim} vectors, got {vectors.shape}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        xids = np.asarray(ids, dtype=np.int64)
        self.flat.add_with_ids(x, xids)
        if self.hnsw is not None:
            self.hnsw.add_with_ids(x, xids)
        self.dirty = True

    def remove(self, ids: Iterable[int]) -> int:
        self._writable()
        arr = np.fromiter(ids, dtype=np.int64)
        if arr.size == 0 or self.count == 0:
            return 0
        removed = int(self.flat.remove_ids(_faiss_module().IDSelectorBatch(arr)))
        if removed:
            self.dirty = True
            if self.hnsw is not None:
                log.info("HNSW graph dropped after removing %d vectors; rebuilt at the next save", removed)
                self.hnsw = None
        return removed

    def search(
        self, query: Vectors, k: int, allowed: Sequence[int] | IdArray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (id, score) among ``allowed`` ids (all when None): the filter applies inside the search."""
        if self.count == 0 or k <= 0:
            return []
        if self._mapped is not None:
            return _exact_search(*self._mapped, query, k, allowed)
        faiss = _faiss_module()
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        k = min(k, self.count)
        index: Any = self.flat
        params: Any = None
        if allowed is None:
            if self.hnsw is not None:
                index = self.hnsw
                params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        else:
            allowed_ids = np.asarray(allowed, dtype=np.int64)
            if allowed_ids.size == 0:
                return []
            sel = faiss.IDSelectorBatch(allowed_ids)
            share = allowed_ids.size / self.count
            if self.hnsw is not None and share >= HNSW_MIN_ALLOWED_SHARE:
                index = self.hnsw
                ef = int(max(HNSW_EF_SEARCH, k) / share)
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
            else:
                params = faiss.SearchParameters(sel=sel)
            params._keep_sel = sel  # the SWIG object does not own the selector: keep it alive
        scores, ids = index.search(q, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    stored_with_chunks = False  # the vectors live in these files, added after their chunks' commit

    def unindexed(self, store: Store) -> tuple[set[int], list[TitledChunk]]:
        """(vector ids with no stored chunk, stored chunks with no vector), after a crash or a removed document."""
        chunks = {c["vec_id"]: c for c in store.chunks()}
        have = self.ids()
        orphans = have - set(chunks)
        missing = [chunks[v] for v in chunks if v not in have]
        if not missing:
            return orphans, []
        titles = {d["doc_id"]: d["title"] for d in store.documents()}
        return orphans, [cast(TitledChunk, {**c, "title": titles.get(c["doc_id"], "")}) for c in missing]

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "embedder": self.embedder,
            "dimension": self.dim,
            "metric": METRIC,
            "count": self.count,
            "kind": self.kind,
            "format": "npy+faiss" if self.hnsw is not None else "npy",
            "faiss_version": _faiss_module().__version__,
        }
        if self.hnsw is not None:
            cfg["hnsw"] = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}
        return cfg

    def _build_hnsw(self) -> None:
        """A fresh graph over every vector of the exact index (after removals, or on crossing the threshold)."""
        faiss = _faiss_module()
        graph = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw = faiss.IndexIDMap2(graph)
        if self.count:
            ids, vectors = self.contents()
            hnsw.add_with_ids(np.ascontiguousarray(vectors), ids)
        self.hnsw = hnsw
        log.info("HNSW graph built over %d vectors", self.count)

    # -- persistence ----------------------------------------------------------------------
    def save(self, root: Path) -> None:
        self._writable()
        if self.wants_hnsw() and self.hnsw is None:
            self._build_hnsw()
        elif not self.wants_hnsw():
            self.hnsw = None
        root.mkdir(parents=True, exist_ok=True)
        current = _current(root)
        n = int(current.name.split("-")[1]) + 1 if current else 1
        gen = root / f"gen-{n}"
        tmp = root / f".tmp-gen-{n}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        ids, vectors = self.contents()
        np.save(tmp / "ids.npy", np.ascontiguousarray(ids, dtype=np.int64))
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        if self.hnsw is not None:  # the graph holds its own copy of the vectors: readers map the npy
            _faiss_module().write_index(self.hnsw, str(tmp / "faiss.index"))
        (tmp / "config.json").write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(gen, ignore_errors=True)
        tmp.rename(gen)
        pointer = root / f".CURRENT-{os.getpid()}"
        pointer.write_text(gen.name + "\n", encoding="utf-8")
        pointer.replace(root / "CURRENT")
        for old in root.glob("gen-*"):
            if old != gen:
                shutil.rmtree(old, ignore_errors=True)
        self.generation = gen.name
        self.dirty = False

    @classmethod
    def load(
        cls,
        root: Path,
        embedder: str,
        dim: int,
        *,
        kind: str = "auto",
        hnsw_threshold: int = HNSW_THRESHOLD,
        mmap: bool = False,
    ) -> VectorIndex:
        """The saved index, or a new empty one; refuses an index built with another embedder.

        ``mmap``: map an exact index's vectors from ``vectors.npy`` instead of reading them into
        FAISS, for a reader that never changes the index (a search process): no FAISS import, no
        copy; an HNSW or older ``faiss.index`` generation loads as usual."""
        current = _current(root)
        if current is None:
            return cls(embedder, dim, kind=kind, hnsw_threshold=hnsw_threshold)
        try:
            config = json.loads((current / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"unreadable index config in {current}: {exc}") from None
        if config.get("embedder") != embedder or int(config.get("dimension", -1)) != dim:
            raise UsageError(
                f"the index in {root} was built with embedder {config.get('embedder')!r} "
                f"(dim {config.get('dimension')}), not {embedder!r} (dim {dim}): use the same embedder "
                "or remove the index folder and run `defintel ingest` again"
            )
        index: Any
        has_graph = (current / "faiss.index").exists()
        if (current / "vectors.npy").exists() and (mmap or not has_graph):
            ids = np.load(current / "ids.npy")
            vectors = np.load(current / "vectors.npy", mmap_mode="r" if mmap else None)
            stored = len(ids)
            if vectors.shape != (stored, dim):
                raise UsageError(f"the vectors in {current} do not match their ids: remove the index folder")
            if mmap:
                # A plain ndarray over the mapping: np.memmap's indexing goes through Python code.
                index = (ids, vectors.view(np.ndarray))
            else:
                index = _faiss_module().IndexIDMap2(_faiss_module().IndexFlatIP(dim))
                if stored:
                    index.add_with_ids(np.ascontiguousarray(vectors), ids)
        else:
            index = _faiss_module().read_index(str(current / "faiss.index"))
            stored = int(index.ntotal)
        if stored != int(config.get("count", -1)):
            raise UsageError(
                f"the index in {current} holds {stored} vectors but its config says "
                f"{config.get('count')}: remove the index folder and run `defintel ingest` again"
            )
        loaded = cls(embedder, dim, index, kind=kind, hnsw_threshold=hnsw_threshold)
        loaded.generation = current.name
        return loaded


def _exact_search(
    ids: IdArray, vectors: Vectors, query: Vectors, k: int, allowed: Sequence[int] | IdArray | None
) -> list[tuple[int, float]]:
    """Top-k (id, score) by inner product over mapped vectors, among ``allowed`` ids when given."""
    scores = vectors @ np.asarray(query, dtype=np.float32).reshape(-1)
    rows = np.arange(len(ids)) if allowed is None else np.flatnonzero(np.isin(ids, np.asarray(allowed)))
    if rows.size == 0:
        return []
    k = min(k, rows.size)
    best = rows[np.argpartition(-scores[rows], k - 1)[:k]]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(ids[r]), float(scores[r])) for r in best]


def _hnsw_contents(index: Any, inner: Any, dim: int) -> tuple[IdArray, Vectors]:
    """Ids and vectors stored in an ``IndexIDMap2(IndexHNSWFlat)``."""
    faiss = _faiss_module()
    storage: Any = faiss.downcast_index(inner.storage)
    n = int(storage.ntotal)
    vectors = np.array(faiss.rev_swig_ptr(storage.get_xb(), n * dim), dtype=np.float32).reshape(n, dim)
    ids: IdArray = faiss.vector_to_array(index.id_map).astype(np.int64)
    return ids, vectors


def _current(root: Path) -> Path | None:
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None
    gen = root / pointer.read_text(encoding="utf-8").strip()
    return gen if (gen / "vectors.npy").exists() or (gen / "faiss.index").exists() else None
