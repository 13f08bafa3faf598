"""The number parser on its own (thousand separators, decimal commas) and what is not money.

Amount-with-currency cases live in test_dates_money.py."""

from __future__ import annotations

import pytest

from pipeline.nlp.money import find_money, parse_number


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
