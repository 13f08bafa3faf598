"""Entities (suffixes, cross-lingual ids, known traps) and agreements (fields, negation)."""

from __future__ import annotations

import pytest

from pipeline.config import NlpSettings
from pipeline.nlp.analyze import Analyzer
from pipeline.records import Analysis, Document
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(NlpSettings(models_dir=str(ROOT / "models")))


def run(analyzer: Analyzer, lang: str, body: str, published: str | None = "2025-02-05") -> Analysis:
    title = "Synthetic test"
    doc = Document("d", "https://x.example/a", lang, title, published, None, f"{title}\n\n{body}")
    return analyzer.analyze([doc])[0]


def ids(a: Analysis) -> dict[str, str]:
    return {m.text: m.entity_id for m in a.mentions}


def test_suffixes_are_part_of_the_span_but_not_of_the_canonical(analyzer: Analyzer) -> None:
    a = run(analyzer, "tr", "MKE'nin Bakü'de kurduğu MKA-nın ilk müşterisi Azersilah'a teslimat yapıldı.")
    assert ids(a) == {"MKE'nin": "mke", "Bakü'de": "baku", "MKA-nın": "mka", "Azersilah'a": "azersilah"}
    assert {m.canonical for m in a.mentions} == {"MKE", "Baku", "MKA", "Azersilah"}
    for m in a.mentions:
        assert a.document.text[m.start : m.end] == m.text


def test_azerbaijani_attached_suffixes(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Azərsilahın Bakıda keçirdiyi görüşdə Müdafiə Sənayesi Nazirliyinə məktub təqdim olundu.",
    )
    assert ids(a) == {"Azərsilahın": "azersilah", "Bakıda": "baku", "Müdafiə Sənayesi Nazirliyinə": "az-modi"}


def test_same_entity_same_id_across_languages(analyzer: Analyzer) -> None:
    tr = run(analyzer, "tr", "Bakü ve Azersilah yetkilileri bir araya geldi.")
    az = run(analyzer, "az", "Bakı və Azərsilah nümayəndələri görüşdü.")
    en = run(analyzer, "en", "Officials from Baku and Azersilah met on Monday.")
    for a in (tr, az, en):
        assert {m.entity_id for m in a.mentions} >= {"baku", "azersilah"}


def test_known_traps_resolve_to_different_entities(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Savunma Sanayii Bakanlığı ile Savunma Sanayii Başkanlığı görüştü. MKE ile MKA da katıldı.",
    )
    assert ids(a)["Savunma Sanayii Bakanlığı"] == "az-modi"
    assert ids(a)["Savunma Sanayii Başkanlığı"] == "tr-ssb"
    assert ids(a)["MKE"] != ids(a)["MKA"]


def test_unlisted_organisation_found_by_legal_form_and_linked_across_languages(analyzer: Analyzer) -> None:
    az = run(analyzer, "az", "Gəncə Metal Emal MMC-nin rəhbərliyi bəyanat yaydı.")
    en = run(analyzer, "en", "Gəncə Metal Emal MMC said on Monday that production had started.")
    org_az = [m for m in az.mentions if m.label == "ORG"]
    org_en = [m for m in en.mentions if m.label == "ORG"]
    assert org_az[0].text == "Gəncə Metal Emal MMC-nin" and org_az[0].canonical == "Gəncə Metal Emal MMC"
    assert org_az[0].entity_id == org_en[0].entity_id


def test_contract_with_all_fields(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "MKA ile Azersilah dün 412 milyon dolarlık bir sözleşme imzaladı. Sözleşmeye göre yılda "
        "120 milyon adet fişek üretilecek ve yüzde 55 yerli katkı sağlanacak.",
    )
    assert len(a.agreements) == 1
    ag = a.agreements[0]
    assert ag.type == "contract"
    assert set(ag.party_ids) == {"mka", "azersilah"}
    assert ag.value is not None and (ag.value.amount, ag.value.currency) == (412_000_000, "USD")
    assert ag.signed == "2025-02-04"
    assert ag.quantity == "120 milyon adet fişek"
    assert ag.local_content_pct == 55
    assert a.document.text[ag.evidence.start : ag.evidence.end] == ag.evidence.text


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("tr", "MKE ile Azersilah arasında yeni bir sözleşme için görüşmeler sürüyor."),
        ("az", "Aselsan ilə Azərsilah arasında müqavilənin imzalanması gözlənilir."),
        ("en", "Roketsan denied that a licence agreement had been signed with Azersilah."),
        ("en", "Aselsan is expected to sign a contract with Azersilah next year."),
    ],
)
def test_talks_plans_and_denials_are_not_agreements(analyzer: Analyzer, lang: str, text: str) -> None:
    assert run(analyzer, lang, text).agreements == ()


