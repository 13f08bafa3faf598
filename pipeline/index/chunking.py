"""Sentence-respecting chunks of a document's text, with ids derived from the document."""

from __future__ import annotations

from pipeline.records import Chunk, Document, sha1
from pipeline.segment import sentences


def chunk_document(doc: Document, max_words: int = 160) -> list[Chunk]:
    """Consecutive sentences up to ``max_words`` words; the title is its own context, not a chunk."""
    body_start = len(doc.title) + 2 if doc.text.startswith(doc.title) else 0
    spans = [(s, e) for s, e in sentences(doc.text) if s >= body_start] or [(0, len(doc.text))]
    chunks: list[Chunk] = []
    cur_start, cur_end, words = spans[0][0], spans[0][0], 0
    for s, e in spans:
        n = len(doc.text[s:e].split())
        if words and words + n > max_words:
            chunks.append(_chunk(doc, len(chunks), cur_start, cur_end))
            cur_start, words = s, 0
        cur_end, words = e, words + n
    chunks.append(_chunk(doc, len(chunks), cur_start, cur_end))
    return chunks


def _chunk(doc: Document, n: int, start: int, end: int) -> Chunk:
    return Chunk(sha1(doc.doc_id, n), doc.doc_id, n, doc.text[start:end], start, end)


def passage_text(title: str, chunk_text: str) -> str:
    """What is embedded for a chunk: the title gives every chunk its article's context."""
    return f"{title}\n{chunk_text}"
