"""NER behaviour issue #19 asks for: the trained model beside the registry, the Azerbaijani mapping,
``Long Name (ACR)`` aliases, state institutions by country, short forms of people. Sentences are
authored for these tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import spacy

from pipeline.config import NlpSettings
from pipeline.errors import UsageError
from pipeline.nlp.analyze import Analyzer
from pipeline.nlp.entities import (
    AZ_TO_TR,
    EntityFinder,
    ModelNer,
    _institution_types,
    _trained_ner,
    build_pipeline,
    trained_ner_path,
)
from pipeline.nlp.pieces import E5_DIR, PIECE_TABLE, PIECES_ARCHITECTURE, PieceVectors, piece_vectors
from pipeline.nlp.registry import load_registry
from pipeline.records import Analysis, Document
from tests.conftest import ROOT

MODELS = str(ROOT / "models")


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(NlpSettings(models_dir=MODELS))


def run(analyzer: Analyzer, lang: str, body: str) -> Analysis:
    doc = Document("d", "https://x.example/a", lang, "Test", "2025-02-05", None, f"Test\n\n{body}")
    return analyzer.analyze([doc])[0]


def found(a: Analysis) -> dict[str, tuple[str, str]]:
    return {m.text: (m.label, m.entity_id) for m in a.mentions}


# ---------------------------------------------------------------- the trained model and the registry


def test_trained_model_loads_from_models_offline() -> None:
    path = trained_ner_path(MODELS)
    assert path is not None and (path / "meta.json").exists()
    for lang in ("tr", "az"):
        nlp = build_pipeline(lang, MODELS)
        assert nlp.pipe_names == ["defintel_names", "defintel_model_ner"]


def _stub_model(patterns: list[dict[str, str]]) -> ModelNer:
    """A ModelNer whose "model" is a rule pipeline that predicts the given spans, overwriting
    whatever spans it is handed, so that the merge with the registry's spans is what is tested."""
    model = spacy.blank("tr")
    ruler = model.add_pipe("entity_ruler", config={"overwrite_ents": True})
    ruler.add_patterns(patterns)  # type: ignore[attr-defined]
    stub = ModelNer.__new__(ModelNer)
    stub.model = model
    stub.table = None
    stub.registry = load_registry(MODELS)
    stub.institutions = _institution_types(MODELS, stub.registry)
    return stub


def test_registry_spans_win_over_model_spans_on_overlap() -> None:
    nlp = spacy.blank("tr")
    nlp.add_pipe("defintel_names", config={"models_dir": MODELS, "rules": False})
    text = "Makine ve Kimya Endüstrisi ile Selim Karaca görüştü."
    doc = nlp(text)
    assert [(e.text, e.kb_id_) for e in doc.ents] == [("Makine ve Kimya Endüstrisi", "mke")]
    stub = _stub_model(
        [
            {"label": "PERSON", "pattern": "Kimya Endüstrisi ile Selim"},  # overlaps the registry name
            {"label": "PERSON", "pattern": "Selim Karaca"},
        ]
    )
    assert [e.text for e in stub.model(text).ents] == ["Kimya Endüstrisi ile Selim"]
    doc = stub(doc)
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [("Makine ve Kimya Endüstrisi", "ORG", "mke")]
    stub = _stub_model([{"label": "PERSON", "pattern": "Selim Karaca"}])
    doc = stub(nlp(text))
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Makine ve Kimya Endüstrisi", "ORG", "mke"),
        ("Selim Karaca", "PERSON", ""),
    ]


