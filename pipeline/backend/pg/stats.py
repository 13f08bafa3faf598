"""Per-language passage statistics of a PostgreSQL store, computed once and kept in the database.

The searcher standardises dense scores with each passage language's mean and covariance
(``pipeline.index.snapshot.LanguageStats``). Estimating them reads up to ``STATS_SAMPLE`` vectors per
language — seconds at 100k chunks, too slow for every ``defintel search``. Writers refresh them into
``search_stats`` (``defintel migrate`` does; an ingest should after its last batch); a searcher uses
the stored ones while the per-language vector counts they were computed from still hold, and
computes them itself (without storing: it may be read-only) otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.clock import now
from pipeline.index.snapshot import ALL_LANGUAGES, MIN_LANGUAGE_CHUNKS, STATS_SAMPLE, LanguageStats

log = logging.getLogger(__name__)


def vector_counts(store: Any) -> dict[str, int]:
    """Chunks with a vector, per passage language."""
    rows = store.db.execute(
        "SELECT language, COUNT(*) FROM chunks WHERE embedding IS NOT NULL GROUP BY language"
    )
    return {str(r[0]): int(r[1]) for r in rows}


def compute(store: Any, counts: dict[str, int]) -> dict[str, LanguageStats]:
    """Statistics per language, plus ``*`` over all chunks (as the embedded snapshot keeps)."""
    stats: dict[str, LanguageStats] = {}
    groups: list[tuple[str, str, list[Any]]] = [(lang, "language = ?", [lang]) for lang in sorted(counts)]
    groups.append((ALL_LANGUAGES, "TRUE", []))
    for name, cond, params in groups:
        n = sum(counts.values()) if name == ALL_LANGUAGES else counts[name]
        if n < MIN_LANGUAGE_CHUNKS:
            continue
        # vec_ids are hash-derived: the first STATS_SAMPLE by vec_id are a uniform sample.
        rows = store.db.execute(
            f"""SELECT embedding::real[] FROM chunks WHERE {cond} AND embedding IS NOT NULL
                ORDER BY vec_id LIMIT ?""",
            [*params, STATS_SAMPLE],
        ).rows
        x = np.asarray([r[0] for r in rows], dtype=np.float64)
        mean = x.mean(axis=0)
        cov = (x - mean).T @ (x - mean) / len(x)
        stats[name] = LanguageStats(mean.astype(np.float32), cov.astype(np.float32))
    return stats


def _key(counts: dict[str, int]) -> dict[str, int]:
    return {**counts, ALL_LANGUAGES: sum(counts.values())}


def refresh(store: Any) -> dict[str, LanguageStats]:
    """Compute the statistics and store them (a writable store); returns them."""
    counts = vector_counts(store)
    stats = compute(store, counts)
    key = _key(counts)
    with store.atomic():
        store.db.execute("DELETE FROM search_stats")
        store.db.executemany(
            "INSERT INTO search_stats (language, n_vectors, dim, mean, cov, updated_at) VALUES (?,?,?,?,?,?)",
            [
                (
                    lang,
                    key[lang],
                    int(s.mean.shape[0]),
                    s.mean.astype("<f4").tobytes(),
                    s.cov.astype("<f4").tobytes(),
                    now(),
                )
                for lang, s in stats.items()
            ],
        )
        # Languages too small for statistics are recorded too, so the counts still identify the state.
        store.db.executemany(
            "INSERT INTO search_stats (language, n_vectors, dim, updated_at) VALUES (?,?,0,?)",
            [(lang, n, now()) for lang, n in key.items() if lang not in stats],
        )
    log.info("search statistics refreshed for %d languages", len(stats))
    return stats


def load(store: Any, counts: dict[str, int]) -> dict[str, LanguageStats]:
    """The stored statistics while they match ``counts``, else freshly computed ones (not stored)."""
    rows = store.db.execute("SELECT language, n_vectors, dim, mean, cov FROM search_stats").rows
    if {str(r[0]): int(r[1]) for r in rows} == _key(counts):
        out = {}
        for lang, _, dim, mean, cov in rows:
            if dim:
                m = np.frombuffer(bytes(mean), dtype="<f4").astype(np.float32)
                c = np.frombuffer(bytes(cov), dtype="<f4").astype(np.float32).reshape(dim, dim)
                out[str(lang)] = LanguageStats(m, c)
        return out
    log.info("search statistics out of date: computing them for this searcher (refresh them after ingest)")
    return compute(store, counts)
