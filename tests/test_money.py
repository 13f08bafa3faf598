"""More local number formats: thousand separators, decimal commas and the scale words of tr/az/en."""

from __future__ import annotations

import pytest

from pipeline.nlp.money import find_money, parse_number


@pytest.mark.parametrize(
    ("text", "lang", "amount", "currency"),
    [
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
def test_amounts(text: str, lang: str, amount: float, currency: str) -> None:
    found = find_money(f"worth {text} in total", lang)
    assert [(m.money.amount, m.money.currency) for m in found] == [(pytest.approx(amount), currency)]


@pytest.mark.parametrize(
    ("raw", "lang", "scale", "value"),
    [
        ("23,4", "tr", True, 23.4),
        ("1.250.000", "tr", False, 1_250_000),
        ("48.5", "en", True, 48.5),
        ("1,250", "en", False, 1250),
        ("1 250 000", "az", False, 1_250_000),
    ],
)
def test_parse_number(raw: str, lang: str, scale: bool, value: float) -> None:
    assert parse_number(raw, lang, scale) == value


def test_percent_and_plain_numbers_are_not_money() -> None:
    assert find_money("yüzde 55 yerli katkı ve 120 milyon adet fişek", "tr") == []
