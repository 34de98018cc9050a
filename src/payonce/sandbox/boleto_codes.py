"""The boleto's numbers (FEBRABAN layout): the 44-digit barcode, the 47-digit digitable line.

Barcode: bank (3) · currency 9 (1) · general check digit (1, mod 11) · due factor (4) ·
amount in centavos (10) · the bank's free field (25). The digitable line carries the same
digits in five fields, the first three each closed by a mod-10 check digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

CURRENCY_REAL = "9"
MAX_CENTAVOS = 99_999_999_99  # ten digits of amount on the barcode
# The due factor counts days from 1997-10-07 and ran out (9999) on 2025-02-21; from
# 2025-02-22 it starts again at 1000 (FEBRABAN's rule for the reuse of the factor).
_FIRST_BASE = date(1997, 10, 7)
_SECOND_BASE = date(2025, 2, 22)
_FIRST_USABLE = date(2000, 7, 3)  # factor 1000 of the first series
_NON_DIGITS = re.compile(r"[\s.\-]")


class InvalidCode(ValueError):
    """A barcode or digitable line that is malformed or whose check digits do not hold."""


def mod10(digits: str) -> int:
    """The digitable line's check digit: weights 2,1,2,1... from the right, products' digits
    summed, then what brings the sum to the next multiple of ten."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        product = int(char) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def mod11(digits: str) -> int:
    """The barcode's general check digit: weights 2..9 from the right, 11 minus the remainder;
    0, 10 and 11 become 1 (a barcode's check digit is never 0)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        total += int(char) * (2 + position % 8)
    digit = 11 - total % 11
    return 1 if digit in (0, 10, 11) else digit


def due_factor(due: date) -> str:
    """Four digits: days from the base date (the second series from 2025-02-22 on)."""
    if due >= _SECOND_BASE:
        factor = 1000 + (due - _SECOND_BASE).days
    elif due >= _FIRST_USABLE:
        factor = (due - _FIRST_BASE).days
    else:
        raise ValueError(f"no due factor for {due}")
    if factor > 9999:
        raise ValueError(f"no due factor for {due}: beyond the current series")
    return f"{factor:04d}"


def barcode(*, bank: str, due: date, amount: int, free_field: str) -> str:
    """The 44 digits, with the general check digit computed over the other 43."""
    if not (len(bank) == 3 and bank.isdigit()):
        raise ValueError("bank code is three digits")
    if not (len(free_field) == 25 and free_field.isdigit()):
        raise ValueError("free field is 25 digits")
    if not 0 < amount <= MAX_CENTAVOS:
        raise ValueError(f"amount {amount} does not fit a boleto")
    rest = f"{due_factor(due)}{amount:010d}{free_field}"
    head = bank + CURRENCY_REAL
    return f"{head}{mod11(head + rest)}{rest}"


def line_of(code: str) -> str:
    """The 47-digit digitable line of a (valid) 44-digit barcode."""
    check_barcode(code)
    field1 = code[0:4] + code[19:24]
    field2 = code[24:34]
    field3 = code[34:44]
    return (
        f"{field1}{mod10(field1)}{field2}{mod10(field2)}{field3}{mod10(field3)}"
        f"{code[4]}{code[5:19]}"
    )


def barcode_of(line: str) -> str:
    """The 44-digit barcode a (valid) digitable line stands for."""
    check_line(line)
    return line[0:4] + line[32] + line[33:47] + line[4:9] + line[10:20] + line[21:31]


def formatted(line: str) -> str:
    """The line as printed: ``AAABC.CCCCX DDDDD.DDDDDY EEEEE.EEEEEZ K UUUUVVVVVVVVVV``."""
    return (
        f"{line[0:5]}.{line[5:10]} {line[10:15]}.{line[15:21]} "
        f"{line[21:26]}.{line[26:32]} {line[32]} {line[33:47]}"
    )


def digits_of(text: str) -> str:
    """The digits of a line or barcode as typed: dots, spaces and dashes dropped."""
    return _NON_DIGITS.sub("", text)


def check_barcode(code: str) -> None:
    if not (len(code) == 44 and code.isdigit()):
        raise InvalidCode("a barcode is 44 digits")
    if int(code[4]) != mod11(code[:4] + code[5:]):
        raise InvalidCode("the barcode's check digit does not hold")


def check_line(line: str) -> None:
    if not (len(line) == 47 and line.isdigit()):
        raise InvalidCode("a digitable line is 47 digits")
    for start, end in ((0, 9), (10, 20), (21, 31)):
        if int(line[end]) != mod10(line[start:end]):
            raise InvalidCode(f"check digit {line[end]} of field {line[start:end]} does not hold")
    check_barcode(line[0:4] + line[32] + line[33:47] + line[4:9] + line[10:20] + line[21:31])


@dataclass(frozen=True)
class Numbers:
    """The two forms a shopper may bring to the bank, from one barcode."""

    barcode: str
    line: str

    @property
    def printed_line(self) -> str:
        return formatted(self.line)


def numbers(*, bank: str, due: date, amount: int, free_field: str) -> Numbers:
    code = barcode(bank=bank, due=due, amount=amount, free_field=free_field)
    return Numbers(barcode=code, line=line_of(code))


def barcode_from_any(text: str) -> str | None:
    """The barcode a shopper's input stands for (a line or a barcode, formatted or not)."""
    digits = digits_of(text.strip())
    try:
        if len(digits) == 47:
            return barcode_of(digits)
        if len(digits) == 44:
            check_barcode(digits)
            return digits
    except InvalidCode:
        return None
    return None


# Interleaved 2 of 5, the symbology printed on every boleto: each digit is five elements, two
# of them wide; digits go in pairs, the first drawn in bars and the second in the spaces.
_ITF_PATTERNS = (
    "nnwwn",
    "wnnnw",
    "nwnnw",
    "wwnnn",
    "nnwnw",
    "wnwnn",
    "nwwnn",
    "nnnww",
    "wnnwn",
    "nwnwn",
)


def itf_bars(code: str, *, narrow: int = 1, wide: int = 3) -> list[tuple[int, int]]:
    """The bars of ``code`` (an even number of digits) as (x, width), spaces left out."""
    if len(code) % 2 or not code.isdigit():
        raise ValueError("ITF encodes an even number of digits")
    widths = [narrow] * 4  # start: bar, space, bar, space
    for index in range(0, len(code), 2):
        bars, spaces = _ITF_PATTERNS[int(code[index])], _ITF_PATTERNS[int(code[index + 1])]
        for bar, space in zip(bars, spaces, strict=True):
            widths += [wide if bar == "w" else narrow, wide if space == "w" else narrow]
    widths += [wide, narrow, narrow]  # stop: bar, space, bar
    drawn, x = [], 0
    for position, width in enumerate(widths):
        if position % 2 == 0:
            drawn.append((x, width))
        x += width
    return drawn
