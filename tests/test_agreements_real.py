"""Agreement failure classes seen on real news, each pinned with sentences written for this test.

Every sentence here is synthetic (authored for the tests, not taken from any article); the
organisations are real, the deals invented.
"""

from __future__ import annotations

import pytest

from pipeline.config import NlpSettings
from pipeline.nlp.analyze import Analyzer
from pipeline.records import Analysis, Document
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(NlpSettings(models_dir=str(ROOT / "models")))


def run(analyzer: Analyzer, lang: str, body: str, published: str | None = "2025-03-14") -> Analysis:
    title = "Synthetic test"
    doc = Document("d", "https://x.example/a", lang, title, published, None, f"{title}\n\n{body}")
    return analyzer.analyze([doc])[0]


def summary(a: Analysis) -> list[tuple[str, set[str]]]:
    return [(x.type, set(x.party_ids)) for x in a.agreements]


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("tr", "Roketsan ile Azersilah arasında dün bir iş birliği protokolü imzalandı."),
        ("tr", "Aselsan ve Azersilah, savunma elektroniği alanında bir niyet mektubu imzaladı."),
        ("az", "Aselsan ilə Azərsilah arasında dünən niyyət məktubu imzalanıb."),
        ("en", "Havelsan and Azersilah signed a letter of intent on simulator maintenance yesterday."),
        ("en", "Roketsan and Azersilah signed a protocol for cooperation in composite materials."),
    ],
)
def test_protocols_and_letters_of_intent_are_memoranda(analyzer: Analyzer, lang: str, text: str) -> None:
    a = run(analyzer, lang, text)
    assert [x.type for x in a.agreements] == ["mou"]


def test_a_protocol_recording_a_meeting_is_other(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Aselsan ilə Azərsilah arasında əməkdaşlıq haqqında saziş imzalanıb. Görüşün sonunda aparılan "
        "müzakirələrə dair protokol da imzalanıb.",
    )
    assert a.agreements[0].type == "other"
    assert all(x.type != "mou" for x in a.agreements)


@pytest.mark.parametrize(
    ("lang", "text", "buyer"),
    [
        ("az", "Aselsan Qazaxıstan ilə 40 ədəd termal kameranın satış kontraktını imzalayıb.", "kazakhstan"),
        (
            "tr",
            "Otokar, Kenya ile 30 adet zırhlı aracın satışını kapsayan bir anlaşma imzaladı.",
            "country-ke",
        ),
        ("en", "Otokar signed a contract for the sale of 40 armored vehicles to Kenya.", "country-ke"),
    ],
)
def test_a_sale_to_a_country_is_an_export_and_the_buyer_country_a_party(
    analyzer: Analyzer, lang: str, text: str, buyer: str
) -> None:
    a = run(analyzer, lang, text)
    assert len(a.agreements) == 1
    assert a.agreements[0].type == "export"
    assert buyer in a.agreements[0].party_ids


def test_a_cooperation_agreement_that_eases_exports_is_no_export(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Aselsan ile Roketsan arasında imzalanan iş birliği anlaşması, ürünlerin Kenya'ya ihracatını "
        "kolaylaştıracak.",
    )
    assert [x.type for x in a.agreements] == ["other"]


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("tr", "Roketsan ile Azersilah dün bir sözleşme imzaladı. Sözleşmenin değeri 45 milyon dolar."),
        ("en", "Roketsan and Azersilah signed a contract yesterday. Its value was put at $45 million."),
        ("az", "Roketsan ilə Azərsilah dünən müqavilə imzalayıb. Müqavilənin dəyəri 45 milyon dollardır."),
    ],
)
def test_a_value_stated_in_the_next_sentence_is_attached(analyzer: Analyzer, lang: str, text: str) -> None:
    a = run(analyzer, lang, text)
    assert len(a.agreements) == 1
    value = a.agreements[0].value
    assert value is not None and (value.amount, value.currency) == (45_000_000, "USD")


def test_a_turnover_is_not_the_value_of_the_deal(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Roketsan and Azersilah signed a contract yesterday. Last year Azersilah posted a turnover of $210 million.",
    )
    assert [x.value for x in a.agreements] == [None]


