"""Train the Turkish NER model (ORG / PERSON / GPE) that runs after the registry ruler.

Data (``../shared/ner_train``, read in place, never copied into the project):

* Turkish Wiki NER (Altınok) ``train.conll`` — gold, 19 OntoNotes types;
* WikiANN-tr ``dev.conll`` — silver, PER/ORG/LOC, minus every sentence that also occurs in the
  WikiANN-tr *test* split (``../shared/benchmarks/ner_tr_wikiann``; 554 of them), so the public
  test split stays unseen;
* Turkish Wiki NER ``dev.conll`` and every k-th of the kept WikiANN sentences (``--wikiann-select``,
  1,000; not trained on) — model selection only (spaCy keeps the best checkpoint on the two).

Labels are mapped to ours: PERSON/PER → PERSON, ORG → ORG, GPE/LOC → GPE; everything else
(NORP, FAC, DATE, WORK_OF_ART…) becomes O. Tokens keep their attached suffixes (``Adana'da`` is one
token labelled GPE), as the project's gold and the external checks do.

The model is a standard spaCy pipeline (``tok2vec`` CNN + transition-based ``ner``) whose word
embeddings are spaCy's hashed spelling features beside pretrained multilingual subword vectors:
each word's multilingual-e5-small SentencePiece pieces, their input embeddings averaged
(``pipeline/nlp/pieces.py``; read from ``models/e5-small``, which ``make models`` builds, and never
copied into the model). It is trained by spaCy's own training loop from a config written here,
seeded (``--seed``) with one thread, so the same data and settings give the same weights. Azerbaijani uses the same model over
a one-for-one character mapping of the text (``pipeline/nlp/entities.py``), so nothing here is
Azerbaijani-specific.

    .venv/bin/python models/train_ner.py [--epochs 6] [--out models/ner-tr]   # `make models-ner`

Writes ``--out`` (spaCy ``config.cfg`` + weights) and its ``meta.json``, to which a ``defintel`` block
is added: settings, the sha256 of every data file used, sentence/token counts, wall time and dev
scores per label; and ``lowercase_words.txt``, the folded words the training text writes in lower
case (the pipeline's test for a capitalised sentence-initial word).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LOWERCASE_WORDS = "lowercase_words.txt"  # read by pipeline/nlp/entities.py
LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "ORG": "ORG",
    "GPE": "GPE",
    "LOC": "GPE",
}

Sentence = tuple[list[str], list[str]]


def read_conll(path: Path, prefix: str = "") -> list[Sentence]:
    """Sentences as (tokens, BIO tags mapped to ours: B-X / I-X / O)."""
    out: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if words:
                out.append((words, tags))
            words, tags = [], []
            continue
        token, _, tag = line.rpartition("\t") if "\t" in line else line.rpartition(" ")
        token = token.strip()
        if prefix and token.startswith(prefix):
            token = token[len(prefix) :]
        tag = tag.strip()
        kind = LABELS.get(tag[2:]) if tag[:2] in ("B-", "I-") else None
        words.append(token or "_")
        tags.append(f"{tag[:2]}{kind}" if kind else "O")
    return out


def bio_to_biluo(tags: list[str]) -> list[str]:
    """BIO (an I- after O or another type starts an entity, as conlleval reads it) → spaCy BILUO."""
    chunks: list[tuple[int, int, str]] = []
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        t = tag[2:] if tag != "O" else ""
        begins = tag.startswith("B-") or (tag.startswith("I-") and t != kind)
        if kind and (tag == "O" or begins):
            chunks.append((start, i, kind))
            kind = ""
        if begins:
            start, kind = i, t
    out = ["O"] * len(tags)
    for s, e, k in chunks:
        if e - s == 1:
            out[s] = f"U-{k}"
        else:
            out[s], out[e - 1] = f"B-{k}", f"L-{k}"
            for j in range(s + 1, e - 1):
                out[j] = f"I-{k}"
    return out


def lowercase_words(sentences: list[Sentence], min_count: int = 2) -> list[str]:
    """Folded words the training text writes in lower case at least ``min_count`` times: the
    pipeline keeps a sentence's capitalised first word that the model calls a name unless it is
    one of these (``Bu``, ``Ayrıca``; not ``Adana``)."""
    from collections import Counter

    from pipeline.textnorm import normalize

    counts = Counter(normalize(w) for words, _ in sentences for w in words if w[:1].islower() and w.isalpha())
    return sorted(w for w, n in counts.items() if n >= min_count)


def _shown(path: Path) -> str:
    """A path as the meta file shows it: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_docbin(sentences: list[Sentence], path: Path) -> None:
    import spacy
    from spacy.tokens import Doc, DocBin
    from spacy.training import biluo_tags_to_spans

    vocab = spacy.blank("tr").vocab
    db = DocBin(store_user_data=False)
    for words, tags in sentences:
        doc = Doc(vocab, words=words)
        doc.ents = biluo_tags_to_spans(doc, bio_to_biluo(tags))
        db.add(doc)
    db.to_disk(path)


