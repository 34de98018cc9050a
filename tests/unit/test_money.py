from __future__ import annotations

import pytest

from payonce.domain.money import InvalidMoney, Money


def test_minor_units_round_trip_through_the_providers_decimal_form() -> None:
    assert Money(3998, "CNY").to_decimal_string() == "39.98"
    assert Money(5, "CNY").to_decimal_string() == "0.05"
    assert Money(1200, "JPY").to_decimal_string() == "1200"
    assert Money.from_decimal_string("39.98", "CNY") == Money(3998, "CNY")
    assert Money.from_decimal_string("0.1", "CNY") == Money(10, "CNY")


@pytest.mark.parametrize("text", ["39.985", "abc", "NaN", "Infinity", "-1.00"])
def test_inexact_or_invalid_provider_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidMoney):
        Money.from_decimal_string(text, "CNY")


@pytest.mark.parametrize(
    ("amount", "currency"), [(-1, "CNY"), (10**13, "CNY"), (100, "XXX"), (True, "CNY")]
)
def test_money_refuses_what_payonce_does_not_accept(amount: int, currency: str) -> None:
    with pytest.raises(InvalidMoney):
        Money(amount, currency)


def test_money_never_adds_across_currencies() -> None:
    assert Money(1, "CNY") + Money(2, "CNY") == Money(3, "CNY")
    with pytest.raises(InvalidMoney):
        Money(1, "CNY") + Money(2, "USD")
