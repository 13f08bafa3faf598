"""Hybrid search on PostgreSQL: pgvector HNSW + BM25 over the stored ``tsvector``, scored and fused
as the embedded searcher (``pipeline/index/search.py``) scores and fuses them.

Step for step, with the embedded module's own functions (``expand_query``, ``standardise``,
``fuse``, ``best_per_document``, the snippet) and records (``Fusion``, ``QueryTerms``,
``LanguageStats``, ``AliasTable``):

* query terms: the normaliser's terms plus the one-word aliases of the entities the query names;
* dense: the query's cosine with each candidate chunk, standardised per passage language
  (``z = (q·p − q·μ_L) / √(qᵀΣ_L q)``; a language with too few chunks uses the statistics of all);
  candidates are, per passage language, the best ``n`` chunks by pgvector's HNSW index
  (``hnsw.ef_search``, iterative scan so a filtered query still fills ``n``) — within one language
  z orders as the cosine, so these hold the overall best ``n`` by z;
* lexical: BM25 with the embedded index's terms (title + chunk text, stored as a ``tsvector`` and
  as term counts) and bm25s' formula (Lucene idf, k1 1.5, b 0.75); the GIN index finds chunks
  holding a query term, the score reads their counts of the query terms; the best ``n`` chunks join
  the candidates;
* fusion and documents: ``fuse`` and ``best_per_document`` of the embedded module over the
  candidates (``z + w · bm25 / max bm25`` per passage language, or reciprocal rank, per ``Fusion``),
  so the two backends rank identically by construction.

Where the embedded searcher scores every allowed chunk exactly, this scores the union of the two
candidate lists (as the embedded searcher does when its HNSW graph answers). Filters are SQL
conditions on the chunk rows, inside the statements that rank them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.backend.pg import stats as language_stats
from pipeline.backend.pg.store import PgStore, vector_literal
from pipeline.backend.pg.terms import tsquery_any
from pipeline.backend.pg.vectors import PgVectorIndex
from pipeline.errors import UsageError
from pipeline.index.search import (
    Filters,
    QueryTerms,
    SearcherBase,
    best_per_document,
    best_snippet,
    expand_query,
    fuse,
    standardise,
)
from pipeline.index.snapshot import ALL_LANGUAGES, AliasTable, NameVariants
from pipeline.records import AGREEMENT_TYPES, Hit

log = logging.getLogger(__name__)

# bm25s defaults (method "lucene"), which the embedded index uses.
BM25_K1 = 1.5
BM25_B = 0.75
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
# A filter leaving at most this many chunks is ranked exactly (benchmarks/pg_bench.py: at 100k chunks
# a 9 % filter took ~87 ms through HNSW for 100 candidates; an exact sort of 9k rows takes a few ms).
EXACT_MAX_ROWS = 20_000
Floats = npt.NDArray[np.float32]


class _Candidates:
    """Candidate chunks of one query: vec_id, document, language, insertion order, raw cosine, BM25."""

    def __init__(self) -> None:
        self.doc: dict[int, str] = {}
        self.lang: dict[int, str] = {}
        self.seq: dict[int, int] = {}
        self.raw: dict[int, float] = {}
        self.lex: dict[int, float] = {}

    def add(self, vec: int, doc: str, lang: str, seq: int) -> None:
        self.doc[vec] = doc
        self.lang[vec] = lang
        self.seq[vec] = seq

    def ids(self) -> list[int]:
        """In insertion order: equal scores rank as the embedded searcher ranks them (its rows follow
        the order vectors were added to the index)."""
        return sorted(self.doc, key=self.seq.__getitem__)


class PgSearcher(SearcherBase[PgStore]):
    """Answers queries against a ``PgStore``; same ``search`` contract as ``Searcher``."""

    def _load(self) -> None:
        store = self.store
        self.vectors = PgVectorIndex(store, self.embedder.name, self.embedder.dim)
        self.ef_search = self.settings.store.hnsw_ef_search
        row = store.db.execute("SELECT COUNT(*), COALESCE(AVG(n_terms), 1) FROM chunks").fetchone()
        self._n_chunks = int(row[0]) if row else 0
        self.avgdl = float(row[1]) if row else 1.0
        self.languages = [r[0] for r in store.db.execute("SELECT DISTINCT language FROM chunks ORDER BY 1")]
        self.vector_counts = language_stats.vector_counts(store)
        self.stats = language_stats.load(store, self.vector_counts)
        self.aliases = AliasTable.from_rows(store.entity_names(), self.normaliser)
        self._df: dict[str, int] = {}

    @property
    def n_chunks(self) -> int:
        return self._n_chunks

    # -- statistics -------------------------------------------------------------------------
    def _doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        for t in terms:
            if t not in self._df:
                row = self.store.db.execute(
                    "SELECT COUNT(*) FROM chunks WHERE terms @@ ?::tsquery", (tsquery_any([t]),)
                ).fetchone()
                self._df[t] = int(row[0]) if row else 0
        return {t: self._df[t] for t in terms}

    # -- query side --------------------------------------------------------------------------
    def query_terms(self, query: str) -> QueryTerms:
        return expand_query(
            query, self.normaliser, self.aliases, self._variants, expand_aliases=self.fusion.expand_aliases
        )

    @cached_property
    def _variants(self) -> NameVariants:
        from pipeline.nlp.registry import load_suffixes

        return NameVariants(load_suffixes(Path(self.settings.nlp.models_dir)))

    # -- filters ----------------------------------------------------------------------------
    def filter_sql(self, f: Filters) -> tuple[list[str], list[Any]]:
        """The filters as conditions on ``chunks c`` (none when no filter is set)."""
        if not f.active():
            return [], []
        if f.agreement_type and f.agreement_type not in AGREEMENT_TYPES:
            raise UsageError(
                f"unknown agreement type {f.agreement_type!r} (choose from {', '.join(AGREEMENT_TYPES)})"
            )
        entity_ids = None
        if f.entity:
            ids = self.aliases.ids
            entity_ids = sorted({e for v in self._variants(f.entity) for e in ids.get(v, ())})
        where, params = self.store.filter_conditions(
            "c",
            languages=f.languages,
            since=f.since,
            until=f.until,
            entity_ids=entity_ids,
            agreement_type=f.agreement_type,
        )
        if f.doc_ids is not None:
            where.append("c.doc_id = ANY(?)")
            params.append(sorted(f.doc_ids))
        return where, params

    def allowed_count(self, f: Filters) -> int:
        where, params = self.filter_sql(f)
        return self._count(where, params)

    def _counts_by_language(self, where: list[str], params: list[Any]) -> dict[str, int]:
        rows = self.store.db.execute(
            f"""SELECT c.language, COUNT(*) FROM chunks c WHERE c.embedding IS NOT NULL AND {" AND ".join(where)}
                GROUP BY c.language""",
            params,
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def _count(self, where: list[str], params: list[Any]) -> int:
        sql = "SELECT COUNT(*) FROM chunks c" + (" WHERE " + " AND ".join(where) if where else "")
        row = self.store.db.execute(sql, params).fetchone()
        return int(row[0]) if row else 0

    # -- search -----------------------------------------------------------------------------
    def _rank(self, query: str, k: int, filters: Filters, mode: str) -> list[Hit]:
        where, params = self.filter_sql(filters)
        qterms = self.query_terms(query)
        n_cand = max(self.settings.index.candidates, k * 10)
        cand = _Candidates()
        with self.store.db.transaction() as conn:
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            lexical = mode != "dense" and self._lexical(qterms, n_cand, where, params, cand)
            if mode == "lexical":
                ids = [i for i in cand.ids() if cand.lex.get(i, 0.0) > 0]
                lex_only = np.asarray([cand.lex[i] for i in ids], dtype=np.float32)
                return self._hits(ids, lex_only, cand, k, qterms)
            q = self.embedder.queries([query])[0]
            self._dense(q, n_cand, where, params, cand)
            ids = cand.ids()
            self._fill(q, ids, qterms, cand, need_lex=lexical)
        z = self._standardise(q, ids, cand)
        if mode == "dense" or not lexical:
            return self._hits(ids, z, cand, k, qterms)
        lex = np.asarray([cand.lex.get(i, 0.0) for i in ids], dtype=np.float32)
        lang = self._language_codes(ids, cand)
        fused = fuse(z, lex, lang, len(self.languages), self.fusion, n_cand, self.settings.index.rrf_k)
        return self._hits(ids, fused, cand, k, qterms)

    def _language_codes(self, ids: list[int], cand: _Candidates) -> npt.NDArray[np.int64]:
        """Each candidate's passage language as an index into ``self.languages`` (sorted, as the
        embedded snapshot's)."""
        code = {lang: i for i, lang in enumerate(self.languages)}
        return np.asarray([code[cand.lang[i]] for i in ids], dtype=np.int64)

    def _dense(self, q: Floats, n: int, where: list[str], params: list[Any], cand: _Candidates) -> None:
        """The best ``n`` chunks by cosine in each passage language: by the HNSW index, or exactly when
        the group's filtered chunks are few (an HNSW scan would walk many rejected nodes to find ``n``).

        The HNSW scan starts with ``ef_search`` raised to ``n`` divided by the share of chunks the
        group's conditions keep, so the iterative scan seldom needs further rounds."""
        qtext = vector_literal(q)
        total = max(1, self.n_chunks)
        # Chunks per language that pass the filters: a group nothing passes is skipped (an HNSW scan
        # for it would walk the whole graph), a small one is ranked exactly.
        sizes = self.vector_counts if not where else self._counts_by_language(where, params)
        multilingual = len(self.languages) > 1
        groups = [(lang, "c.language = ?", [lang]) for lang in self.languages] if multilingual else []
        for lang, cond, gparams in groups or [("", "TRUE", [])]:
            size = sizes.get(lang, 0) if multilingual else sum(sizes.values())
            if size == 0:
                continue
            exact = size <= EXACT_MAX_ROWS
            # "+ 0" makes the sort key an expression the HNSW index cannot serve: the planner sorts the
            # group's rows (found through the language/date or other indexes) by exact distance.
            order = "(c.embedding <=> ?::vector) + 0" if exact else "c.embedding <=> ?::vector"
            if not exact:
                ef = min(MAX_EF_SEARCH, max(self.ef_search, int(n * total / size)))
                self.store.db.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            conds = ["c.embedding IS NOT NULL", cond, *where]
            rows = self.store.db.execute(
                f"""SELECT c.vec_id, c.doc_id, c.language, c.seq, c.embedding <=> ?::vector FROM chunks c
                    WHERE {" AND ".join(conds)} ORDER BY {order} LIMIT ?""",
                [qtext, *gparams, *params, qtext, n],
            ).rows
            for vec, doc, lang_, seq, dist in rows:
                cand.add(int(vec), doc, lang_, int(seq))
                cand.raw[int(vec)] = 1.0 - float(dist)

    def _lexical(
        self, qterms: QueryTerms, n: int, where: list[str], params: list[Any], cand: _Candidates
    ) -> bool:
        """The best ``n`` chunks by BM25 (per passage language with ``lexical_per_language``, as the
        fusion normalises or ranks them); False when no query term is in the index."""
        idf = self._idf(qterms)
        if not idf:
            return False
        per_language = self.fusion.lexical_per_language and len(self.languages) > 1
        groups = [("c.language = ?", [lang]) for lang in self.languages] if per_language else [("TRUE", [])]
        for cond, gparams in groups:
            self._bm25(idf, [cond, *where], [*gparams, *params], n, cand)
        return True

    def _idf(self, qterms: QueryTerms) -> dict[str, float]:
        df = {t: d for t, d in self._doc_freqs(sorted(qterms.expanded)).items() if d > 0}
        return {t: math.log(1 + (self.n_chunks - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def _bm25(
        self, idf: dict[str, float], conds: list[str], params: list[Any], limit: int | None, cand: _Candidates
    ) -> None:
        terms = sorted(idf)
        # BM25 (Lucene): Σ idf · tf / (tf + k1 · (1 − b + b · dl / avgdl)), tf read from the chunk's
        # ``tf`` object by key; the GIN index on ``terms`` finds the chunks holding any query term.
        tfs = ", ".join(f"COALESCE((c.tf ->> ?)::float8, 0) AS f{i}" for i in range(len(terms)))
        score = " + ".join(f"? * t.f{i} / (t.f{i} + z.norm)" for i in range(len(terms)))
        rows = self.store.db.execute(
            f"""SELECT c.vec_id, c.doc_id, c.language, c.seq, {score} AS score
                FROM chunks c
                CROSS JOIN LATERAL (SELECT ? * (1 - ? + ? * c.n_terms / ?) AS norm) z
                CROSS JOIN LATERAL (SELECT {tfs}) t
                WHERE c.terms @@ ?::tsquery AND {" AND ".join(conds)}
                ORDER BY score DESC, c.seq {"LIMIT ?" if limit is not None else ""}""",
            [
                *(idf[t] for t in terms),
                BM25_K1,
                BM25_B,
                BM25_B,
                self.avgdl,
                *terms,
                tsquery_any(terms),
                *params,
            ]
            + ([limit] if limit is not None else []),
        ).rows
        for vec, doc, lang, seq, score in rows:
            cand.add(int(vec), doc, lang, int(seq))
            cand.lex[int(vec)] = float(score)

    def _fill(
        self, q: Floats, ids: list[int], qterms: QueryTerms, cand: _Candidates, *, need_lex: bool
    ) -> None:
        """Cosine of the BM25-only candidates, BM25 of the dense-only ones."""
        no_raw = [i for i in ids if i not in cand.raw]
        if no_raw:
            rows = self.store.db.execute(
                "SELECT vec_id, embedding <=> ?::vector FROM chunks WHERE vec_id = ANY(?)",
                (vector_literal(q), no_raw),
            )
            for vec, dist in rows:
                cand.raw[int(vec)] = math.nan if dist is None else 1.0 - float(dist)
        no_lex = [i for i in ids if i not in cand.lex]
        if need_lex and no_lex:
            self._bm25(self._idf(qterms), ["c.vec_id = ANY(?)"], [no_lex], None, cand)

    def _standardise(self, q: Floats, ids: list[int], cand: _Candidates) -> Floats:
        """z per passage language (``standardise``); a language with too few chunks for its own
        statistics uses those of all chunks."""
        stats = [self.stats.get(lang, self.stats.get(ALL_LANGUAGES)) for lang in self.languages]
        raw = np.asarray([cand.raw.get(i, math.nan) for i in ids], dtype=np.float32)
        return standardise(q, raw, self._language_codes(ids, cand), stats)

    # -- documents ---------------------------------------------------------------------------
    def _hits(
        self, ids: list[int], scores: Floats, cand: _Candidates, k: int, qterms: QueryTerms
    ) -> list[Hit]:
        """The best ``k`` documents, each scored by its best chunk, with that chunk as the snippet."""
        doc_names, doc_codes = np.unique(
            np.asarray([cand.doc[i] for i in ids], dtype=object), return_inverse=True
        )
        best: dict[str, tuple[float, int]] = {
            str(doc_names[doc_codes[i]]): (float(scores[i]), ids[i])
            for i in best_per_document(doc_codes, scores, k)
        }
        meta = self.store.document_meta(list(best))
        texts = self.store.chunk_texts([vec for _, vec in best.values()])
        hits = []
        for doc_id, (score, vec) in best.items():
            m = meta.get(doc_id)
            if m is None:  # removed since the candidates were read
                continue
            snippet, matched = best_snippet(self.normaliser, texts.get(vec, ""), set(qterms.expanded))
            hits.append(
                Hit(doc_id, m["url"], m["title"], m["language"], m["published"], score, snippet, matched)
            )
        return hits