def test_sentences_about_one_instrument_merge_into_one_record(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Türkiyə ilə Qazaxıstan arasında bağlanmış sazişə görə, Qazaxıstan 20 ədəd pilotsuz uçuş aparatı alacaq. "
        "Aparatlar bu saziş əsasında Qazaxıstana ixrac olunacaq. Nazir danışıqlarda iştirak edən mütəxəssislərə "
        "minnətdarlığını bildirib.",
    )
    assert summary(a) == [("export", {"turkiye", "kazakhstan"})]
    assert a.agreements[0].evidence.text.startswith("Türkiyə ilə Qazaxıstan")


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "MKE plans to sign a protocol with Azersilah on ammunition training next year."),
        ("en", "Aselsan and Azersilah are in talks over a letter of intent on radios."),
        ("tr", "Aselsan'ın Azersilah ile niyet mektubu imzalaması planlanıyor."),
        ("az", "Roketsan ilə Azərsilah arasında protokolun imzalanması gözlənilir."),
    ],
)
def test_plans_talks_and_intentions_are_not_agreements(analyzer: Analyzer, lang: str, text: str) -> None:
    assert run(analyzer, lang, text).agreements == ()


def test_ministers_sign_for_their_countries(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "The Turkish Defence Minister and his Azerbaijani counterpart signed a letter of intent in Baku.",
    )
    assert summary(a) == [("mou", {"turkiye", "azerbaijan"})]


def test_two_instruments_in_two_clauses_of_one_sentence(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "At the ceremony, the Turkish president and his Azerbaijani counterpart signed a letter of intent, "
        "and Roketsan and Azersilah signed a protocol for cooperation in propellant production.",
    )
    assert summary(a) == [("mou", {"turkiye", "azerbaijan"}), ("mou", {"roketsan", "azersilah"})]
    assert a.agreements[0].evidence == a.agreements[1].evidence  # the stated sentence, whole


def test_a_news_source_and_a_venue_are_not_parties(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Roketsan signed a memorandum of understanding with Azersilah at the IDEF fair, Report informs, "
        "citing Aselsan.",
    )
    assert summary(a) == [("mou", {"roketsan", "azersilah"})]


def test_the_date_of_an_announcement_is_not_the_signing_date(analyzer: Analyzer) -> None:
    en = run(
        analyzer, "en", "Aselsan announced on 3 March that it had signed an export contract with Azersilah."
    )
    az = run(
        analyzer,
        "az",
        "Nazir martın 3-də verdiyi müsahibədə Aselsan ilə Azərsilah arasında imzalanmış müqavilədən söz açıb.",
    )
    assert [x.signed for x in en.agreements] == [None]
    assert [x.signed for x in az.agreements] == [None]
    signed = run(analyzer, "en", "On 3 March Aselsan signed an export contract with Azersilah.")
    assert [x.signed for x in signed.agreements] == ["2025-03-03"]


def test_an_amount_spelled_in_parts(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Aselsan ile Azersilah arasında 7 milyon 320 bin 480 dolarlık bir sözleşme imzalandı.",
    )
    value = a.agreements[0].value
    assert value is not None and (value.amount, value.currency) == (7_320_480, "USD")


def test_a_month_name_is_no_modal_verb(analyzer: Analyzer) -> None:
    a = run(analyzer, "en", "On May 2, 2024 Roketsan signed a memorandum of understanding with Azersilah.")
    assert [(x.type, x.signed) for x in a.agreements] == [("mou", "2024-05-02")]


# ---- issue #20, second round: mechanisms measured on real news, pinned with authored sentences


def test_a_signing_ceremony_between_two_sides_is_named_by_the_next_sentence(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Zırhlı araç bakımı iş birliği imza töreni, SSB'nin şahitliğinde Otokar ve Azersilah arasında "
        "gerçekleştirildi. Protokolün hedefi Gence'de ortak bir bakım merkezi kurmak.",
    )
    # one memorandum (named by the second sentence), the witness (SSB) is no side
    assert summary(a) == [("mou", {"otokar", "azersilah"})]


