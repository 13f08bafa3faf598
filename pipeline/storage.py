"""Kept for imports written before ``pipeline.backend``: the same functions, from there."""

from __future__ import annotations

from pipeline.backend import is_postgres, open_searcher, open_store, open_vectors
from pipeline.backend.protocols import Store as StoreProtocol

__all__ = ["StoreProtocol", "is_postgres", "open_searcher", "open_store", "open_vectors"]
