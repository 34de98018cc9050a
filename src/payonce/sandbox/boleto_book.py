"""The boleto PSP's book: each charge's life from issue to refund, and the money each step moves."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from datetime import datetime, time

from payonce.domain.bank_days import (
    SAO_PAULO,
    add_business_days,
    local_date,
    payable_until,
)
from payonce.ports.clock import Clock
from payonce.sandbox.boleto_charges import (
    CHANNEL,
    CURRENCY,
    PAID_STATUSES,
    Charge,
    ChargeStatus,
    ChargeTerms,
    Refund,
)
from payonce.sandbox.boleto_codes import due_factor, numbers
from payonce.sandbox.boleto_wire import BoletoError
from payonce.sandbox.faults import Lateness, on_time
from payonce.sandbox.ledger import Ledger, Movement, MovementKind
from payonce.sandbox.problems import Problem

# The collecting bank and the merchant's account there, laid out in Bradesco's (237) free
# field: agency (4) · portfolio (2) · nosso número (11) · account (7) · 0.
BANK = "237"
AGENCY = "3381"
PORTFOLIO = "09"
ACCOUNT = "0012345"
# The bank's clearing reports a payment this many business days later (drawn per payment),
# and the PSP confirms it at this local hour of that day.
CONFIRMATION_DAYS = (1, 2, 3)
CONFIRMATION_HOUR = time(9, 0)

# Called with the charge and the instant of the change it announces.
Listener = Callable[[Charge, datetime], None]
RefundListener = Callable[[Charge, Refund], None]


class BoletoBook:
    """All charges of the PSP. Callers hold the sandbox's state lock and call ``settle_due``
    first, so every answer reflects the confirmations and expiries that are due."""

    def __init__(
        self,
        *,
        clock: Clock,
        ledger: Ledger,
        confirmation_days: Callable[[], int],
        on_paid: Listener,
        on_refunded: RefundListener,
        late: Lateness = on_time,
    ) -> None:
        self._clock = clock
        self._late = late
        self._ledger = ledger
        self._confirmation_days = confirmation_days
        self._on_paid = on_paid
        self._on_refunded = on_refunded
        self._by_id: dict[str, Charge] = {}
        self._by_code: dict[tuple[str, str], Charge] = {}
        self._by_barcode: dict[str, Charge] = {}
        self._open: dict[str, Charge] = {}  # pending charges: the only ones time can change
        self._seq = itertools.count(1)
        # Ids and bank numbers stay unique across restarts of the sandbox (its state lives in
        # memory): each instance numbers its charges under the instant it started.
        self._epoch = int(clock.now().timestamp())

    def provider_now(self) -> datetime:
        """The PSP's (and banks') clock for a voucher's last payable instant: behind ours by
        the ``pay_late_by_s`` fault."""
        return self._clock.now() - self._late()

    # -- the merchant's side ---------------------------------------------------------------

    def issue(self, terms: ChargeTerms) -> tuple[Charge, bool]:
        """The charge for this reference: a new one, or the one already issued (same amount)."""
        existing = self._by_code.get((terms.account_id, terms.code))
        if existing is not None:
            if existing.amount != terms.amount:
                raise BoletoError(
                    409,
                    "code_conflict",
                    f"A charge with code {terms.code} exists with another amount.",
                )
            return existing, False
        now = self._clock.now()
        if terms.due_date < local_date(now):
            raise BoletoError(422, "invalid_due_date", "due_date is in the past.")
        try:
            due_factor(terms.due_date)
        except ValueError as error:
            raise BoletoError(422, "invalid_due_date", str(error)) from error
        seq = next(self._seq)
        nosso_numero = f"{self._epoch % 10**4:04d}{seq:07d}"
        charge = Charge(
            id="ch_" + _digest(f"charge|{self._epoch}|{seq}|{terms.code}"),
            terms=terms,
            nosso_numero=nosso_numero,
            numbers=numbers(
                bank=BANK,
                due=terms.due_date,
                amount=terms.amount,
                free_field=f"{AGENCY}{PORTFOLIO}{nosso_numero}{ACCOUNT}0",
            ),
            created_at=now,
            payable_until=payable_until(terms.due_date),
        )
        self._by_id[charge.id] = charge
        self._by_code[(terms.account_id, terms.code)] = charge
        self._by_barcode[charge.numbers.barcode] = charge
        self._open[charge.id] = charge
        return charge, True

    def get(self, account_id: str, charge_id: str) -> Charge:
        charge = self._by_id.get(charge_id)
        if charge is None or charge.terms.account_id != account_id:
            raise BoletoError(404, "not_found", f"Charge {charge_id} not found.")
        return charge

    def lookup(self, charge_id: str) -> Charge | None:
        return self._by_id.get(charge_id)

    def find(self, account_id: str, code: str) -> Charge | None:
        return self._by_code.get((account_id, code))

    def refund(self, charge: Charge, code: str, amount: int) -> tuple[Refund, bool]:
        """Refund once per refund code; answers the refund and whether it is new. The sandbox
        gives the money back at once (a real PSP may take days to reach the payer's bank)."""
        previous = charge.refunds.get(code)
        if previous is not None:
            if previous.amount != amount:
                raise BoletoError(
                    409, "refund_code_conflict", f"Refund {code} exists with another amount."
                )
            return previous, False
        if charge.status not in PAID_STATUSES:
            raise BoletoError(
                422, "charge_not_paid", f"Charge {charge.id} is {charge.status.value}."
            )
        if charge.refunded + amount > charge.captured:
            raise BoletoError(
                422, "refund_exceeds_captured", "Refunds would exceed the amount paid."
            )
        now = self._clock.now()
        refund = Refund(
            id="re_" + _digest(f"refund|{charge.id}|{code}"),
            code=code,
            amount=amount,
            created_at=now,
        )
        charge.refunds[code] = refund
        charge.status = (
            ChargeStatus.REFUNDED
            if charge.refunded >= charge.captured
            else ChargeStatus.PARTIALLY_REFUNDED
        )
        self._move(charge, "refund", amount, now, reference=code)
        self._on_refunded(charge, refund)
        return refund, True

    # -- the shopper's side ----------------------------------------------------------------

    def by_barcode(self, barcode: str) -> Charge | None:
        return self._by_barcode.get(barcode)

    def pay_at_bank(self, charge: Charge) -> None:
        """The shopper pays at a bank; the PSP learns it when the bank's clearing reports it."""
        now = self._clock.now()
        if charge.paid_at_bank is not None or charge.status is not ChargeStatus.PENDING:
            if charge.status is ChargeStatus.EXPIRED:
                raise _overdue()
            raise Problem(409, "boleto_already_paid", "Already paid", "this boleto was paid")
        if self.provider_now() >= charge.payable_until:
            raise _overdue()
        charge.paid_at_bank = now
        days = self._confirmation_days()
        confirm_day = add_business_days(local_date(now), days)
        charge.confirm_at = datetime.combine(confirm_day, CONFIRMATION_HOUR, tzinfo=SAO_PAULO)

    # -- time ------------------------------------------------------------------------------

    def settle_due(self) -> None:
        """Confirm every payment whose clearing day has come, expire every boleto whose last
        payable day has ended: in the order they happened, each at its own instant."""
        now = self._clock.now()
        late = self._late()
        due: list[tuple[datetime, int, Charge]] = []
        for index, charge in enumerate(self._open.values()):
            if charge.confirm_at is not None:
                if charge.confirm_at <= now:
                    due.append((charge.confirm_at, index, charge))
            elif charge.payable_until + late <= now:
                due.append((charge.payable_until + late, index, charge))
        for at, _, charge in sorted(due, key=lambda item: (item[0], item[1])):
            del self._open[charge.id]
            if charge.confirm_at is not None:
                self._confirm(charge, at)
            else:
                charge.status = ChargeStatus.EXPIRED
                charge.expired_at = at

    def _confirm(self, charge: Charge, at: datetime) -> None:
        charge.status = ChargeStatus.PAID
        charge.paid_at = at
        charge.captured = charge.amount
        self._move(charge, "capture", charge.amount, at, reference=charge.id)
        self._on_paid(charge, at)

    # -- views -----------------------------------------------------------------------------

    def charges(self) -> list[Charge]:
        return list(self._by_id.values())

    def confirmation_of(self, code: str) -> datetime | None:
        """When the pending payment of this reference will be confirmed (tests, demos)."""
        for charge in self._by_id.values():
            if charge.code == code:
                return charge.confirm_at
        return None

    # -- internals -------------------------------------------------------------------------

    def _move(
        self, charge: Charge, kind: MovementKind, amount: int, at: datetime, *, reference: str
    ) -> None:
        self._ledger.record(
            Movement(
                channel=CHANNEL,
                out_trade_no=charge.code,
                trade_no=charge.id,
                kind=kind,
                amount=amount,
                currency=CURRENCY,
                at=at,
                reference=reference,
            )
        )


def _overdue() -> Problem:
    return Problem(409, "boleto_overdue", "Overdue", "this boleto's last payable day has passed")


def _digest(text: str) -> str:
    # Deterministic, so a replay under the same seed and start shows the same ids.
    return hashlib.sha256(text.encode()).hexdigest()[:16]