@pytest.mark.parametrize(
    ("lang", "text", "predicted", "expected"),
    [
        # a listed place used as a word of a longer name gives way to the name
        (
            "tr",
            "Bakü Futbol Kulübü maçı kazandı.",
            ("Bakü Futbol Kulübü", "ORG"),
            [("Bakü Futbol Kulübü", "ORG", "")],
        ),
        # ... but not a place with a case ending (two names side by side), apostrophe or attached
        (
            "tr",
            "Bakü'de Ali Veli konuştu.",
            ("Bakü'de Ali Veli", "PERSON"),
            [("Bakü'de", "GPE", "baku"), ("Ali Veli", "PERSON", "")],
        ),
        (
            "az",
            "Bakıda Əli Vəliyev danışdı.",
            ("Bakıda Əli Vəliyev", "PERSON"),
            [("Bakıda", "GPE", "baku"), ("Əli Vəliyev", "PERSON", "")],
        ),
        # a country before its government or a state institution's generic name stays the country
        ("tr", "Türkiye Hükümeti açıkladı.", ("Türkiye Hükümeti", "ORG"), [("Türkiye", "GPE", "turkiye")]),
        # a generic rule's name gives way to a longer one of its label, not to a person or a
        # span over a line break
        (
            "tr",
            "Haber\n\nKarabağ Savunma Teknolojileri Merkezi açıldı.",
            ("Haber\n\nKarabağ Savunma Teknolojileri Merkezi", "ORG"),
            [("Karabağ Savunma Teknolojileri Merkezi", "ORG", "")],
        ),
        (
            "tr",
            "Ahmet Yıldız Savunma Teknolojileri Merkezi Vakfı Ankara kuruldu.",
            ("Ahmet Yıldız Savunma Teknolojileri Merkezi Vakfı Ankara", "PERSON"),
            [("Ahmet Yıldız Savunma Teknolojileri Merkezi Vakfı", "ORG", ""), ("Ankara", "GPE", "ankara")],
        ),
        (
            "tr",
            "Ahmet Yıldız Savunma Teknolojileri Merkezi Vakfı Ankara kuruldu.",
            ("Ahmet Yıldız Savunma Teknolojileri Merkezi Vakfı Ankara", "ORG"),
            [("Ahmet Yıldız Savunma Teknolojileri Merkezi Vakfı Ankara", "ORG", "")],
        ),
        # a listed organisation always wins
        (
            "tr",
            "ASELSAN Konya Silah Sistemleri kuruldu.",
            ("ASELSAN Konya Silah Sistemleri", "ORG"),
            [("ASELSAN", "ORG", "aselsan"), ("Konya", "GPE", "geo-306571")],
        ),
    ],
)
def test_a_longer_model_name_replaces_a_listed_place_inside_it(
    lang: str, text: str, predicted: tuple[str, str], expected: list[tuple[str, str, str]]
) -> None:
    nlp = spacy.blank(lang)
    nlp.add_pipe("defintel_names", config={"models_dir": MODELS, "rules": True})
    stub = _stub_model([{"label": predicted[1], "pattern": predicted[0]}])
    doc = stub(nlp(text))
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == expected


def _model_mentions(lang: str, text: str, *predicted: tuple[str, str]) -> list[tuple[str, str]]:
    """The mentions EntityFinder makes of the spans the model predicts in ``text`` (the registry's
    own spans and the generic rules are left out, so the clean-up of model spans is tested)."""
    finder = EntityFinder(MODELS)
    nlp = spacy.blank(lang)
    nlp.add_pipe("defintel_names", config={"models_dir": MODELS, "rules": False})
    doc = nlp(text)
    spans = []
    for name, label in predicted:
        start = text.index(name)
        spans.append(doc.char_span(start, start + len(name), label=label))
    doc.ents = spans
    return [(m.text, m.label) for m in finder._mentions(doc)[0]]