def test_an_anonymous_buyer_and_a_disclosure_platform_are_not_parties(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Roketsan, adı açıklanmayan bir Asya ülkesine 25 milyon dolarlık füze ihracatı için sözleşme imzaladı. "
        "Şirket, Kamuyu Aydınlatma Platformu'na gönderdiği bildirimde teslimatın 2027'de tamamlanacağını belirtti.",
    )
    assert summary(a) == [("export", {"roketsan"})]
    value = a.agreements[0].value
    assert value is not None and (value.amount, value.currency) == (25_000_000, "USD")


def test_instruments_signed_by_his_company_go_to_the_company_once_each(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "FNSS brought its amphibious vehicle to a Tashkent exhibition. Ahmet Kaya, general manager of the vehicle "
        "maker, told reporters in April his company signed three export contracts for the Kaplan last year.",
    )
    assert summary(a) == [("export", {"fnss"})] * 3


def test_a_deal_named_by_its_countries_takes_the_organisations_named_next(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "In 2021 Türkiye and Malaysia signed an agreement on three offshore patrol ships. In March 2022 the "
        "Malaysian navy concluded the contract for the three ships with STM.",
    )
    assert len(a.agreements) == 1
    x = a.agreements[0]
    assert x.type == "export" and "stm" in x.party_ids and "country-my" in x.party_ids
    assert "turkiye" not in x.party_ids  # the seller's home country is no side once the seller is named


def test_az_export_to_a_ministry_named_after_its_country(analyzer: Analyzer) -> None:
    # a suffixed buyer ("Nazirliyi ilə"), a local-format value ("12,5 milyon ABŞ dolları")
    a = run(
        analyzer,
        "az",
        "Aselsan Özbəkistan Müdafiə Nazirliyi ilə 12,5 milyon ABŞ dolları dəyərində rabitə sistemlərinin "
        "tədarükünə dair müqavilə imzalayıb.",
    )
    assert [x.type for x in a.agreements] == ["export"]
    x = a.agreements[0]
    assert {"aselsan", "country-uz"} <= set(x.party_ids)
    assert x.value is not None and (x.value.amount, x.value.currency) == (12_500_000, "USD")


def test_contracts_of_several_sellers_with_one_buyer_are_one_each(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Aselsan and Roketsan concluded contracts with Indonesia on Friday covering 80 air-defence systems "
        "worth $250 million.",
    )
    assert summary(a) == [("export", {"aselsan", "country-id"}), ("export", {"roketsan", "country-id"})]
    assert [x.value for x in a.agreements] == [None, None]  # the total is the value of neither


def test_the_statement_naming_each_contract_becomes_its_evidence(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Otokar and FNSS signed contracts with Kazakhstan for tactical vehicles. Afterwards, contracts were "
        "signed between the Kazakh defence ministry and FNSS for the delivery of Kaplan vehicles, and Otokar "
        "for the delivery of Cobra II vehicles.",
    )
    assert summary(a) == [("export", {"otokar", "kazakhstan"}), ("export", {"fnss", "kazakhstan"})]
    assert all(x.evidence.text.startswith("Afterwards") for x in a.agreements)


def test_a_clause_without_a_verb_is_the_subject_of_the_next(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "In Astana, the Kazakh defence minister and his Turkish counterpart signed a memorandum, and the "
        "president of SSB, and the chairman of Azersilah signed a protocol on rifle production.",
    )
    assert summary(a) == [("mou", {"kazakhstan", "turkiye"}), ("mou", {"tr-ssb", "azersilah"})]


def test_generic_companies_are_no_sides(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Fuarda bazı Türk firmaları ile Kazak firmaları arasında toplam beş mutabakat zaptı imzalandı.",
    )
    assert a.agreements == ()


def test_provided_for_in_the_contract_is_no_plan(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Azərsilah Roketsanla imzaladığı müqavilədə nəzərdə tutulmuş 40 raket üçün ödənişi tamamlayıb.",
    )
    assert summary(a) == [("contract", {"azersilah", "roketsan"})]
    assert a.agreements[0].quantity == "40 raket"


def test_a_disclosure_date_is_not_the_signing_date(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Roketsan signed a contract with Azersilah for 60 missiles. The company announced the order to "
        "investors through KAP on Thursday.",
    )
    assert [(x.type, x.signed) for x in a.agreements] == [("contract", None)]


