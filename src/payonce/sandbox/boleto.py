"""The boleto channel: its PSP's REST API (charges, refunds, voucher page) and its wallet side.

The shopper pays at a bank; the clearing confirms the payment business days later.

Endpoints, under the sandbox's mount (all JSON, ``Authorization: Basic base64(<api key>:)``):
``POST /boleto/v1/charges`` · ``GET /boleto/v1/charges?code=`` · ``GET /boleto/v1/charges/{id}``
· ``POST /boleto/v1/charges/{id}/cancel`` (always refused: no cancellation once issued) ·
``POST /boleto/v1/charges/{id}/refunds`` · ``GET /boleto/v1/charges/{id}/voucher`` (HTML, public)
· ``GET /boleto/v1/statements/{YYYY-MM-DD}`` (the day's money movements, once it has ended).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from payonce.domain.bank_days import SAO_PAULO
from payonce.sandbox.boleto_book import (
    ACCOUNT,
    AGENCY,
    BANK,
    CONFIRMATION_DAYS,
    PORTFOLIO,
    BoletoBook,
)
from payonce.sandbox.boleto_charges import (
    API,
    CHANNEL,
    Charge,
    charge_json,
    listing,
    voucher_url,
    wallet_view,
)
from payonce.sandbox.boleto_codes import barcode_from_any, itf_bars
from payonce.sandbox.boleto_notices import ACCOUNT_NAME, BoletoNotices
from payonce.sandbox.boleto_requests import ChargeIn, RefundIn, parse, reference_of
from payonce.sandbox.boleto_statements import parse_day, statement_json
from payonce.sandbox.boleto_wire import (
    BoletoCredentials,
    BoletoError,
    authenticate,
    system_error,
)
from payonce.sandbox.call_log import GatewayCall
from payonce.sandbox.channel import SandboxContext, TradeListing
from payonce.sandbox.faults import Operation
from payonce.sandbox.problems import Problem
from payonce.sandbox.wallet import Wallet, WalletView


@dataclass
class Answer:
    """One API answer, with what the call log keeps of it."""

    status: int
    body: dict[str, Any]
    out_trade_no: str | None = None
    trade_no: str | None = None
    error: str | None = None


Work = Callable[[str], Answer]  # given the authenticated account id


class BoletoChannel:
    """Answers the merchant's API calls and the shopper's bank for boleto."""

    name = CHANNEL
    statement_zone = SAO_PAULO

    def __init__(
        self,
        context: SandboxContext,
        *,
        accounts: dict[str, BoletoCredentials],
        book: BoletoBook,
    ) -> None:
        self._clock = context.clock
        self._calls = context.calls
        self._ledger = context.ledger
        self._faults = context.faults
        self._lock = context.lock
        self._hold = context.hold
        self._public_url = context.public_url.rstrip("/")
        self._accounts = accounts
        self._book = book
        self._templates = Environment(
            loader=PackageLoader("payonce.sandbox", "templates"),
            autoescape=select_autoescape(default=True),
        )

    def _json(self, charge: Charge) -> dict[str, Any]:
        return charge_json(charge, voucher_url(self._public_url, charge))

    # -- the API ---------------------------------------------------------------------------

    def router(self, wallet: Wallet) -> APIRouter:
        router = APIRouter(tags=["boleto"])

        @router.post(f"{API}/charges", response_model=None)
        async def create(request: Request) -> Response:
            """Issue a boleto for the merchant's reference; the same reference and amount
            again answer the same charge (200), another amount is refused (409)."""
            raw = await request.body()

            def work(account_id: str) -> Answer:
                terms = parse(ChargeIn, raw).terms(account_id)
                charge, created = self._book.issue(terms)
                return self._charge_answer(charge, 201 if created else 200)

            return await self._serve(
                request, "POST /charges", "create", work, code=reference_of(raw)
            )

        @router.get(f"{API}/charges", response_model=None)
        async def by_code(request: Request, code: str = "") -> Response:
            """The merchant's charge for a reference, as a (zero- or one-item) list."""

            def work(account_id: str) -> Answer:
                if not code:
                    raise BoletoError(422, "invalid_request", "Filter by code is required.")
                charge = self._book.find(account_id, code)
                if charge is None:
                    return Answer(200, {"data": [], "paging": {"total": 0}}, code)
                listed = {"data": [self._json(charge)], "paging": {"total": 1}}
                return Answer(200, listed, code, charge.id)

            return await self._serve(request, "GET /charges", "query", work, code=code)

        @router.get(f"{API}/charges/{{charge_id}}", response_model=None)
        async def by_id(request: Request, charge_id: str) -> Response:
            def work(account_id: str) -> Answer:
                return self._charge_answer(self._book.get(account_id, charge_id), 200)

            return await self._serve(
                request, "GET /charges/{id}", "query", work, charge_id=charge_id
            )

        @router.post(f"{API}/charges/{{charge_id}}/cancel", response_model=None)
        async def cancel(request: Request, charge_id: str) -> Response:
            """Refused whatever the charge's state: a boleto cannot be cancelled once issued."""

            def work(account_id: str) -> Answer:
                charge = self._book.get(account_id, charge_id)
                raise BoletoError(
                    422,
                    "charge_not_cancellable",
                    f"Charge {charge.id} is a boleto: it cannot be cancelled once issued.",
                )

            return await self._serve(
                request, "POST /charges/{id}/cancel", "close", work, charge_id=charge_id
            )

        @router.post(f"{API}/charges/{{charge_id}}/refunds", response_model=None)
        async def refund(request: Request, charge_id: str) -> Response:
            """Give back (part of) a paid charge, once per refund code."""
            raw = await request.body()

            def work(account_id: str) -> Answer:
                body = parse(RefundIn, raw)
                charge = self._book.get(account_id, charge_id)
                made, new = self._book.refund(charge, body.code, body.amount)
                return Answer(201 if new else 200, made.as_json(charge.id), charge.code, charge.id)

            return await self._serve(
                request, "POST /charges/{id}/refunds", "refund", work, charge_id=charge_id
            )

        @router.get(f"{API}/statements/{{day}}", response_model=None)
        async def statement(request: Request, day: str) -> Response:
            """The account's money movements of a São Paulo day, once that day has ended."""

            def work(account_id: str) -> Answer:
                parsed = parse_day(day)
                now = self._clock.now()
                return Answer(
                    200, statement_json(self._ledger, self._book, account_id, parsed, now)
                )

            return await self._serve(request, "GET /statements/{date}", None, work)

        @router.get(f"{API}/charges/{{charge_id}}/voucher", response_class=HTMLResponse)
        async def voucher(charge_id: str) -> HTMLResponse:
            """The printable voucher (public, as a PSP's boleto link is)."""
            async with self._lock:
                self._book.settle_due()
                return self._voucher_page(self._book.lookup(charge_id))

        return router

    def _charge_answer(self, charge: Charge, status: int) -> Answer:
        return Answer(status, self._json(charge), charge.code, charge.id)

    async def _serve(
        self,
        request: Request,
        method: str,
        op: Operation | None,
        work: Work,
        *,
        code: str | None = None,
        charge_id: str | None = None,
    ) -> Response:
        """Authenticate, then do the work under the state lock unless an error fault refuses
        it first. A time-out fault lets the work happen and holds the answer back: the
        merchant sees a time-out for a call that took effect."""
        account_id = ""
        fault = None
        try:
            account_id = authenticate(request.headers.get("authorization"), self._accounts)
            async with self._lock:
                # Statements (op None) meet no call fault: they are not a trade's call.
                fault = self._faults.call_fault(op, CHANNEL) if op is not None else None
                if fault == "error":
                    raise system_error()
                self._book.settle_due()
                answer = work(account_id)
        except BoletoError as error:
            body = {"message": error.message, "code": error.code}
            known = self._book.lookup(charge_id) if charge_id else None
            reference = known.code if known is not None else code
            answer = Answer(error.status, body, reference, charge_id, error=error.code)
        held = fault == "timeout"
        self._calls.record(
            GatewayCall(
                channel=CHANNEL,
                method=method,
                app_id=account_id,
                out_trade_no=answer.out_trade_no,
                trade_no=answer.trade_no,
                at=self._clock.now(),
                code=str(answer.status),
                sub_code=answer.error,
                held=held,
            )
        )
        if held:
            await self._hold()
        return JSONResponse(answer.body, status_code=answer.status)

    def _voucher_page(self, charge: Charge | None) -> HTMLResponse:
        template = self._templates.get_template("boleto_voucher.html")
        if charge is None:
            return HTMLResponse(template.render(charge=None), status_code=404)
        bars = itf_bars(charge.numbers.barcode)
        last_x, last_width = bars[-1]
        customer = charge.terms.customer
        payer = (
            " · ".join(part for part in (customer.name, customer.document) if part)
            if customer
            else ""
        )
        html = template.render(
            charge=charge,
            due=charge.terms.due_date.strftime("%d/%m/%Y"),
            issued=charge.created_at.astimezone(SAO_PAULO).strftime("%d/%m/%Y"),
            amount=f"{charge.amount // 100:,}".replace(",", ".") + f",{charge.amount % 100:02d}",
            beneficiary=ACCOUNT_NAME,
            agency_account=f"{AGENCY} / {ACCOUNT}",
            portfolio=PORTFOLIO,
            payer=payer or "—",
            bars=bars,
            bars_width=last_x + last_width,
        )
        return HTMLResponse(html)

    # -- the wallet side: the shopper's bank -----------------------------------------------

    def recognises(self, code: str) -> bool:
        """A digitable line or barcode of this bank whose check digits hold."""
        barcode = barcode_from_any(code)
        return barcode is not None and barcode.startswith(BANK)

    async def view(self, code: str) -> WalletView:
        async with self._lock:
            self._book.settle_due()
            return wallet_view(self._charge_for(code), self._book.provider_now())

    async def scan(self, code: str) -> WalletView:
        """Reading the boleto at the bank shows it; nothing changes at the PSP."""
        return await self.view(code)

    async def pay(self, code: str) -> WalletView:
        """Pay at the bank: refused when overdue or paid; confirmed by the clearing later."""
        async with self._lock:
            self._book.settle_due()
            charge = self._charge_for(code)
            self._book.pay_at_bank(charge)
            return wallet_view(charge, self._book.provider_now())

    def _charge_for(self, code: str) -> Charge:
        barcode = barcode_from_any(code)
        charge = self._book.by_barcode(barcode) if barcode else None
        if charge is None:
            raise Problem(422, "code_unknown", "Unknown code", "no boleto has this barcode")
        return charge

    # -- the sandbox's view ----------------------------------------------------------------

    def trades(self, out_trade_no: str | None = None) -> list[TradeListing]:
        return [
            listing(charge)
            for charge in self._book.charges()
            if out_trade_no is None or charge.code == out_trade_no
        ]

    def tick(self) -> None:
        """Confirm the payments whose clearing day came, expire the boletos past paying."""
        self._book.settle_due()

    def confirmation_at(self, out_trade_no: str) -> datetime | None:
        """When the clearing confirms the bank payment of this reference (tests and demos)."""
        return self._book.confirmation_of(out_trade_no)


def build_boleto(context: SandboxContext, credentials: BoletoCredentials) -> BoletoChannel:
    """The boleto channel for one merchant account, its webhooks on the PSP's schedule and its
    clearing delay (1 to 3 business days) drawn from the seeded dice."""
    accounts = {credentials.account_id: credentials}
    public_url = context.public_url.rstrip("/")
    notices = BoletoNotices(
        accounts=accounts,
        notifier=context.notifier,
        voucher_url=lambda charge: voucher_url(public_url, charge),
    )
    faults = context.faults

    def confirmation_days() -> int:
        pick = faults.pick(f"{CHANNEL}/confirmation_days", len(CONFIRMATION_DAYS))
        return CONFIRMATION_DAYS[pick]

    book = BoletoBook(
        clock=context.clock,
        ledger=context.ledger,
        confirmation_days=confirmation_days,
        on_paid=notices.on_paid,
        on_refunded=notices.on_refunded,
        late=lambda: faults.pay_late_by,
    )
    return BoletoChannel(context, accounts=accounts, book=book)