@pytest.mark.parametrize(
    ("lang", "text", "predicted", "expected"),
    [
        # a country's own name is no genitive ("Arjant-in") and no ablative ("Kazakis-tan")
        ("tr", "Arjantin Millî Futbol Takımı kazandı.", ("Arjantin Millî Futbol Takımı", "ORG"), None),
        (
            "tr",
            "Kazakistan Komünist Halk Partisi kuruldu.",
            ("Kazakistan Komünist Halk Partisi", "ORG"),
            None,
        ),
        # a day with its case ending before a name is cut off; a number that is part of one is not
        ("az", "Noyabrın 26-da Rostov şəhərində", ("26-da Rostov", "GPE"), [("Rostov", "GPE")]),
        ("tr", "Takım 1. FC Nürnberg ile oynadı.", ("1. FC Nürnberg", "ORG"), None),
        # a word with the relative locative after a person's name is not part of it
        (
            "az",
            "Toplantıda Xəqani Qasımov Xızıdakı zavodu təqdim etdi.",
            ("Xəqani Qasımov Xızıdakı", "PERSON"),
            [("Xəqani Qasımov", "PERSON")],
        ),
        # a sentence's first word: an ordinary word is dropped, a proper noun with its Turkish
        # apostrophe ending or one no training sentence writes in lower case stays
        ("tr", "Ayrıca toplantı yapıldı.", ("Ayrıca", "GPE"), []),
        ("tr", "Prusya'da durum farklıydı.", ("Prusya'da", "GPE"), None),
        ("tr", "Sokrates savunmasını yaptı.", ("Sokrates", "PERSON"), None),
        ("az", "Hazırda danışıqlar gedir.", ("Hazırda", "GPE"), []),
        # a month with a case ending after an apostrophe is no name
        ("tr", "Anlaşma Haziran’da imzalandı.", ("Haziran’da", "GPE"), []),
    ],
)
def test_model_span_clean_up(
    lang: str, text: str, predicted: tuple[str, str], expected: list[tuple[str, str]] | None
) -> None:
    assert _model_mentions(lang, text, predicted) == ([predicted] if expected is None else expected)


def test_wiki_style_double_quotes_are_one_token() -> None:
    nlp = build_pipeline("tr", MODELS)
    assert [t.text for t in nlp.make_doc("'' Süper Lig '' ve `` Kupa ''")] == [
        "''",
        "Süper",
        "Lig",
        "''",
        "ve",
        "``",
        "Kupa",
        "''",
    ]


def test_azerbaijani_mapping_keeps_character_offsets(analyzer: Analyzer) -> None:
    text = "Bakıda keçirilən toplantıda Xəqani Qasımov Xızıdakı zavodu təqdim etdi."
    mapped = text.translate(AZ_TO_TR)
    assert mapped == "Bakıda keçirilen toplantıda Hekani Kasımov Hızıdakı zavodu tekdim etdi."
    assert len(mapped) == len(text)
    nlp = build_pipeline("az", MODELS)
    model = nlp.get_pipe("defintel_model_ner")
    assert isinstance(model, ModelNer)
    doc = nlp.make_doc(text)
    mirror = model._mirror(doc)
    assert mirror.text == mapped
    assert [(t.idx, len(t)) for t in mirror] == [(t.idx, len(t)) for t in doc]
    doc = nlp(text)
    for ent in doc.ents:
        assert ent.text == text[ent.start_char : ent.end_char]
    a = run(analyzer, "az", text)
    body = a.document.text
    offset = body.index(text)
    by_text = {m.text: (m.start - offset, m.end - offset, m.label) for m in a.mentions}
    assert by_text["Xəqani Qasımov"] == (28, 42, "PERSON")
    assert by_text["Bakıda"] == (0, 6, "GPE")
    for m in a.mentions:
        assert body[m.start : m.end] == m.text


# ---------------------------------------------------------------- Long Name (ACR)


def test_long_name_then_acronym_is_one_entity_and_later_uses_are_mentions(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Qarabağ Müdafiə Texnologiyaları Mərkəzi (QMTM) yeni laboratoriya açıb. "
        "Layihəni QMTM-in mühəndisləri hazırlayıb. QMTM gələn il ikinci laboratoriyanı açacaq.",
    )
    ids = {m.entity_id for m in a.mentions if m.text.startswith(("Qarabağ", "QMTM"))}
    texts = [m.text for m in a.mentions if m.text.startswith("QMTM")]
    assert texts == ["QMTM", "QMTM-in", "QMTM"]
    assert len(ids) == 1
    assert all(m.label == "ORG" for m in a.mentions if m.text.startswith("QMTM"))


