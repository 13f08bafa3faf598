from datetime import date

import pytest

from pipeline.dates import find_dates
from pipeline.nlp.money import find_money, find_percentages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9 Nisan 2024, 14:05", date(2024, 4, 9)),
        ("5 fevral 2025-ci il", date(2025, 2, 5)),
        ("2024-cü il 18 oktyabr", date(2024, 10, 18)),
        ("October 8, 2024", date(2024, 10, 8)),
        ("Published 21 January 2025", date(2025, 1, 21)),
        ("20.02.2025", date(2025, 2, 20)),
        ("3 Mart 2025 Pazartesi", date(2025, 3, 3)),
        ("Mar 3, 2025 10:15 AM", date(2025, 3, 3)),
        ("2025-02-20T10:00:00+03:00", date(2025, 2, 20)),
    ],
)
def test_local_date_formats(text: str, expected: date) -> None:
    hits = find_dates(text)
    assert hits and hits[0].value == expected and hits[0].has_year
    assert hits[0].start >= 0 and hits[0].end <= len(text)


def test_day_month_without_year_takes_reference_year() -> None:
    hits = find_dates("Anlaşma 4 Şubat’ta imzalandı", default_year=2025)
    assert [(h.value, h.has_year) for h in hits] == [(date(2025, 2, 4), False)]
    assert find_dates("Anlaşma 4 Şubat’ta imzalandı") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Azerbaijani ordinal and case suffixes on years, days and months
        ("Saziş 18 oktyabr 2024-cü ildə imzalanıb", date(2024, 10, 18)),
        ("2024-cü ildə 18 oktyabrda imzalanıb", date(2024, 10, 18)),
        ("2024-cü il oktyabrın 18-də imzalanıb", date(2024, 10, 18)),
        ("5 dekabr 2023-cü il tarixində", date(2023, 12, 5)),
        ("20 yanvar 2025-ci ildə", date(2025, 1, 20)),
        ("1 sentyabr 2025-ci il", date(2025, 9, 1)),
        # Turkish "Mart" (and friends) with suffixes, apostrophes and weekdays
        ("3 Mart 2025 Pazartesi", date(2025, 3, 3)),
        ("12 Mart, 2025", date(2025, 3, 12)),
        ("3 Mar. 2025", date(2025, 3, 3)),
        ("Mayıs 9, 2024", date(2024, 5, 9)),
        ("5 Ara 2024", date(2024, 12, 5)),
        ("October 8th, 2024", date(2024, 10, 8)),
    ],
)
def test_suffixed_and_ambiguous_month_forms(text: str, expected: date) -> None:
    hits = find_dates(text)
    assert [(h.value, h.has_year) for h in hits] == [(expected, True)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anlaşma 3 Mart'ta imzalandı", date(2025, 3, 3)),
        ("Anlaşma 3 Martta imzalandı", date(2025, 3, 3)),
        ("Haziran'da değil, 3 Haziran'da", date(2025, 6, 3)),
        ("Saziş fevralın 4-də imzalanıb", date(2025, 2, 4)),
        ("It was signed on February 4 in Baku", date(2025, 2, 4)),
    ],
)
def test_day_and_month_with_suffix_take_reference_year(text: str, expected: date) -> None:
    hits = find_dates(text, default_year=2025)
    assert [(h.value, h.has_year) for h in hits] == [(expected, False)]


@pytest.mark.parametrize(
    "text",
    [
        "Mart ayında imzalanacak",  # a month without a day is no date
        "3 Marketing 2025 awards",  # an abbreviation must end the word
        "5 Mayonez",  # so must a full name, unless a case ending follows
        "Walmart 2024 results",
        "the may 12 units",  # lower-case English month without a year
    ],
)
def test_words_that_only_look_like_months(text: str) -> None:
    assert find_dates(text, default_year=2025) == []


@pytest.mark.parametrize(
    ("text", "lang", "amount", "currency"),
    [
        ("412 milyon dolarlık", "tr", 412_000_000, "USD"),
        ("23,4 milyon avroluk", "tr", 23_400_000, "EUR"),
        ("1,2 milyar TL", "tr", 1_200_000_000, "TRY"),
        ("1.250.000 dolar", "tr", 1_250_000, "USD"),
        ("85 milyon manat", "az", 85_000_000, "AZN"),
        ("78,6 milyon ABŞ dolları", "az", 78_600_000, "USD"),
        ("1,2 mlrd. manat", "az", 1_200_000_000, "AZN"),
        ("$48.5 million", "en", 48_500_000, "USD"),
        ("€31.2m", "en", 31_200_000, "EUR"),
        ("USD 12 mln", "en", 12_000_000, "USD"),
        ("US$ 7.25 million", "en", 7_250_000, "USD"),
        ("$1,250,000", "en", 1_250_000, "USD"),
        ("1.2 billion lira", "en", 1_200_000_000, "TRY"),
        ("2,5 milyar dolarlık", "tr", 2_500_000_000, "USD"),
        ("12.500.000 TL", "tr", 12_500_000, "TRY"),
        ("750 bin avro", "tr", 750_000, "EUR"),
        ("3,2 mlrd. ABŞ dolları", "az", 3_200_000_000, "USD"),
        ("15 milyon manatlıq", "az", 15_000_000, "AZN"),
        ("1.5 bn euros", "en", 1_500_000_000, "EUR"),
        ("USD 1,250,000", "en", 1_250_000, "USD"),
        ("₼ 40 million", "en", 40_000_000, "AZN"),
        ("€ 2.75 billion", "en", 2_750_000_000, "EUR"),
    ],
)
def test_money_in_local_formats(text: str, lang: str, amount: float, currency: str) -> None:
    found = find_money(f"Değeri {text} olan", lang)
    assert len(found) == 1
    assert found[0].money.currency == currency
    assert found[0].money.amount == pytest.approx(amount, rel=1e-9)


def test_percentages() -> None:
    values = [
        v for _, _, v in find_percentages("yüzde 55 yerli katkı, %60 yerlilik, 40 faiz, 45%, 12.5 per cent")
    ]
    assert values == [55, 60, 40, 45, 12.5]
