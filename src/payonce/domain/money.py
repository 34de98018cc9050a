"""Money as integer minor units of an ISO 4217 currency, and the currencies payonce accepts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# Minor-unit exponents of the currencies payonce accepts; anything else is refused at the door.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "BRL": 2,
    "JPY": 0,
}
# The currencies an order may be in: those at least one channel takes (Alipay and WeChat Pay
# CNY, PayPal USD EUR GBP BRL HKD CNY, Boleto BRL). Money knows more (JPY) for the providers' own
# wire formats, but an order nobody can pay is refused when it is created.
ORDER_CURRENCIES: frozenset[str] = frozenset({"CNY", "USD", "EUR", "GBP", "HKD", "BRL"})
# The symbol people read before an amount of each currency (pages, wallet screens, pushes).
CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥",
    "JPY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "HKD": "HK$",
    "BRL": "R$",
}

# A bound on any single amount, far above any real basket, so arithmetic never overflows a BIGINT.
MAX_MINOR_AMOUNT = 10**12


class InvalidMoney(ValueError):
    """An amount or currency outside what payonce accepts."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the currency's minor units (fen, cents), never a float."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if self.currency not in CURRENCY_EXPONENTS:
            raise InvalidMoney(f"unsupported currency {self.currency!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidMoney("amount must be an integer number of minor units")
        if not 0 <= self.amount <= MAX_MINOR_AMOUNT:
            raise InvalidMoney(f"amount {self.amount} out of range")

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]

    def to_decimal_string(self) -> str:
        """The major-unit form providers speak, e.g. 3998 CNY -> "39.98"."""
        if self.exponent == 0:
            return str(self.amount)
        return f"{Decimal(self.amount).scaleb(-self.exponent):.{self.exponent}f}"

    @classmethod
    def from_decimal_string(cls, text: str, currency: str) -> Money:
        """Parse a provider's major-unit amount exactly; refuse anything with extra precision."""
        try:
            value = Decimal(text)
        except ArithmeticError as exc:
            raise InvalidMoney(f"not an amount: {text!r}") from exc
        if currency not in CURRENCY_EXPONENTS:
            raise InvalidMoney(f"unsupported currency {currency!r}")
        minor = value.scaleb(CURRENCY_EXPONENTS[currency])
        if not value.is_finite() or minor != minor.to_integral_value():
            raise InvalidMoney(f"not an exact amount: {text!r}")
        return cls(int(minor), currency)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise InvalidMoney("cannot add different currencies")
        return Money(self.amount + other.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"
