"""Brazilian bank business days: national holidays, the next payable day, days of clearing.

Domain knowledge shared by the Boleto channel's poll schedule and the simulated PSP."""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Brazil keeps one offset all year since 2019; zoneinfo still says so from the tz database.
SAO_PAULO = ZoneInfo("America/Sao_Paulo")

# Fixed-date national holidays on which banks close: (month, day).
_FIXED_HOLIDAYS = (
    (1, 1),  # Confraternização Universal
    (4, 21),  # Tiradentes
    (5, 1),  # Dia do Trabalho
    (9, 7),  # Independência
    (10, 12),  # Nossa Senhora Aparecida
    (11, 2),  # Finados
    (11, 15),  # Proclamação da República
    (11, 20),  # Consciência Negra (national since 2024)
    (12, 25),  # Natal
)
# Movable bank holidays, as days from Easter Sunday.
_EASTER_OFFSETS = (
    -48,  # Carnival Monday
    -47,  # Carnival Tuesday
    -2,  # Good Friday
    60,  # Corpus Christi
)


def easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@functools.cache
def holidays(year: int) -> frozenset[date]:
    """The national days banks are closed in ``year`` (weekends aside)."""
    sunday = easter(year)
    fixed = {date(year, month, day) for month, day in _FIXED_HOLIDAYS}
    movable = {sunday + timedelta(days=offset) for offset in _EASTER_OFFSETS}
    return frozenset(fixed | movable)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def business_day_on_or_after(day: date) -> date:
    """The day itself when banks open, else the next day they do."""
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int) -> date:
    """The ``count``-th business day after ``day`` (``day`` itself never counts)."""
    while count > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            count -= 1
    return day


def local_date(moment: datetime) -> date:
    return moment.astimezone(SAO_PAULO).date()


def start_of(day: date) -> datetime:
    """Midnight that opens ``day`` in São Paulo, as an aware instant."""
    return datetime.combine(day, time(0, 0), tzinfo=SAO_PAULO)


def last_payable_day(due_date: date) -> date:
    """A boleto due on a weekend or holiday is payable without charges the next business day."""
    return business_day_on_or_after(due_date)


def payable_until(due_date: date) -> datetime:
    """The first instant a voucher with this due date can no longer be paid."""
    return start_of(last_payable_day(due_date) + timedelta(days=1))


def on_a_business_day(moment: datetime) -> datetime:
    """``moment`` when São Paulo's banks are open that day; else the start of the next day they
    are (nothing clears on a weekend or a holiday, so nothing is worth asking about then)."""
    day = local_date(moment)
    if is_business_day(day):
        return moment
    return start_of(business_day_on_or_after(day)).astimezone(moment.tzinfo)
