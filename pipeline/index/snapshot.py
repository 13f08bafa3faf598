"""What a query needs besides the vectors, computed once per index generation and saved beside it.

A search snapshot holds, for every stored chunk (a *row*): its document, language, vector position
and span; per document its language, date, entities and agreement types (the filters); the mean
and covariance of each language's passage vectors (for the per-language
standardisation of ``search.py``); the BM25 index over title + chunk text; and the entity alias
table for query-side linking. Building it reads every chunk from the store and tokenises it
(seconds at 100k chunks); loading it is a handful of ``np.load`` calls, so a fresh ``defintel
search`` process answers without touching the chunk table.

Identity: ``<data>/index/search-<key>/`` where the key hashes the vector index generation and
count, the store's documents (id and content hash), chunk and entity counts, the term normaliser
and this module's format version. Any ingest that changes a document changes the key, so a stale
snapshot is never read; it is rebuilt by the next search and the old folder removed. Written to a
temporary folder and renamed, like the vector index generations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.backend.sqlite import Store
from pipeline.index.lexical import Bm25Index, TermNormaliser
from pipeline.index.vectors import VectorIndex
from pipeline.textnorm import fold

log = logging.getLogger(__name__)

FORMAT = 3
# Passage statistics come from at most this many vectors per language: a sample estimates a mean and
# the quadratic form qᵀΣq of a 384x384 covariance well and keeps building a large snapshot fast.
STATS_SAMPLE = 10_000
MIN_LANGUAGE_CHUNKS = 5  # fewer chunks than this: the language uses the statistics of all chunks
# Per-language HNSW graphs (8-bit vectors, candidates rescored exactly) once the corpus is this large:
# below it one exact product over every vector is fast enough (~10-40 ms at 100k on this machine,
# load-dependent) and needs no graph build. Measured on 33k vectors: ~1.7 ms per search, 4.4 s to
# build, recall@100 0.99 and the exact top-10 after rescoring.
ANN_MIN_ROWS = 50_000
ANN_MIN_LANGUAGE_ROWS = 5_000
ANN_M = 16
ANN_EF_CONSTRUCTION = 40
ALL_LANGUAGES = "*"
MAX_ALIAS_WORDS = 6
ARRAYS = (
    "row_doc",
    "row_lang",
    "row_pos",
    "row_span",
    "doc_lang",
    "doc_published",
    "entity_indptr",
    "entity_docs",
    "agreement_indptr",
    "agreement_docs",
)
_PUNCTUATION = '.,;:!?()[]"“”«»'

Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class LanguageStats:
    """Mean and covariance of one language's passage vectors (see ``search.py``)."""

    mean: Floats
    cov: Floats

    def offset_and_spread(self, q: Floats) -> tuple[float, float]:
        """``q·μ`` and ``√(qᵀΣq)``: a passage's standardised score is ``(q·p − offset) / spread``."""
        return float(q @ self.mean), float(np.sqrt(max(float(q @ self.cov @ q), 1e-12)))


@dataclass(frozen=True, slots=True)
class AliasTable:
    """Entity names in the store, for linking names in a query (any language, any listed alias).

    ``ids``: normalised alias (or entity id) → entity ids. ``terms``: entity id → the BM25 terms of
    its one-word aliases (``sumgait`` → ``sumgai``, ``sumqay``, ``sumgay``), the cross-lingual
    expansion of a linked name. Multi-word aliases are not expanded: their generic words
    ("ministry", "defence") would match far more than the entity.
    """

    ids: dict[str, tuple[str, ...]]
    terms: dict[str, tuple[str, ...]]
    max_words: int = 1
    # First word of every multi-word alias: a longer window is tried only from such a word.
    first_words: frozenset[str] = frozenset()

    @classmethod
    def create(cls, ids: dict[str, tuple[str, ...]], terms: dict[str, tuple[str, ...]]) -> AliasTable:
        max_words = max([min(MAX_ALIAS_WORDS, len(k.split())) for k in ids] or [1])
        first = frozenset(k.split(" ", 1)[0] for k in ids if " " in k)
        return cls(ids, terms, max_words, first)

    @classmethod
    def from_rows(cls, rows: list[tuple[str, list[str]]], normaliser: TermNormaliser) -> AliasTable:
        ids: dict[str, list[str]] = {}
        terms: dict[str, tuple[str, ...]] = {}
        for entity_id, names in rows:
            for key in {normalize(n) for n in names if n.strip()} | {entity_id}:
                ids.setdefault(key, [])
                if entity_id not in ids[key]:
                    ids[key].append(entity_id)
            one_word = (normaliser.terms(n) for n in names)
            terms[entity_id] = tuple(sorted({t[0] for t in one_word if len(t) == 1}))
        return cls.create({k: tuple(v) for k, v in ids.items()}, terms)

    def link(self, text: str, variants: Callable[[str], list[str]]) -> list[str]:
        """Entity ids named in ``text``: longest alias first, each word used once; ``variants(name)``
        gives a name's normalised forms without suffixes (``NameVariants``)."""
        words = [w.strip(_PUNCTUATION) for w in text.split()]
        found: list[str] = []
        i = 0
        while i < len(words):
            first = normalize(words[i])
            longest = min(self.max_words, len(words) - i) if first in self.first_words else 1
            for n in range(longest, 0, -1):
                name = " ".join(words[i : i + n])
                hit = next((self.ids[v] for v in variants(name) if v in self.ids), None) if name else None
                if hit:
                    found.extend(e for e in hit if e not in found)
                    i += n
                    break
            else:
                i += 1
        return found


