"""The PayPal channel's book: every order, its approval, capture and refunds, and the ledger."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from payonce.ports.clock import Clock
from payonce.sandbox.channel import TradeListing
from payonce.sandbox.faults import Lateness, on_time
from payonce.sandbox.ledger import Ledger, Movement
from payonce.sandbox.paypal_records import (
    APPROVABLE,
    APPROVAL_WINDOW,
    CHANNEL,
    CREATE_REQUEST_ID_RETENTION,
    Capture,
    Order,
    OrderStatus,
    OrderTerms,
    Refund,
    paypal_id,
)
from payonce.sandbox.paypal_wire import not_found, unprocessable
from payonce.sandbox.problems import Problem


@dataclass(frozen=True)
class BookListener:
    """Who hears of each change PayPal notifies (webhooks): approval, capture, refund."""

    approved: Callable[[Order], None]
    captured: Callable[[Order], None]
    refunded: Callable[[Order, Refund], None]


class PaypalBook:
    """All orders of the channel. Callers hold the sandbox's state lock."""

    def __init__(
        self,
        *,
        clock: Clock,
        ledger: Ledger,
        listener: BookListener,
        epoch: int,
        late: Lateness = on_time,
    ) -> None:
        self._clock = clock
        self._late = late
        self._ledger = ledger
        self._listener = listener
        self._orders: dict[str, Order] = {}
        # A create's PayPal-Request-Id → (order, when the id is forgotten), per merchant.
        self._create_ids: dict[tuple[str, str], tuple[Order, datetime]] = {}
        self._captures: dict[str, Order] = {}
        self._refunds: dict[str, tuple[Order, Refund]] = {}
        self._seq = itertools.count(1)
        # Ids stay unique across restarts of the sandbox (its state lives in memory): each
        # instance numbers them under the instant it started.
        self.epoch = epoch
        # Orders not yet captured: the only ones the approval window can void.
        self._open: dict[str, Order] = {}

    def provider_now(self) -> datetime:
        """PayPal's own clock, for its deadlines: behind ours by the ``pay_late_by_s`` fault."""
        return self._clock.now() - self._late()

    def _new_id(self, kind: str) -> str:
        return paypal_id(kind, self.epoch, next(self._seq))

    # -- merchant side ---------------------------------------------------------------------

    def replay(self, merchant_id: str, request_id: str | None) -> Order | None:
        """The order an earlier create with this PayPal-Request-Id made, while it is kept."""
        if request_id is None:
            return None
        kept = self._create_ids.get((merchant_id, request_id))
        if kept is None:
            return None
        order, forget_at = kept
        if self._clock.now() >= forget_at:
            del self._create_ids[(merchant_id, request_id)]
            return None
        self.expire_due()
        return order

    def create(self, terms: OrderTerms) -> Order:
        now = self._clock.now()
        self.expire_due()
        order = Order(
            id=self._new_id("order"),
            terms=terms,
            created_at=now,
            expires_at=now + APPROVAL_WINDOW,
            status=OrderStatus.PAYER_ACTION_REQUIRED
            if terms.payment_source
            else OrderStatus.CREATED,
        )
        self._orders[order.id] = order
        self._open[order.id] = order
        if terms.request_id is not None:
            self._create_ids[(terms.merchant_id, terms.request_id)] = (
                order,
                now + CREATE_REQUEST_ID_RETENTION,
            )
        return order

    def order(self, order_id: str, merchant_id: str | None = None) -> Order:
        """The order by id (of this merchant, when given), or RESOURCE_NOT_FOUND."""
        self.expire_due()
        order = self._orders.get(order_id)
        if order is None or (merchant_id is not None and order.terms.merchant_id != merchant_id):
            raise not_found(f"order {order_id}")
        return order

    def capture(self, order: Order, request_id: str | None) -> tuple[Order, bool]:
        """Capture an approved order once; answers the order and whether money moved now.

        The same PayPal-Request-Id again answers the same capture; another capture of a captured
        order is ORDER_ALREADY_CAPTURED (intent CAPTURE allows one capture per order).
        """
        self.expire_due()
        existing = order.capture
        if existing is not None:
            if request_id is not None and existing.request_id == request_id:
                return order, False
            raise unprocessable(
                "ORDER_ALREADY_CAPTURED",
                "Order already captured. If 'intent=CAPTURE' only one capture per order is "
                "allowed.",
            )
        if order.status is OrderStatus.VOIDED:
            raise unprocessable("ORDER_EXPIRED", "The order expired: it can no longer be captured.")
        if order.status is not OrderStatus.APPROVED:
            raise unprocessable(
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment. Redirect the payer to the "
                "'rel':'approve' url returned as part of the HATEOAS links within the Create "
                "Order call.",
            )
        self._refuse_duplicate_invoice(order)
        now = self._clock.now()
        terms = order.terms
        capture = Capture(
            id=self._new_id("capture"),
            request_id=request_id,
            amount=terms.amount,
            currency=terms.currency,
            at=now,
        )
        order.capture = capture
        order.status = OrderStatus.COMPLETED
        self._open.pop(order.id, None)
        self._captures[capture.id] = order
        self._ledger.record(
            Movement(
                channel=CHANNEL,
                out_trade_no=order.out_trade_no,
                trade_no=order.id,
                kind="capture",
                amount=capture.amount,
                currency=capture.currency,
                at=now,
                reference=capture.id,
            )
        )
        self._listener.captured(order)
        return order, True

    def _refuse_duplicate_invoice(self, order: Order) -> None:
        """PayPal's default account setting: one completed payment per invoice_id."""
        invoice = order.terms.invoice_id
        if invoice is None:
            return
        for other in self._captures.values():
            same_merchant = other.terms.merchant_id == order.terms.merchant_id
            if same_merchant and other.terms.invoice_id == invoice:
                raise unprocessable(
                    "DUPLICATE_INVOICE_ID",
                    "Duplicate Invoice ID detected. To avoid a potential duplicate transaction "
                    "your account setting requires that Invoice Id be unique for each transaction.",
                )

    def captured(self, capture_id: str, merchant_id: str) -> Order:
        order = self._captures.get(capture_id)
        if order is None or order.terms.merchant_id != merchant_id:
            raise not_found(f"capture {capture_id}")
        return order

    def refund(
        self,
        order: Order,
        request_id: str,
        amount: int | None,
        currency: str | None,
        *,
        custom_id: str | None = None,
        invoice_id: str | None = None,
    ) -> tuple[Refund, bool]:
        """Refund once per PayPal-Request-Id of this capture; answers whether money moved now.

        Without an amount the rest of the capture is refunded. Request ids are kept per capture.
        """
        capture = order.capture
        assert capture is not None
        previous = capture.refunds.get(request_id)
        if previous is not None:
            return previous, False
        remaining = capture.amount - capture.refunded
        if remaining <= 0:
            raise unprocessable("CAPTURE_FULLY_REFUNDED", "The capture has already been refunded.")
        if currency is not None and currency != capture.currency:
            raise unprocessable(
                "REFUND_CAPTURE_CURRENCY_MISMATCH",
                "Refund must be in the same currency as the capture.",
            )
        wanted = remaining if amount is None else amount
        if wanted > remaining:
            raise unprocessable(
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has not "
                "yet been refunded.",
            )
        now = self._clock.now()
        refund = Refund(
            id=self._new_id("refund"),
            request_id=request_id,
            capture_id=capture.id,
            amount=wanted,
            currency=capture.currency,
            at=now,
            custom_id=custom_id,
            invoice_id=invoice_id,
        )
        capture.refunds[request_id] = refund
        self._refunds[refund.id] = (order, refund)
        self._ledger.record(
            Movement(
                channel=CHANNEL,
                out_trade_no=order.out_trade_no,
                trade_no=order.id,
                kind="refund",
                amount=wanted,
                currency=capture.currency,
                at=now,
                reference=request_id,
            )
        )
        self._listener.refunded(order, refund)
        return refund, True

    def refund_by_id(self, refund_id: str, merchant_id: str) -> tuple[Order, Refund]:
        found = self._refunds.get(refund_id)
        if found is None or found[0].terms.merchant_id != merchant_id:
            raise not_found(f"refund {refund_id}")
        return found

    # -- buyer side ------------------------------------------------------------------------

    def open(self, order: Order) -> Order:
        """The buyer opens the approval page: nothing changes at PayPal until they approve."""
        self._refuse_unapprovable(order)
        if order.opened_at is None:
            order.opened_at = self._clock.now()
        return order

    def approve(self, order: Order) -> Order:
        """The buyer approves: the order is APPROVED (no money moves until the capture)."""
        self.open(order)
        order.status = OrderStatus.APPROVED
        order.approved_at = self._clock.now()
        self._listener.approved(order)
        return order

    def _refuse_unapprovable(self, order: Order) -> None:
        self.expire_due()
        if order.status in APPROVABLE:
            return
        if order.status is OrderStatus.VOIDED:
            raise Problem(409, "order_expired", "Order expired", "this PayPal order has expired")
        if order.status is OrderStatus.APPROVED:
            raise Problem(
                409, "order_already_approved", "Already approved", "you approved this order"
            )
        raise Problem(409, "order_completed", "Already paid", "this order is paid")

    # -- time ------------------------------------------------------------------------------

    def expire_due(self) -> None:
        """Void every order not captured within its approval window."""
        now = self.provider_now()
        for order in list(self._open.values()):
            if now >= order.expires_at:
                order.status = OrderStatus.VOIDED
                order.voided_at = order.expires_at + self._late()
                del self._open[order.id]

    # -- views -----------------------------------------------------------------------------

    def known(self, order_id: str) -> Order | None:
        """The order of this id, as it is (a read: no approval window is applied)."""
        return self._orders.get(order_id)

    def by_id(self, order_id: str) -> Order | None:
        self.expire_due()
        return self._orders.get(order_id)

    def trades(self, out_trade_no: str | None = None) -> list[TradeListing]:
        now = self.provider_now()
        listed = []
        for order in self._orders.values():
            if out_trade_no is not None and order.out_trade_no != out_trade_no:
                continue
            status, closed_at = order.status.value, order.voided_at
            # A read changes nothing; show what the next locked operation will record.
            if order.id in self._open and now >= order.expires_at:
                status, closed_at = OrderStatus.VOIDED.value, order.expires_at + self._late()
            capture = order.capture
            listed.append(
                TradeListing(
                    channel=CHANNEL,
                    out_trade_no=order.out_trade_no,
                    trade_no=order.id,
                    status=status,
                    amount=order.terms.amount,
                    currency=order.terms.currency,
                    subject=order.terms.description,
                    created_at=order.created_at,
                    paid_at=capture.at if capture else None,
                    closed_at=closed_at,
                    captured=capture.amount if capture else 0,
                    refunded=capture.refunded if capture else 0,
                )
            )
        return listed