@pytest.mark.parametrize(
    ("lang", "text", "parties"),
    [
        (
            "az",
            "Azərbaycan Müdafiə Nazirliyi ilə Azərsilah arasında 500 ədəd avtomatın tədarükünə dair müqavilə "
            "imzalanıb.",
            {"az-mod", "azersilah"},
        ),
        (
            "tr",
            "Türkiye Milli Savunma Bakanlığı ile Aselsan arasında 200 adet telsizin teslimatı için sözleşme "
            "imzalandı.",
            {"tr-msb", "aselsan"},
        ),
    ],
)
def test_a_ministry_buying_from_a_company_of_its_own_country_is_no_export(
    analyzer: Analyzer, lang: str, text: str, parties: set[str]
) -> None:
    assert summary(run(analyzer, lang, text)) == [("contract", parties)]


def test_the_name_a_new_venture_is_to_be_called_is_no_side(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "Roketsan has agreed to set up a joint venture with Azersilah. The founding agreement for the venture, "
        "to be called Caspian Propellants Ltd, was signed on 2 March in Baku and is worth $40 million.",
    )
    assert summary(a) == [("joint_venture", {"roketsan", "azersilah"})]
    x = a.agreements[0]
    assert (x.signed, x.evidence.text[:25]) == ("2025-03-02", "The founding agreement fo")


def test_a_statement_naming_the_sides_of_a_protocol_is_its_evidence(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "az",
        "Həmin gün tərəflər ayrıca sənəd kimi kadr hazırlığına dair protokol da imzalayıblar. Protokola əsasən, "
        "Azərsilahdan 60 mühəndis Roketsanın Ankara müəssisəsində təcrübə keçəcək.",
    )
    assert summary(a) == [("training", {"azersilah", "roketsan"})]
    assert a.agreements[0].evidence.text.startswith("Protokola əsasən")


def test_counts_written_as_words_and_no_durations(analyzer: Analyzer) -> None:
    en = run(
        analyzer,
        "en",
        "In 2023 Roketsan signed a contract with Azersilah for the supply of four launcher systems.",
    )
    assert [x.quantity for x in en.agreements] == ["four launcher systems"]
    az = run(
        analyzer,
        "az",
        "Roketsan ilə Azərsilah arasında imzalanan müqaviləyə əsasən beş il ərzində mütəxəssis dəstəyi göstəriləcək.",
    )
    assert [x.quantity for x in az.agreements] == [None]


def test_counted_contracts_take_their_own_statements_as_evidence(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "tr",
        "Aselsan ile Azersilah arasında 2 tedarik sözleşmesi imzalandı. Birinci olarak 3 kalem telsiz ekipmanı "
        "tedarik sözleşmesi imzalandı. 5 kalem optik sistem tedarik sözleşmesi ise eğitim amaçlı yapıldı.",
    )
    assert summary(a) == [("contract", {"aselsan", "azersilah"})] * 2
    assert [x.evidence.text[:12] for x in a.agreements] == ["Birinci olar", "5 kalem opti"]
    assert [(x.quantity or "")[:7] for x in a.agreements] == ["3 kalem", "5 kalem"]


def test_a_deal_someone_only_claimed_is_no_agreement(analyzer: Analyzer) -> None:
    claimed = run(
        analyzer,
        "en",
        "Aselsan dismissed the story. A blog had claimed that Aselsan signed a radar contract with Azersilah "
        "worth $80 million. Another site alleged that the two firms concluded a second deal.",
    )
    assert claimed.agreements == ()
    signed = run(
        analyzer, "en", "Aselsan signed a radar contract with Azersilah worth $80 million on Monday."
    )
    assert summary(signed) == [("contract", {"aselsan", "azersilah"})]


def test_the_authorities_that_approved_an_instrument_are_no_sides(analyzer: Analyzer) -> None:
    a = run(
        analyzer,
        "en",
        "FNSS and Azersilah signed a licence production agreement for armoured vehicle kits on Monday. "
        "The agreement had been approved by Türkiye's Presidency of Defence Industries and by "
        "Azerbaijan's Ministry of Defence Industry before it was signed.",
    )
    assert [(t, ids) for t, ids in summary(a)] == [("licence_production", {"fnss", "azersilah"})]
