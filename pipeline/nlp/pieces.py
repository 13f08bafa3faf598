"""Pretrained multilingual word features for the trained NER model: e5 subword embeddings.

The NER model's own embeddings are hashed from a word's spelling (its lowercase form, prefix,
suffix and shape) and learn only from the training sentences, so a name it has never seen is
judged by its letters alone. This layer adds what the search's multilingual encoder
(``models/e5-small``, multilingual-e5-small built by ``make models``) learned from a hundred
languages: every token is cut into e5's SentencePiece pieces and the pieces' input embeddings
(the encoder's first layer, no transformer pass) are averaged into one 384-wide vector per word.
Words that name places, people and companies sit near each other in that space across
Turkish, Azerbaijani and English, whether or not the NER training data had them.

The segmentation is e5's own unigram Viterbi over its pieces and scores (a small table written
beside the e5 model on first use, instead of the 0.3 GB tokenizer), the embedding matrix is
memory-mapped and read row by row, and word vectors are cached, so the cost is a dictionary look-up
per token once a text's words were seen.
The layer has no weights of its own (the model learns how to use the vectors in the layer after
it), so the trained model stays small and the vectors are never copied into it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TypedDict, cast

import numpy as np
from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Maxout, Model, chain, concatenate, with_array
from thinc.types import Floats2d

log = logging.getLogger(__name__)

E5_DIR = "e5-small"
PIECE_TABLE = "piece_table"
_SPACE = "\u2581"  # SentencePiece's word-start mark
_SPECIAL_IDS = frozenset({0, 1, 2, 3})  # <s> <pad> </s> <unk>: never matched in text


class PieceTable(TypedDict):
    pieces: list[str]
    scores: list[float]
    unk_id: int
    scale: float


PIECE_DIM = 384  # multilingual-e5-small's hidden size
PIECES_ARCHITECTURE = "defintel.PieceHashEmbed.v1"
_MATRIX_KEY = "embeddings.word_embeddings.weight"
_CACHE_LIMIT = 50_000  # words (≈ 75 MB of vectors); the cache starts again beyond that


class PieceVectors:
    """Word → mean of its e5 pieces' input embeddings (float32, scaled to unit variance).

    Words are cut as e5's SentencePiece unigram model cuts them (NFKC, ``▁`` before the word, the
    most probable segmentation, consecutive unknown characters one ``<unk>``) from its pieces and
    scores (``piece_table/pieces.json``, written beside the e5 model on first use, with the
    matrix's scale); the rows are read from the memory-mapped ``model.safetensors``. Loading costs
    a fraction of a second, not the 250k-piece tokenizer's 0.9 s and 0.3 GB."""

    def __init__(self, e5_dir: str | Path) -> None:
        root = Path(e5_dir)
        table = load_piece_table(root)
        pieces, scores = table["pieces"], table["scores"]
        self.unk = int(table["unk_id"])
        self.ids = {p: i for i, p in enumerate(pieces) if i not in _SPECIAL_IDS}
        self.scores = scores
        self.matrix = _memmap(root / "model.safetensors", _MATRIX_KEY)
        self.width = int(self.matrix.shape[1])
        self.unk_score = min(scores) - 10.0
        self.longest = max(len(p) for p in pieces)
        self.space = self.ids.get(_SPACE)
        self.scale = float(table["scale"])
        self.cache: dict[str, np.ndarray] = {}
        self.by_orth: dict[int, np.ndarray] = {}  # the same vectors by the tokens' ORTH hashes

    def segment(self, word: str) -> list[int]:
        """Piece ids of the most probable segmentation of ``▁word`` (Viterbi over the unigram
        scores; a character no piece covers is ``<unk>``, consecutive ones a single one)."""
        text = _SPACE + unicodedata.normalize("NFKC", word).replace(" ", _SPACE)
        n = len(text)
        best = [0.0] + [-math.inf] * n
        back: list[tuple[int, int | None]] = [(0, None)] * (n + 1)
        for end in range(1, n + 1):
            for start in range(max(0, end - self.longest), end):
                if best[start] == -math.inf:
                    continue
                piece = self.ids.get(text[start:end])
                if piece is not None:
                    score = best[start] + self.scores[piece]
                elif end - start == 1:
                    piece, score = self.unk, best[start] + self.unk_score
                else:
                    continue
                if score > best[end]:
                    best[end], back[end] = score, (start, piece)
        out: list[int] = []
        end = n
        while end > 0:
            start, piece = back[end]
            if piece is not None and not (piece == self.unk and out and out[-1] == self.unk):
                out.append(piece)  # consecutive unknown characters are one <unk>, as in e5's tokenizer
            end = start
        return out[::-1]

    def vector(self, word: str) -> np.ndarray:
        """One word's vector (computed once, then cached)."""
        vec = self.cache.get(word)
        if vec is None:
            pieces = self.segment(word)
            ids = [i for i in pieces if i != self.space] or pieces
            mean = (
                np.asarray(self.matrix[ids], dtype=np.float32).mean(axis=0) if ids else np.zeros(self.width)
            )
            vec = (mean * self.scale).astype(np.float32)
            if len(self.cache) >= _CACHE_LIMIT:
                self.cache.clear()
                self.by_orth.clear()
            self.cache[word] = vec
        return vec

    def for_doc(self, doc: Doc) -> np.ndarray:
        """The vectors of a doc's tokens, looked up by their ``ORTH`` hashes (no Token objects)."""
        by_orth, strings = self.by_orth, doc.vocab.strings
        vectors = []
        for o in doc.to_array("ORTH").tolist():
            vec = by_orth.get(o)
            if vec is None:
                vec = by_orth[o] = self.vector(strings[o])
            vectors.append(vec)
        return np.stack(vectors) if vectors else np.zeros((0, self.width), dtype=np.float32)

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        if not words:
            return np.zeros((0, self.width), dtype=np.float32)
        return np.stack([self.vector(w) for w in words])


def _memmap(path: Path, key: str) -> np.ndarray:
    """One tensor of a safetensors file, memory-mapped read-only (the file is 8 bytes of header
    length, a JSON header with each tensor's dtype/shape/offsets, then the raw data)."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    info = header[key]
    if info["dtype"] != "F32":
        raise ValueError(f"{path}: {key} is {info['dtype']}, expected F32")
    start, _ = info["data_offsets"]
    return np.memmap(path, dtype=np.float32, mode="r", offset=8 + size + start, shape=tuple(info["shape"]))


def build_piece_table(e5_dir: Path) -> PieceTable:
    """e5's unigram pieces, their scores and unknown-piece id (from ``tokenizer.json``) and the
    scale that gives the embedding matrix unit variance (from a 1-in-61 row sample)."""
    model = json.loads((e5_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{e5_dir}/tokenizer.json: expected a Unigram model, found {model.get('type')}")
    matrix = _memmap(e5_dir / "model.safetensors", _MATRIX_KEY)
    sample = np.asarray(matrix[:: max(1, matrix.shape[0] // 4096)], dtype=np.float32)
    return {
        "pieces": [p for p, _ in model["vocab"]],
        "scores": [float(score) for _, score in model["vocab"]],
        "unk_id": int(model["unk_id"]),
        "scale": float(1.0 / (sample.std() or 1.0)),
    }


def load_piece_table(e5_dir: Path) -> PieceTable:
    """The piece table of ``e5_dir`` (``piece_table/pieces.json``), built and saved there on first
    use (kept in memory only when the folder is read-only)."""
    index = e5_dir / PIECE_TABLE / "pieces.json"
    if index.exists():
        return cast(PieceTable, json.loads(index.read_text(encoding="utf-8")))
    table = build_piece_table(e5_dir)
    try:
        index.parent.mkdir(exist_ok=True)
        tmp = index.with_name(f"pieces.{os.getpid()}.tmp")  # two workers at once write their own files
        tmp.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        tmp.replace(index)
    except OSError as exc:
        log.warning("cannot save the e5 piece table in %s (%s): kept in memory", index.parent, exc)
    return table


@lru_cache(maxsize=2)
def piece_vectors(e5_dir: str) -> PieceVectors:
    return PieceVectors(e5_dir)


def PieceFeatures(e5_dir: str) -> Model[list[Doc], list[Floats2d]]:
    """Per doc, an (n_tokens, 384) array of e5 piece vectors; no weights, no gradient."""

    def forward(
        model: Model[list[Doc], list[Floats2d]], docs: list[Doc], is_train: bool
    ) -> tuple[list[Floats2d], Callable[[list[Floats2d]], list[Doc]]]:
        vectors = piece_vectors(model.attrs["e5_dir"])
        out = [model.ops.asarray2f(cast(Floats2d, vectors.for_doc(doc))) for doc in docs]
        return out, lambda d_out: []

    return Model("defintel_pieces", forward, attrs={"e5_dir": str(e5_dir)})


def piece_hash_embed(
    width: int,
    attrs: list[str],
    rows: list[int],
    include_static_vectors: bool,
    e5_dir: str,
    piece_width: int = PIECE_DIM,
) -> Model[list[Doc], list[Floats2d]]:
    """spaCy's MultiHashEmbed beside the e5 piece vectors (projected to ``piece_width`` when that is
    less than their 384), mixed to ``width`` by one Maxout."""
    hashed = MultiHashEmbed(width, attrs, rows, include_static_vectors)
    pieces = PieceFeatures(e5_dir)
    if piece_width < PIECE_DIM:
        pieces = chain(pieces, with_array(Linear(piece_width, PIECE_DIM)))
    return chain(
        concatenate(hashed, pieces),
        with_array(Maxout(width, width + min(piece_width, PIECE_DIM), nP=3, dropout=0.0, normalize=True)),
    )


registry.architectures.register(PIECES_ARCHITECTURE, func=piece_hash_embed)
