"""BM25 terms as a PostgreSQL ``tsvector``: the embedded index's own terms, stored verbatim.

The project's tr/az normalisation (folding ı/i, ə/e and diacritics, stopwords, prefix stems:
``pipeline.index.search.TermNormaliser``) runs in Python; the result is written as a ``tsvector``
literal (lexeme + positions), which PostgreSQL stores as given, without a text-search dictionary.
The GIN index on the ``tsvector`` finds the chunks holding a query term; their term frequencies
are read from ``tf`` (a JSON object term → count: one key lookup per query term, where unnesting the
whole ``tsvector`` of every matching chunk cost ~10x more on common terms). The document length
``n_terms`` is the term
count (at least 1, as the embedded index gives an empty chunk one placeholder term). Like the
embedded index, a chunk's terms include its document's title.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any


def _normaliser() -> Any:
    # Imported when first needed: pipeline.index.search loads FAISS, which `documents` never needs.
    from pipeline.index.search import DEFAULT_TERMS

    return DEFAULT_TERMS


def quote_lexeme(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(terms: Iterable[str]) -> str:
    """``'a':1,3 'b':2`` for the terms in order (positions are 1-based, capped as PostgreSQL caps them)."""
    positions: dict[str, list[int]] = {}
    for i, term in enumerate(terms, start=1):
        positions.setdefault(term, []).append(min(i, 16383))
    return " ".join(f"{quote_lexeme(t)}:{','.join(map(str, p[:256]))}" for t, p in positions.items())


def chunk_terms(title: str, text: str) -> tuple[str, int, str]:
    """(tsvector literal, BM25 document length, term frequencies as JSON) of one chunk: its
    document's title and its text, as the embedded BM25 index reads them."""
    terms = _normaliser().terms(title + "\n" + text)
    return tsvector_literal(terms), max(1, len(terms)), json.dumps(Counter(terms), ensure_ascii=False)


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query, sorted (as the embedded search looks them up)."""
    return sorted(set(_normaliser().terms(text)))


def tsquery_any(terms: Iterable[str]) -> str:
    """A ``tsquery`` literal matching chunks with any of the terms."""
    return " | ".join(quote_lexeme(t) for t in terms)