def test_acronym_then_long_name_in_brackets(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Sözleşmeyi ASTEK (Anadolu Savunma Teknolojileri A.Ş.) imzaladı. ASTEK'in teslimatları 2026'da başlayacak.",
    )
    by_text = found(a)
    assert by_text["ASTEK"] == by_text["ASTEK'in"] == by_text["Anadolu Savunma Teknolojileri A.Ş."]


def test_a_listed_acronym_names_the_unlisted_long_name(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "The Defence Procurement Agency (SSB) approved the programme on Monday.",
    )
    assert found(a)["Defence Procurement Agency"] == ("ORG", "tr-ssb")


def test_acronym_of_an_event_is_no_entity(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Aselsan showed the system at the International Defence Industry Exhibition (IDIX). "
        "At IDIX, Aselsan also met buyers from Kazakhstan.",
    )
    assert not any("IDIX" in m.text or "Exhibition" in m.text for m in a.mentions)
    assert found(a)["Aselsan"][1] == "aselsan"


# ---------------------------------------------------------------- institutions, people, hygiene


def test_country_qualified_ministries_link_to_that_country(analyzer: Analyzer) -> None:
    az = run(
        analyzer,
        "az",
        "Azərbaycan nümayəndələri Özbəkistan Respublikası Müdafiə Nazirliyinin rəhbərliyi ilə görüşüb.",
    )
    tr = run(analyzer, "tr", "Heyet Özbekistan Savunma Bakanlığı yetkilileriyle görüştü.")
    en = run(
        analyzer, "en", "The delegation met officials of the Ministry of Defence of Uzbekistan in Tashkent."
    )
    uz = {
        found(az)["Özbəkistan Respublikası Müdafiə Nazirliyinin"],
        found(tr)["Özbekistan Savunma Bakanlığı"],
        found(en)["Ministry of Defence of Uzbekistan"],
    }
    assert len(uz) == 1
    assert next(iter(uz))[1] not in ("az-mod", "tr-msb")
    turkish = run(analyzer, "en", "The plant belongs to Turkey's Ministry of Defense, the company said.")
    assert found(turkish)["Ministry of Defense"] == ("ORG", "tr-msb")
    home = run(
        analyzer,
        "az",
        "Azərbaycan Müdafiə Nazirliyinin nümayəndələri Bakıda görüşüb. Müdafiə Nazirliyi bəyanat yayıb.",
    )
    assert found(home)["Müdafiə Nazirliyi"] == ("ORG", "az-mod")


def test_an_institution_of_the_country_the_text_is_about(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Türkiyə Prezidenti Türkiyənin ixrac rekordunu açıqlayıb. Prezident Administrasiyası layihəni dəstəkləyib.",
    )
    assert found(a)["Prezident Administrasiyası"] == ("ORG", "tr-presidency")
    ours = run(analyzer, "az", "Bakıda keçirilən tədbirdə Silahlı Qüvvələrimizin nümayəndələri iştirak edib.")
    assert found(ours)["Silahlı Qüvvələrimizin"] == ("ORG", "az-armed-forces")


def test_initial_and_surname_resolve_to_the_full_name(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Görüşdə Vüqar Mustafayev və Tural Əsgərovun nümayəndə heyəti iştirak edib. "
        "V.Mustafayev əməkdaşlığı yüksək qiymətləndirib. T.Əsgərov da çıxış edib.",
    )
    by_text = found(a)
    assert by_text["V.Mustafayev"] == by_text["Vüqar Mustafayev"] == ("PERSON", "p-vugar-mustafayev")
    assert by_text["T.Əsgərov"] == by_text["Tural Əsgərovun"]
    assert {m.canonical for m in a.mentions if m.text == "Tural Əsgərovun"} == {"Tural Əsgərov"}


