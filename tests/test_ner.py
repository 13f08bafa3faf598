"""NER behaviour issue #19 asks for: the trained model beside the registry, the Azerbaijani mapping,
``Long Name (ACR)`` aliases, state institutions by country, short forms of people. Sentences are
authored for these tests."""

from __future__ import annotations

import pytest
import spacy

from pipeline.config import NlpSettings
from pipeline.nlp.analyze import Analyzer
from pipeline.nlp.entities import AZ_TO_TR, ModelNer, build_pipeline, trained_ner_path
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
