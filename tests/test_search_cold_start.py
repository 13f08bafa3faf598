"""A fresh ``defintel`` process for search, documents, entities and --help imports none of the heavy
modules those commands do not need (checked in a subprocess's ``sys.modules``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.index.search import Searcher
from tests.conftest import ROOT

HEAVY = (
    "faiss",  # an exact index is mapped from vectors.npy: only ingest and HNSW need FAISS
    "torch",
    "spacy",
    "transformers",
    "sentence_transformers",
    "onnxruntime",
    "tokenizers",
    "bm25s",
    "scipy",
    "sklearn",
    "trafilatura",
    "lingua",
    "networkx",
    "streamlit",
)
# Runs the CLI in-process, then reports which heavy top-level modules it imported.
PROBE = (
    "import json, sys\n"
    "from pipeline.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
    'print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)\n'
)


def run_probe(settings: Settings, *args: str) -> tuple[dict[str, object], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFINTEL_")}
    env["DEFINTEL_INDEX__EMBEDDER"] = "hashing"
    env["DEFINTEL_NLP__MODELS_DIR"] = str(ROOT / "models")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "--data-dir", str(settings.data_path), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report, proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("search", "Azersilah patron istehsalı", "--format", "json"),
        ("search", "Otokar", "--lang", "tr,az", "--entity", "Otokar", "--format", "json"),
        ("documents", "--format", "json"),
        ("entities", "--format", "json"),
        ("--help",),
        ("search", "--help"),
    ],
)
def test_commands_import_no_heavy_modules(ingested: Settings, args: tuple[str, ...]) -> None:
    Searcher(ingested, Store(ingested.data_path))  # the snapshot exists, as after a first search
    report, stdout = run_probe(ingested, *args)
    assert report["code"] in (0, None), report
    assert report["heavy"] == [], f"{' '.join(args)} imported {report['heavy']}"
    if args[0] == "search" and "--help" not in args:
        hits = json.loads(stdout)
        assert hits and all(h["snippet"] for h in hits)