class NameVariants:
    """A name's normalised forms: as written, without a separated suffix (``MKE'nin``), and without
    each attached tr/az suffix (``Azərsilahın`` → ``azersilah``): ``Registry.variants`` with the
    suffixes normalised once instead of on every call (it runs for every word of a query)."""

    def __init__(self, suffixes: tuple[str, ...]) -> None:
        self.suffixes = tuple(dict.fromkeys(normalize(s) for s in suffixes if s.strip()))

    def __call__(self, name: str) -> list[str]:
        from pipeline.nlp.registry import strip_suffix

        key = normalize(name)
        out = [key, normalize(strip_suffix(name))]
        out.extend(key[: -len(s)] for s in self.suffixes if key.endswith(s) and len(key) - len(s) >= 3)
        return list(dict.fromkeys(out))


class SearchSnapshot:
    """Row arrays, language statistics, BM25 index, alias table and, for a large corpus, an HNSW
    graph per language (see the module docstring)."""

    def __init__(
        self,
        key: str,
        doc_ids: list[str],
        languages: list[str],
        arrays: dict[str, npt.NDArray[Any]],
        stats: dict[str, LanguageStats],
        lexical: Bm25Index,
        aliases: AliasTable,
        groups: dict[str, list[str]],
        ann: dict[int, tuple[Rows, Any]] | None = None,
        folder: Path | None = None,
    ) -> None:
        self.key = key
        self.doc_ids = doc_ids
        self.languages = languages  # row_lang values index this list
        self.row_doc: npt.NDArray[np.int32] = arrays["row_doc"]
        self.row_lang: npt.NDArray[np.int8] = arrays["row_lang"]
        self.row_pos: Rows = arrays["row_pos"]  # position in the vector index, -1: no vector
        self.row_span: npt.NDArray[np.int32] = arrays["row_span"]  # chunk start, end in the doc text
        self.doc_lang: npt.NDArray[np.int8] = arrays["doc_lang"]  # per document, indexes languages
        self.doc_published: npt.NDArray[np.str_] = arrays["doc_published"]  # "" when unknown
        # Documents mentioning each entity, and having an agreement of each type (for the filters):
        # the documents of ``entities[i]`` are ``entity_docs[entity_indptr[i]:entity_indptr[i + 1]]``.
        self.entities = groups["entities"]
        self.agreement_types = groups["agreement_types"]
        self.entity_indptr: Rows = arrays["entity_indptr"]
        self.entity_docs: npt.NDArray[np.int32] = arrays["entity_docs"]
        self.agreement_indptr: Rows = arrays["agreement_indptr"]
        self.agreement_docs: npt.NDArray[np.int32] = arrays["agreement_docs"]
        self._entity_index = {e: i for i, e in enumerate(self.entities)}
        self.stats = stats
        self.lexical = lexical
        self.aliases = aliases
        # Rows are ordered by vector position: when every vector is a row, in order, the dense scores
        # of all rows are a prefix of the index's scores and no gather is needed.
        n_vec = int((self.row_pos >= 0).sum())
        self.positions_are_rows = bool(np.array_equal(self.row_pos[:n_vec], np.arange(n_vec)))
        self._doc_index: dict[str, int] | None = None
        # Language index → (row of each graph node, the FAISS graph or None until first use).
        self._ann: dict[int, tuple[Rows, Any]] = dict(ann or {})
        self._folder = folder
        self._language_rows: dict[int, Rows] = {}

    def docs_with_entities(self, entity_ids: list[str]) -> npt.NDArray[np.int32]:
        """Documents (indexes into ``doc_ids``) mentioning any of the entities."""
        slices = [
            self.entity_docs[self.entity_indptr[i] : self.entity_indptr[i + 1]]
            for i in (self._entity_index.get(e) for e in entity_ids)
            if i is not None
        ]
        return np.concatenate(slices) if slices else np.zeros(0, dtype=np.int32)

    def docs_with_agreement(self, agreement_type: str) -> npt.NDArray[np.int32]:
        if agreement_type not in self.agreement_types:
            return np.zeros(0, dtype=np.int32)
        i = self.agreement_types.index(agreement_type)
        return self.agreement_docs[self.agreement_indptr[i] : self.agreement_indptr[i + 1]]

    def language_rows(self, lang: int) -> Rows:
        """Rows of one passage language (cached)."""
        if lang not in self._language_rows:
            self._language_rows[lang] = np.flatnonzero(self.row_lang == lang).astype(np.int64)
        return self._language_rows[lang]

    def has_ann(self, lang: int) -> bool:
        return lang in self._ann

    def ann(self, lang: int) -> tuple[Rows, Any]:
        """(node rows, HNSW graph) of a language; a saved graph is read on first use."""
        rows, graph = self._ann[lang]
        if graph is None:
            assert self._folder is not None
            graph = _faiss().read_index(str(self._folder / f"ann-{lang}.faiss"))
            self._ann[lang] = (rows, graph)
        return rows, graph

    @property
    def n_rows(self) -> int:
        return len(self.row_doc)

    def doc_index(self) -> dict[str, int]:
        if self._doc_index is None:
            self._doc_index = {d: i for i, d in enumerate(self.doc_ids)}
        return self._doc_index

    # -- build -----------------------------------------------------------------------------
    @classmethod
    def build(
        cls, key: str, store: Store, vectors: VectorIndex, normaliser: TermNormaliser
    ) -> SearchSnapshot:
        started = time.perf_counter()
        docs = _documents(store)
        doc_ids = sorted(docs)
        doc_index = {d: i for i, d in enumerate(doc_ids)}
        languages = sorted({lang for lang, _, _ in docs.values()})
        lang_index = {lang: i for i, lang in enumerate(languages)}
        chunks = [c for c in store.chunks() if c["doc_id"] in doc_index]
        ids, matrix = vectors.contents()
        position = {int(v): i for i, v in enumerate(ids)}
        pos = np.array([position.get(int(c["vec_id"]), -1) for c in chunks], dtype=np.int64)
        with_vector = np.flatnonzero(pos >= 0)
        with_vector = with_vector[np.argsort(pos[with_vector], kind="stable")]
        order = np.concatenate([with_vector, np.flatnonzero(pos < 0)])  # by position, vectorless last
        chunks = [chunks[i] for i in order]
        arrays: dict[str, npt.NDArray[Any]] = {
            "row_doc": np.array([doc_index[c["doc_id"]] for c in chunks], dtype=np.int32),
            "row_lang": np.array([lang_index[docs[c["doc_id"]][0]] for c in chunks], dtype=np.int8),
            "row_pos": pos[order],
            "row_span": np.array([(c["start"], c["end"]) for c in chunks], dtype=np.int32).reshape(-1, 2),
            "doc_lang": np.array([lang_index[docs[d][0]] for d in doc_ids], dtype=np.int8),
            "doc_published": np.array([docs[d][2] or "" for d in doc_ids], dtype=np.str_),
        }
        groups: dict[str, list[str]] = {}
        for name, pairs in (
            ("entities", store.doc_entity_pairs()),
            ("agreement_types", store.doc_agreement_types()),
        ):
            keys, indptr, members = _grouped(pairs, doc_index)
            groups[name] = keys
            prefix = "entity" if name == "entities" else "agreement"
            arrays[f"{prefix}_indptr"], arrays[f"{prefix}_docs"] = indptr, members
        stats = _language_stats(arrays["row_lang"], arrays["row_pos"], matrix, languages)
        ann = _ann_graphs(arrays["row_lang"], arrays["row_pos"], matrix, languages)
        lexical = Bm25Index.build(normaliser.terms(docs[c["doc_id"]][1] + "\n" + c["text"]) for c in chunks)
        aliases = AliasTable.from_rows(store.entity_names(), normaliser)
        log.info(
            "search snapshot built: %d chunks, %d terms in %.1f s",
            len(chunks),
            len(lexical.vocab),
            time.perf_counter() - started,
        )
        return cls(key, doc_ids, languages, arrays, stats, lexical, aliases, groups, ann)

    # -- persistence -----------------------------------------------------------------------
    def save(self, root: Path) -> None:
        """Write ``root/search-<key>/`` atomically and drop older snapshots; a failure only logs."""
        final = root / f"search-{self.key}"
        tmp = root / f".tmp-search-{self.key}-{os.getpid()}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for name in ARRAYS:
                np.save(tmp / f"{name}.npy", getattr(self, name))
            for lang, s in self.stats.items():
                np.save(tmp / f"stats-{_safe(lang)}.npy", np.vstack([s.mean[None, :], s.cov]))
            self.lexical.save(tmp / "bm25")
            for i in sorted(self._ann):
                rows, graph = self.ann(i)
                np.save(tmp / f"ann-{i}-rows.npy", rows)
                _faiss().write_index(graph, str(tmp / f"ann-{i}.faiss"))
            meta = {
                "format": FORMAT,
                "key": self.key,
                "doc_ids": self.doc_ids,
                "languages": self.languages,
                "stats": sorted(self.stats),
                "entities": self.entities,
                "agreement_types": self.agreement_types,
                "ann": sorted(self._ann),
                "aliases": {"ids": self.aliases.ids, "terms": self.aliases.terms},
            }
            (tmp / "snapshot.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            tmp.rename(final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.is_dir():
                log.warning(
                    "search snapshot not saved in %s (%s): it is rebuilt by the next search", root, exc
                )
            return
        for old in root.glob("search-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, root: Path, key: str) -> SearchSnapshot | None:
        folder = root / f"search-{key}"
        try:
            meta = json.loads((folder / "snapshot.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("key") != key:
                return None
            arrays = {name: np.load(folder / f"{name}.npy") for name in ARRAYS}
            stats = {}
            for lang in meta["stats"]:
                m = np.load(folder / f"stats-{_safe(lang)}.npy")
                stats[lang] = LanguageStats(m[0], m[1:])
            lexical = Bm25Index.load(folder / "bm25")
            ann: dict[int, tuple[Rows, Any]] = {
                int(i): (np.load(folder / f"ann-{int(i)}-rows.npy"), None) for i in meta.get("ann", [])
            }
        except (OSError, ValueError, KeyError) as exc:
            if folder.exists():
                log.warning("unreadable search snapshot %s (%s): rebuilding it", folder, exc)
            return None
        aliases = AliasTable.create(
            {k: tuple(v) for k, v in meta["aliases"]["ids"].items()},
            {k: tuple(v) for k, v in meta["aliases"]["terms"].items()},
        )
        groups = {"entities": meta["entities"], "agreement_types": meta["agreement_types"]}
        return cls(
            key, meta["doc_ids"], meta["languages"], arrays, stats, lexical, aliases, groups, ann, folder
        )


def snapshot_key(store: Store, vectors: VectorIndex, normaliser: TermNormaliser) -> str:
    """Hash of what the snapshot is computed from (cheap: one pass over the document ids)."""
    h = hashlib.sha1(f"{FORMAT}|{normaliser.key()}|{vectors.generation}|{vectors.count}".encode())
    # A document's language, title, date, chunks and entities all come from its content, so its
    # content hash stands for them; the counts catch rows removed or added by other means.
    h.update(json.dumps(store.content_hashes(), ensure_ascii=False).encode())
    h.update(json.dumps([[store.chunk_count(), store.entity_count()]]).encode())
    return h.hexdigest()[:20]


def load_or_build(
    root: Path, store: Store, vectors: VectorIndex, normaliser: TermNormaliser
) -> SearchSnapshot:
    """The saved snapshot for the current store and index, else a new one (saved for next time)."""
    key = snapshot_key(store, vectors, normaliser)
    snapshot = SearchSnapshot.load(root, key)
    if snapshot is None:
        snapshot = SearchSnapshot.build(key, store, vectors, normaliser)
        if root.is_dir():
            snapshot.save(root)
    return snapshot


# -- store reads (read-only SQL over the store's tables) --------------------------------------
def _documents(store: Store) -> dict[str, tuple[str, str, str | None]]:
    """doc_id → (language, title, published)."""
    return {d["doc_id"]: (d["language"], d["title"], d["published"]) for d in store.documents()}


def _grouped(
    pairs: list[tuple[str, str]], doc_index: dict[str, int]
) -> tuple[list[str], Rows, npt.NDArray[np.int32]]:
    """(key, doc_id) pairs → sorted keys and their documents as index pointers + doc indexes."""
    by_key: dict[str, list[int]] = {}
    for key, doc_id in pairs:
        if doc_id in doc_index:
            by_key.setdefault(str(key), []).append(doc_index[doc_id])
    keys = sorted(by_key)
    sizes = [len(by_key[k]) for k in keys]
    indptr = np.zeros(len(keys) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(sizes)
    members = np.array([d for k in keys for d in sorted(by_key[k])], dtype=np.int32)
    return keys, indptr, members


def _language_stats(
    row_lang: npt.NDArray[np.int8], row_pos: Rows, matrix: Floats, languages: list[str]
) -> dict[str, LanguageStats]:
    """Per-language statistics from a sample of each language's vectors, plus ``*``: the pooled
    statistics of all rows, for languages too small for their own."""
    rng = np.random.default_rng(0)
    stats: dict[str, LanguageStats] = {}
    weights: dict[str, int] = {}
    for i, lang in enumerate(languages):
        pos = row_pos[(row_lang == i) & (row_pos >= 0)]
        if pos.size == 0:
            continue
        weights[lang] = int(pos.size)
        if pos.size > STATS_SAMPLE:
            pos = np.sort(rng.choice(pos, STATS_SAMPLE, replace=False))
        x = np.asarray(matrix[pos], dtype=np.float32)
        mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = x - mean
        stats[lang] = LanguageStats(mean, (centred.T @ centred / len(x)).astype(np.float32))
    total = sum(weights.values())
    if total >= MIN_LANGUAGE_CHUNKS:
        mean = sum(weights[lang] * stats[lang].mean.astype(np.float64) for lang in weights) / total
        cov = (
            sum(
                weights[lang] * (stats[lang].cov + np.outer(stats[lang].mean - mean, stats[lang].mean - mean))
                for lang in weights
            )
            / total
        )
        stats[ALL_LANGUAGES] = LanguageStats(np.asarray(mean, np.float32), np.asarray(cov, np.float32))
    return {
        lang: s for lang, s in stats.items() if lang == ALL_LANGUAGES or weights[lang] >= MIN_LANGUAGE_CHUNKS
    }


def _faiss() -> Any:
    import faiss  # only for corpora large enough to have graphs (ANN_MIN_ROWS)

    return faiss


def _ann_graphs(
    row_lang: npt.NDArray[np.int8], row_pos: Rows, matrix: Floats, languages: list[str]
) -> dict[int, tuple[Rows, Any]]:
    """An HNSW graph over each large language's vectors (8-bit codes), when the corpus is large."""
    if int((row_pos >= 0).sum()) < ANN_MIN_ROWS:
        return {}
    faiss = _faiss()
    out: dict[int, tuple[Rows, Any]] = {}
    for i in range(len(languages)):
        rows = np.flatnonzero((row_lang == i) & (row_pos >= 0)).astype(np.int64)
        if rows.size < ANN_MIN_LANGUAGE_ROWS:
            continue
        x = np.ascontiguousarray(matrix[row_pos[rows]], dtype=np.float32)
        graph = faiss.IndexHNSWSQ(
            x.shape[1], faiss.ScalarQuantizer.QT_8bit, ANN_M, faiss.METRIC_INNER_PRODUCT
        )
        graph.hnsw.efConstruction = ANN_EF_CONSTRUCTION
        graph.train(x[:: max(1, len(x) // STATS_SAMPLE)])
        graph.add(x)
        out[i] = (rows, graph)
    return out


def normalize(text: str) -> str:
    """``textnorm.normalize`` (folded, whitespace collapsed) at ``str.translate`` speed."""
    return " ".join(fold(text).split())


def _safe(lang: str) -> str:
    return "all" if lang == ALL_LANGUAGES else "".join(c for c in lang if c.isalnum()) or "x"
