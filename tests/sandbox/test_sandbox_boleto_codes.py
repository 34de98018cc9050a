"""The boleto's numbers and calendar: check digits, due factors, lines, barcodes, bank holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from payonce.domain.bank_days import (
    SAO_PAULO,
    add_business_days,
    easter,
    holidays,
    is_business_day,
    last_payable_day,
    payable_until,
)
from payonce.sandbox.boleto_codes import (
    InvalidCode,
    barcode,
    barcode_from_any,
    barcode_of,
    check_line,
    due_factor,
    formatted,
    itf_bars,
    line_of,
    mod10,
    mod11,
    numbers,
)

# A published Caixa (104) boleto: due 2006-08-23, R$ 321,12. Worked by hand, and the same
# numbers appear in other implementations' test suites.
CAIXA_BARCODE = "10494324200000321120055077222133347777777771"
CAIXA_LINE = "10490.05505 77222.133348 77777.777713 4 32420000032112"


def test_check_digits_of_a_published_boleto() -> None:
    assert mod10("104900550") == 5
    assert mod10("7722213334") == 8
    assert mod10("7777777771") == 3
    assert mod11(CAIXA_BARCODE[:4] + CAIXA_BARCODE[5:]) == 4
    assert formatted(line_of(CAIXA_BARCODE)) == CAIXA_LINE
    assert barcode_of(line_of(CAIXA_BARCODE)) == CAIXA_BARCODE


def test_mod11_never_answers_zero_or_ten() -> None:
    # Remainders 0 and 1 would give 11 and 10; the barcode rule turns them (and 0) into 1.
    seen = {mod11(f"{n:043d}") for n in range(0, 2000)}
    assert seen <= set(range(1, 10))
    assert 1 in seen


@pytest.mark.parametrize(
    ("due", "factor"),
    [
        (date(2000, 7, 3), "1000"),
        (date(2000, 7, 5), "1002"),
        (date(2006, 8, 23), "3242"),
        (date(2025, 2, 21), "9999"),
        # FEBRABAN's second series: the factor starts again at 1000 the day after 9999.
        (date(2025, 2, 22), "1000"),
        (date(2026, 11, 24), "1640"),
    ],
)
def test_due_factor(due: date, factor: str) -> None:
    assert due_factor(due) == factor


def test_a_due_date_outside_the_series_has_no_factor() -> None:
    with pytest.raises(ValueError, match="no due factor"):
        due_factor(date(1999, 1, 1))
    with pytest.raises(ValueError, match="beyond the current series"):
        due_factor(date(2050, 1, 1))


def test_numbers_of_a_sandbox_boleto() -> None:
    made = numbers(
        bank="237",
        due=date(2026, 11, 24),
        amount=123456,
        free_field="3381" + "09" + "1" * 11 + "0012345" + "0",
    )
    code = made.barcode
    assert len(code) == 44
    assert (code[0:3], code[3], code[5:9], code[9:19]) == ("237", "9", "1640", "0000123456")
    assert code[19:] == "3381091111111111100123450"
    assert int(code[4]) == mod11(code[:4] + code[5:])
    assert len(made.line) == 47
    check_line(made.line)
    assert made.line[32] == code[4]  # field 4: the barcode's general check digit
    assert made.line[33:] == "16400000123456"  # field 5: due factor and amount
    assert barcode_of(made.line) == code
    assert made.printed_line.replace(".", "").replace(" ", "") == made.line


def test_a_changed_digit_is_caught() -> None:
    line = line_of(CAIXA_BARCODE)
    for position in (0, 5, 12, 25, 32, 40):
        wrong = line[:position] + str((int(line[position]) + 1) % 10) + line[position + 1 :]
        with pytest.raises(InvalidCode):
            check_line(wrong)
    assert barcode_from_any(CAIXA_LINE) == CAIXA_BARCODE
    assert barcode_from_any(CAIXA_BARCODE) == CAIXA_BARCODE
    assert barcode_from_any(CAIXA_BARCODE[:-1] + "2") is None
    assert barcode_from_any("https://example.com/qr/123") is None


def test_barcode_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        barcode(bank="237", due=date(2026, 11, 24), amount=10**10, free_field="0" * 25)
    with pytest.raises(ValueError, match="25 digits"):
        barcode(bank="237", due=date(2026, 11, 24), amount=1, free_field="0" * 24)


def test_itf_draws_two_bars_a_pair_plus_start_and_stop() -> None:
    bars = itf_bars(CAIXA_BARCODE)
    assert len(bars) == 2 + 22 * 5 + 2
    # Start: 4 narrow; each digit: 2 wide (3) and 3 narrow (1); stop: wide, narrow, narrow.
    assert bars[-1][0] + bars[-1][1] == 4 + 44 * (2 * 3 + 3) + (3 + 1 + 1)


def test_easter_and_the_bank_holidays_it_moves() -> None:
    assert easter(2026) == date(2026, 4, 5)
    assert easter(2027) == date(2027, 3, 28)
    assert sorted(holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 2, 16),  # Carnival Monday
        date(2026, 2, 17),  # Carnival Tuesday
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 21),
        date(2026, 5, 1),
        date(2026, 6, 4),  # Corpus Christi
        date(2026, 9, 7),
        date(2026, 10, 12),
        date(2026, 11, 2),
        date(2026, 11, 15),
        date(2026, 11, 20),
        date(2026, 12, 25),
    ]
    assert {date(2027, 2, 8), date(2027, 2, 9), date(2027, 3, 26), date(2027, 5, 27)} <= holidays(
        2027
    )


def test_business_days() -> None:
    assert is_business_day(date(2026, 11, 23))  # a Monday
    assert not is_business_day(date(2026, 11, 21))  # a Saturday
    assert not is_business_day(date(2026, 11, 20))  # Consciência Negra, a Friday
    # Paid on Thursday Christmas Eve: Christmas, then the weekend.
    assert add_business_days(date(2026, 12, 24), 1) == date(2026, 12, 28)
    assert add_business_days(date(2026, 12, 24), 3) == date(2026, 12, 30)
    # Paid on the Friday before Carnival: Monday and Tuesday do not count.
    assert add_business_days(date(2027, 2, 5), 1) == date(2027, 2, 10)


def test_a_due_date_on_a_weekend_or_holiday_is_payable_the_next_business_day() -> None:
    assert last_payable_day(date(2026, 11, 24)) == date(2026, 11, 24)
    assert last_payable_day(date(2026, 11, 28)) == date(2026, 11, 30)  # Saturday → Monday
    assert last_payable_day(date(2026, 12, 25)) == date(2026, 12, 28)  # Christmas Friday
    assert last_payable_day(date(2026, 11, 14)) == date(2026, 11, 16)  # Sat, Sun the 15th
    until = payable_until(date(2026, 12, 25))
    assert until == datetime(2026, 12, 29, 0, 0, tzinfo=SAO_PAULO)
    assert until.astimezone(UTC) == datetime(2026, 12, 29, 3, 0, tzinfo=UTC)