def test_head_noun_organisations_keep_their_words_and_roles_are_not_organisations(analyzer: Analyzer) -> None:
    az = run(
        analyzer,
        "az",
        "Təlimdə hərbi texnika nümayiş etdirilib. Tədbirdə Hərbi Hava Qüvvələrinin pilotları da iştirak edib.",
    )
    assert "Hərbi Hava Qüvvələrinin" in found(az)
    tr = run(analyzer, "tr", "Toplantıya Milli Savunma Bakan Yardımcısı katıldı.")
    assert all(m.label != "ORG" or "Yardımcısı" not in m.text for m in tr.mentions)


def test_a_listed_outlet_written_as_its_domain_is_a_name(analyzer: Analyzer) -> None:
    a = run(analyzer, "az", "Zavod yeni xətti işə salıb. aia.az yazır ki, nazir açılışda iştirak edib.")
    assert found(a)["aia.az"] == ("ORG", "m-aia")


# ---------------------------------------------------------------- e5 piece vectors in the model


def test_piece_vectors_are_e5_subword_embeddings_averaged_per_word() -> None:
    vectors = piece_vectors(str(ROOT / "models" / E5_DIR))
    out = vectors(["Bakı", "Baku", "Bakı", "masa"])
    assert out.shape == (4, 384) and out.dtype == np.float32
    assert np.array_equal(out[0], out[2])

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cos(out[0], out[1]) > cos(out[0], out[3])  # two spellings of one city are close
    assert vectors([]).shape == (0, 384)


def test_piece_segmentation_is_the_e5_tokenizers(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    e5 = ROOT / "models" / E5_DIR
    for name in ("tokenizer.json", "model.safetensors"):
        (tmp_path / name).symlink_to(e5 / name)
    vectors = PieceVectors(tmp_path)  # no table yet: built and saved beside the model
    assert (tmp_path / PIECE_TABLE / "pieces.json").exists()
    words = [
        "Azərsilahın",
        "MKE'nin",
        "Bakıda",
        "Müdafiə",
        "Makine",
        "cartridge",
        "İlham",
        "2024-cü",
        "a\U00010300\U00010301b",
    ]
    tokenizer = Tokenizer.from_file(str(e5 / "tokenizer.json"))
    for word, enc in zip(words, tokenizer.encode_batch(words, add_special_tokens=False), strict=True):
        assert enc.ids == vectors.segment(word), word  # the last word: two unknown characters, one <unk>
    again = PieceVectors(tmp_path)  # now read from the saved table
    assert np.array_equal(again(words), vectors(words))


def test_a_piece_model_without_the_e5_model_is_a_clear_error(tmp_path: Path) -> None:
    path = trained_ner_path(MODELS)
    assert path is not None
    if PIECES_ARCHITECTURE not in (path / "config.cfg").read_text(encoding="utf-8"):
        pytest.fail("the committed NER model is expected to use the e5 piece vectors")
    with pytest.raises(UsageError, match="make models"):
        _trained_ner.__wrapped__(str(path), str(tmp_path / "no-e5"))


def test_without_the_e5_model_names_come_from_the_registry_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for item in (ROOT / "models").iterdir():
        if item.name != E5_DIR:
            (tmp_path / item.name).symlink_to(item)
    with caplog.at_level("WARNING"):
        nlp = build_pipeline("tr", str(tmp_path))
    assert nlp.pipe_names == ["defintel_names"]
    assert "make models" in caplog.text
    assert [(e.text, e.kb_id_) for e in nlp("Aselsan Bakü'de").ents] == [
        ("Aselsan", "aselsan"),
        ("Bakü'de", "baku"),
    ]


def test_a_surname_the_model_calls_an_organisation_is_the_person_named_before() -> None:
    text = "Heyeti Kerem Tahirbeyli kabul etti. Ziyarette Tahirbeyli’ye plaket verildi."
    found = _model_mentions("tr", text, ("Kerem Tahirbeyli", "PERSON"), ("Tahirbeyli’ye", "ORG"))
    assert found == [("Kerem Tahirbeyli", "PERSON"), ("Tahirbeyli’ye", "PERSON")]
