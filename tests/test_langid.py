"""Language identification: tr / az / en apart (langdetect alone calls Azerbaijani Turkish), others by code."""

from __future__ import annotations

import pytest

from pipeline.langid import detect, detect_paragraphs

TR = (
    "Makine ve Kimya Endüstrisi, Azerbaycan'daki iştiraki aracılığıyla Bakü'de yeni bir fişek üretim "
    "hattı kuracak. Anlaşmaya göre hat iki yıl içinde tam kapasiteyle çalışmaya başlayacak."
)
AZ = (
    "Makine ve Kimya Azərbaycan şirkəti Bakıda yeni patron istehsalı xətti quracaq. Müqaviləyə əsasən "
    "xətt iki il ərzində tam gücü ilə istifadəyə veriləcək."
)
EN = (
    "Turkey's state munitions maker will build a new cartridge line in Baku through its Azerbaijani "
    "subsidiary. Under the deal the line is to reach full capacity within two years."
)


@pytest.mark.parametrize(("text", "lang"), [(TR, "tr"), (AZ, "az"), (EN, "en")])
def test_our_three_languages(text: str, lang: str) -> None:
    assert detect(text) == lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        # Azerbaijani without any ə: "bir" is shared, so it is no Turkish evidence against lingua
        ("Bu rayonda yaxşı bir idman kompleksi yoxdur .", "az"),
        ("Yarışmacı , ilk kör olan Dancing on Ice yarışmasının katılımcısı olacak", "tr"),
        ("Bu bölgede düzgün bir stadyum yok .", "tr"),
        # one ə-word in a sentence is Azerbaijani evidence
        ("Şirkət bu il iki yeni zavod açacaq", "az"),
        # a Turkish sentence that quotes an Azerbaijani name spelled with ə stays Turkish
        (
            "Azersilah ile MKE arasında imzalanan sözleşme, Bakü'de Əliyev'in katılımıyla duyuruldu ve "
            "yeni bir aşama olarak değerlendirildi.",
            "tr",
        ),
        # an English sentence with an Azerbaijani name stays English
        ("Azərsilah signed a contract with MKE in Baku on Monday, officials said.", "en"),
        # short sentences full of foreign names are not "some other language"
        ("Antonio Caruso , Cakarta’da Amarsanaa Tsogookhuu ile dövüşüyor", "tr"),
        ("How dare you ?", "en"),
    ],
)
def test_hard_sentences(text: str, lang: str) -> None:
    assert detect(text) == lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (
            "Der Vertrag über die Lieferung von Munition wurde gestern in Berlin unterzeichnet, sagte er.",
            "de",
        ),
        ("Le contrat a été signé hier à Bakou, a annoncé le ministère de la défense nationale.", "fr"),
        ("Контракт был подписан вчера в Баку, сообщили в министерстве обороны страны.", "ru"),
    ],
)
def test_other_languages_are_reported_by_their_code(text: str, lang: str) -> None:
    assert detect(text) == lang


def test_no_letters_is_undetermined() -> None:
    assert detect("12.02.2025 — 14:05 / 1,7000") == "und"


def test_html_lang_is_only_a_hint() -> None:
    # a wrong <html lang> does not override clear text evidence
    assert detect(EN, html_lang="tr") == "en"
    assert detect(AZ, html_lang="tr-TR") == "az"
    assert detect(TR, html_lang="en") == "tr"


def test_paragraph_languages_on_a_mixed_page() -> None:
    text = f"{TR}\n\n{EN}\n\n{AZ}"
    spans = detect_paragraphs(text)
    assert [lang for _, _, lang in spans] == ["tr", "en", "az"]
    assert [text[s:e] for s, e, _ in spans] == [TR, EN, AZ]


def test_short_english_headline_with_an_azerbaijani_name() -> None:
    assert detect("Azərsilah, MKE sign cartridge deal") == "en"