def config_text(args: argparse.Namespace, train: Path, dev: Path) -> str:
    from spacy.cli.init_config import init_config

    config = init_config(lang="tr", pipeline=["ner"], optimize="efficiency")
    config["paths"]["train"] = str(train)
    config["paths"]["dev"] = str(dev)
    config["system"]["seed"] = args.seed
    t2v = config["components"]["tok2vec"]["model"]
    t2v["encode"]["width"] = args.width
    t2v["encode"]["depth"] = args.depth
    t2v["embed"]["rows"] = [args.rows, args.rows // 2, args.rows // 2, args.rows // 2]
    if args.pieces:
        t2v["embed"]["@architectures"] = "defintel.PieceHashEmbed.v1"
        t2v["embed"]["e5_dir"] = str(args.pieces)
        t2v["embed"]["piece_width"] = args.piece_width
    training = config["training"]
    training["max_epochs"] = args.epochs
    training["max_steps"] = 0
    training["patience"] = 0
    training["eval_frequency"] = args.eval_frequency
    training["dropout"] = args.dropout
    return str(config.to_str())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "ner_train")
    ap.add_argument("--benchmarks", type=Path, default=SHARED / "benchmarks")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "ner-tr")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--dropout", type=float, default=0.15)
    ap.add_argument("--eval-frequency", type=int, default=200)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument(
        "--pieces",
        type=Path,
        default=ROOT / "models" / "e5-small",
        help="the e5 model whose piece vectors join the embeddings (pipeline/nlp/pieces.py; `make models`)",
    )
    ap.add_argument("--no-pieces", action="store_true", help="hash embeddings only (no e5 piece vectors)")
    ap.add_argument("--piece-width", type=int, default=64, help="project the piece vectors to this width")
    ap.add_argument(
        "--wikiann-select",
        type=int,
        default=1000,
        help="WikiANN dev sentences held out of training to select the checkpoint with (0: none)",
    )
    ap.add_argument("--limit", type=int, default=0, help="train on the first N sentences (smoke runs)")
    args = ap.parse_args(argv)

    files = {
        "tr_wiki_ner/train.conll": args.data / "tr_wiki_ner" / "train.conll",
        "tr_wiki_ner/dev.conll": args.data / "tr_wiki_ner" / "dev.conll",
        "wikiann_tr/dev.conll": args.data / "wikiann_tr" / "dev.conll",
        "ner_tr_wikiann/wikiann_tr_test.conll": args.benchmarks / "ner_tr_wikiann" / "wikiann_tr_test.conll",
    }
    if args.no_pieces:
        args.pieces = None
    elif not (args.pieces / "model.safetensors").exists():
        print(
            f"train_ner: no e5 model in {args.pieces}: run `make models` first (or --no-pieces)",
            file=sys.stderr,
        )
        return 2
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        print(f"train_ner: training data not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))

    twner_train = read_conll(files["tr_wiki_ner/train.conll"])
    twner_dev = read_conll(files["tr_wiki_ner/dev.conll"])
    wikiann_dev = read_conll(files["wikiann_tr/dev.conll"], prefix="tr:")
    test_sentences = {tuple(w) for w, _ in read_conll(files["ner_tr_wikiann/wikiann_tr_test.conll"], "tr:")}
    wikiann_kept = [s for s in wikiann_dev if tuple(s[0]) not in test_sentences]
    # every k-th kept WikiANN sentence selects the checkpoint beside Turkish Wiki NER dev, so the
    # best model is the best on both annotation styles; the rest are trained on
    step = len(wikiann_kept) // args.wikiann_select if args.wikiann_select else 0
    wikiann_select = wikiann_kept[::step][: args.wikiann_select] if step else []
    chosen = {id(x) for x in wikiann_select}
    train = twner_train + [x for x in wikiann_kept if id(x) not in chosen]
    dev = twner_dev + wikiann_select
    if args.limit:
        train = train[: args.limit]
    counts = {
        "tr_wiki_ner_train": len(twner_train),
        "wikiann_dev": len(wikiann_dev),
        "wikiann_dev_dropped_in_test": len(wikiann_dev) - len(wikiann_kept),
        "train_sentences": len(train),
        "train_tokens": sum(len(w) for w, _ in train),
        "dev_sentences": len(dev),
        "dev_wikiann_sentences": len(wikiann_select),
    }
    print(json.dumps(counts), flush=True)

    from spacy.cli.train import train as spacy_train

    if args.pieces:
        import pipeline.nlp.pieces  # noqa: F401  (registers defintel.PieceHashEmbed.v1)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_docbin(train, work / "train.spacy")
        write_docbin(dev, work / "dev.spacy")
        cfg = work / "config.cfg"
        cfg.write_text(config_text(args, work / "train.spacy", work / "dev.spacy"), encoding="utf-8")
        spacy_train(cfg, work / "out", use_gpu=-1)
        best = work / "out" / "model-best"
        spacy_meta = json.loads((best / "meta.json").read_text(encoding="utf-8"))
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(best, args.out)
        if args.pieces:  # the loader reads the e5 model of its own models dir; no path of this machine
            cfg_out = args.out / "config.cfg"
            cfg_out.write_text(
                cfg_out.read_text(encoding="utf-8").replace(f'"{args.pieces}"', '"../e5-small"'),
                encoding="utf-8",
            )
    seconds = time.perf_counter() - t0

    perf = spacy_meta.get("performance", {})
    scores = {
        "dev_set": "tr_wiki_ner/dev.conll (PER/ORG/GPE+LOC)"
        + (
            f" + {len(wikiann_select)} wikiann_tr/dev sentences held out of training"
            if wikiann_select
            else ""
        ),
        "ents_p": perf.get("ents_p"),
        "ents_r": perf.get("ents_r"),
        "ents_f": perf.get("ents_f"),
        "ents_per_type": perf.get("ents_per_type"),
    }
    meta = dict(spacy_meta)  # spaCy reads lang/pipeline from it; ours goes beside
    meta["name"] = "defintel_ner_tr"
    meta["defintel"] = {
        "model": "defintel Turkish NER (spaCy tok2vec CNN + ner), labels ORG/PERSON/GPE",
        "command": "models/train_ner.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {
            k: (_shown(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("data", "benchmarks", "out")
        },
        "spacy": spacy_meta.get("spacy_version"),
        "data_sha256": {name: sha256(path) for name, path in files.items()},
        "data_counts": counts,
        "train_seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "scores": scores,
    }
    lexicon = lowercase_words(train)
    (args.out / LOWERCASE_WORDS).write_text("\n".join(lexicon) + "\n", encoding="utf-8")
    meta["defintel"]["lowercase_words"] = len(lexicon)
    (args.out / "meta.json").write_text(
        json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(json.dumps(scores, indent=1))
    print(f"model written to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