def test_ownership_share_is_not_local_content(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Aselsan and Kepez Optronics LLC signed a joint venture agreement in which Aselsan holds "
        "a 51% stake.",
    )
    assert len(a.agreements) == 1 and a.agreements[0].type == "joint_venture"
    assert a.agreements[0].local_content_pct is None


def test_two_instruments_and_same_day_and_the_sides(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "MKA ilə Azərsilah dünən 78,6 milyon ABŞ dolları dəyərində müqavilə imzalayıb. "
        "Həmin gün tərəflər ayrıca kadr hazırlığına dair protokol da imzalayıblar. "
        "Protokola əsasən, Azərsilahdan 120 mühəndis MKE-nin müəssisələrində təcrübə keçəcək.",
    )
    assert [(x.type, set(x.party_ids), x.signed) for x in a.agreements] == [
        ("contract", {"mka", "azersilah"}, "2025-02-04"),
        ("training", {"azersilah", "mke"}, "2025-02-04"),
    ]
    # The evidence is the statement that names the sides ("the sides also signed" names none), as
    # the corpus gold annotates the same construction (az-11).
    assert a.agreements[1].evidence.text.startswith("Protokola əsasən")


def test_a_later_sentence_about_the_same_contract_is_merged(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Otokar, Azerbaycan'a yönelik yeni bir ihracat sözleşmesi imzaladı. Otokar ile Azerbaycan Savunma "
        "Bakanlığı arasındaki 118 milyon dolarlık ihracat sözleşmesi 17 Şubat'ta Bakü'de imzalandı.",
        published="2025-02-20",
    )
    assert len(a.agreements) == 1
    ag = a.agreements[0]
    assert (ag.type, ag.signed) == ("export", "2025-02-17")
    assert set(ag.party_ids) == {"otokar", "az-mod", "azerbaijan"}  # an export's buyer country is a party
    assert ag.value is not None and ag.value.amount == 118_000_000
    assert ag.evidence.text.startswith("Otokar ile Azerbaycan Savunma")


def test_reports_of_a_deal_are_not_a_deal(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Bazı haber sitelerinde Roketsan'ın Azersilah ile lisanslı üretim anlaşması imzaladığı iddia edildi.",
    )
    assert a.agreements == ()


def test_places_in_no_hand_written_list_come_from_geo_data(analyzer: Analyzer) -> None:
    tr = run(analyzer, "tr", "Fabrika Kayseri'deki tesislerin yanında kurulacak.")
    en = run(analyzer, "en", "The plant will be built next to the Kayseri facilities.")
    assert [(m.text, m.label) for m in tr.mentions] == [("Kayseri'deki", "GPE")]
    assert tr.mentions[0].entity_id == en.mentions[0].entity_id
    assert tr.mentions[0].entity_id.startswith("geo-")
    common_word = run(analyzer, "tr", "Ordunun ihtiyaçları karşılanacak.")
    assert common_word.mentions == ()


def test_people_by_given_name_and_person_before_company(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Sazişi Cenk Arıkan və Kəpəz Elektronika ASC-nin sədri imzalayıb. Vüqar İsgəndərli bildirib.",
    )
    found = {(m.text, m.label) for m in a.mentions}
    assert ("Cenk Arıkan", "PERSON") in found
    assert ("Kəpəz Elektronika ASC-nin", "ORG") in found
    assert ("Vüqar İsgəndərli", "PERSON") in found


def test_demonyms_are_not_the_country(analyzer: Analyzer) -> None:
    en = run(analyzer, "en", "The Azerbaijani company signed with Azerbaijan's ministry.")
    tr = run(analyzer, "tr", "Azerbaycanlı şirket Azerbaycan'ın bakanlığı ile anlaştı.")
    assert [m.text for m in en.mentions if m.label == "GPE"] == ["Azerbaijan's"]
    assert [m.text for m in tr.mentions if m.label == "GPE"] == ["Azerbaycan'ın"]


def test_day_and_month_after_publication_belong_to_the_previous_year(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Aselsan signed a $5 million contract with Azersilah on 28 December.",
        published="2025-01-05",
    )
    assert [x.signed for x in a.agreements] == ["2024-12-28"]


def test_transliterated_people_share_an_id(analyzer: Analyzer) -> None:
    az = run(analyzer, "az", "Azərsilahın baş direktoru Rauf Məmmədli bəyanat verib.")
    tr = run(analyzer, "tr", "Azersilah Genel Müdürü Rauf Memmedli açıklama yaptı.")
    en = run(analyzer, "en", "Azersilah's general director, Rauf Mammadli, said on Monday.")
    ids = {m.entity_id for a in (az, tr, en) for m in a.mentions if m.label == "PERSON"}
    assert len(ids) == 1
