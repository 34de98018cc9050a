"""The promises I1 to I9, checked at quiescence against the sandbox's books, payonce's database,
the order service's applied events and what the shoppers saw; each breach is a Violation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payonce.domain.order import OrderStatus
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.refund import RefundStatus
from payonce.entrypoints.chaos.books import PayonceBooks, SandboxBooks
from payonce.entrypoints.chaos.journal import Visit
from payonce.entrypoints.chaos.order_service import OrderService

INVARIANTS = {
    "I1": "at most once, net",
    "I2": "nothing lost",
    "I3": "the books balance",
    "I4": "monotone",
    "I5": "idempotent replies",
    "I6": "the order service applied each payment once",
    "I7": "one open trade (closed before the next)",
    "I8": "no forged change",
    "I9": "no acknowledged request lost",
}
# The channels whose trades the provider closes on request, and what ends a trade's payable
# life; a close call the provider carried out (its answer may have been held back) ends it too.
_CLOSABLE_CHANNELS = frozenset({"alipay", "wechat"})
_ENDS = ("paid_at", "closed_at")
_CLOSE_CALLS = {
    "alipay.trade.close": "10000",
    "alipay.trade.cancel": "10000",
    "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close": "204",
}


def _closes(call: dict[str, Any]) -> bool:
    return bool(_CLOSE_CALLS.get(call["method"]) == call["code"])


_CAPTURED = frozenset({PaymentStatus.PAID, PaymentStatus.REFUNDING, PaymentStatus.REFUNDED})
_SETTLED = frozenset(
    {PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.CLOSED, PaymentStatus.REFUNDED}
)


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    order_id: str | None
    detail: str
    shopper: int | None = None


class Checker:
    def __init__(
        self,
        visits: list[Visit],
        payonce: PayonceBooks,
        sandbox: SandboxBooks,
        order_service: OrderService,
    ) -> None:
        self.visits = visits
        self.payonce = payonce
        self.sandbox = sandbox
        self.order_service = order_service
        self.shopper_of = {v.order_id: v.shopper for v in visits if v.order_id}
        self.trades = {t["out_trade_no"]: t for t in sandbox.trades}
        self.by_trade = payonce.payment_by_trade()

    def violations(self) -> list[Violation]:
        found = [
            *self._at_most_once(),
            *self._nothing_lost(),
            *self._books_balance(),
            *self._monotone(),
            *self._idempotent(),
            *self._applied_once(),
            *self._one_open_trade(),
            *self._no_forged_change(),
            *self._durable_acks(),
        ]
        return [
            Violation(v.invariant, v.order_id, v.detail, self.shopper_of.get(v.order_id or ""))
            for v in found
        ]

    def _net(self, payment: Payment) -> int:
        trade = self.trades.get(payment.out_trade_no)
        return 0 if trade is None else int(trade["captured"]) - int(trade["refunded"])

    def _at_most_once(self) -> Iterator[Violation]:
        for order_id, order in self.payonce.orders.items():
            payments = self.payonce.payments[order_id]
            applied = [p.id for p in payments if p.applied]
            if len(applied) > 1:
                yield Violation("I1", order_id, f"{len(applied)} payments applied: {applied}")
            net = sum(self._net(p) for p in payments)
            if net > order.total.amount:
                yield Violation(
                    "I1", order_id, f"net captured {net} exceeds the order's {order.total.amount}"
                )
            extra = [p.id for p in payments if p.status is PaymentStatus.PAID and not p.applied]
            if extra:
                yield Violation("I1", order_id, f"captured, not applied, not refunded: {extra}")

    def _nothing_lost(self) -> Iterator[Violation]:
        for trade in self.sandbox.trades:
            if int(trade["captured"]) == 0:
                continue
            payment = self.by_trade.get(trade["out_trade_no"])
            if payment is None:
                yield Violation("I2", None, f"capture {trade['out_trade_no']} unknown to payonce")
                continue
            if payment.status not in _CAPTURED:
                yield Violation(
                    "I2", payment.order_id, f"{payment.id} captured, recorded {payment.status}"
                )
        for order_id, order in self.payonce.orders.items():
            live = [p.id for p in self.payonce.payments[order_id] if p.status not in _SETTLED]
            if live:
                yield Violation("I2", order_id, f"still unsettled at quiescence: {live}")
            if order.status is OrderStatus.UNPAID:
                yield Violation("I2", order_id, "order still UNPAID at quiescence")
            kept = sum(self._net(p) for p in self.payonce.payments[order_id])
            if kept > 0 and order.status is not OrderStatus.READY_FOR_SHIPMENT:
                yield Violation("I2", order_id, f"{kept} kept, order {order.status}")

    def _books_balance(self) -> Iterator[Violation]:
        for order_id, payments in self.payonce.payments.items():
            for payment in payments:
                trade = self.trades.get(payment.out_trade_no)
                captured = int(trade["captured"]) if trade else 0
                refunded = int(trade["refunded"]) if trade else 0
                amount = payment.amount.amount
                expected = {
                    PaymentStatus.PAID: (amount, 0),
                    PaymentStatus.REFUNDED: (amount, amount),
                }.get(payment.status, (0, 0) if payment.status in _SETTLED else None)
                if expected is not None and (captured, refunded) != expected:
                    yield Violation(
                        "I3",
                        order_id,
                        f"{payment.id} {payment.status}: provider captured {captured}, "
                        f"refunded {refunded}",
                    )
            # A refund payonce asked for (by its request number), or a cancel that reversed a
            # paid trade: either way the payment reads REFUNDED, which the lines above matched.
            for refund in self.payonce.refunds[order_id]:
                if refund.status is not RefundStatus.SUCCEEDED:
                    yield Violation("I3", order_id, f"refund {refund.refund_no} {refund.status}")
        if self.payonce.undelivered_events:
            yield Violation(
                "I3", None, f"{self.payonce.undelivered_events} outbox events undelivered"
            )

    def _monotone(self) -> Iterator[Violation]:
        for visit in self.visits:
            last_version, paid_seen = 0, False
            statuses: dict[int, str] = {}
            for message in visit.live:
                if message.status_version < last_version:
                    yield Violation(
                        "I4",
                        visit.order_id,
                        f"version {message.status_version} after {last_version}",
                    )
                if statuses.setdefault(message.status_version, message.status) != message.status:
                    yield Violation(
                        "I4", visit.order_id, f"version {message.status_version}: two statuses"
                    )
                if paid_seen and message.status != "READY_FOR_SHIPMENT":
                    yield Violation("I4", visit.order_id, f"paid, then {message.status}")
                last_version = max(last_version, message.status_version)
                paid_seen = paid_seen or message.status == "READY_FOR_SHIPMENT"
            order = self.payonce.orders.get(visit.order_id or "")
            if order is not None and order.version < last_version:
                yield Violation("I4", visit.order_id, "the page saw a version the order lost")

    def _idempotent(self) -> Iterator[Violation]:
        for visit in self.visits:
            answers: dict[str, set[tuple[int, str]]] = defaultdict(set)
            for reply in visit.replies:
                if reply.status in (200, 201):
                    answers[reply.key].add((reply.status, str(reply.body.get("id"))))
            for key, distinct in answers.items():
                if len(distinct) > 1:
                    yield Violation("I5", visit.order_id, f"key {key}: {sorted(distinct)}")

    def _applied_once(self) -> Iterator[Violation]:
        applied = self.order_service.applied
        for order_id, order in self.payonce.orders.items():
            events = applied.get(order_id, [])
            paid = order.status is OrderStatus.READY_FOR_SHIPMENT
            if paid and len(events) != 1:
                yield Violation("I6", order_id, f"paid, applied {len(events)} times: {events}")
            if not paid and events:
                yield Violation("I6", order_id, f"{order.status}, yet applied {events}")
            if paid and len(events) == 1:
                payment = self.order_service.payments[events[0]]
                if payment != order.paid_payment_id:
                    yield Violation(
                        "I6", order_id, f"applied {payment}, payonce paid {order.paid_payment_id}"
                    )

    def _one_open_trade(self) -> Iterator[Violation]:
        """Before payonce recorded a new trade's intent, every older trade of the order that
        the provider held open had been paid, or closed by a call the provider carried out
        (Alipay and WeChat Pay; PayPal moves no money until payonce captures)."""
        closed_at: dict[str, datetime] = {}
        for call in self.sandbox.calls:
            if _closes(call) and call["out_trade_no"]:
                at = datetime.fromisoformat(call["at"])
                closed_at[call["out_trade_no"]] = min(at, closed_at.get(call["out_trade_no"], at))
        for order_id, payments in self.payonce.payments.items():
            ordered = sorted(payments, key=lambda payment: payment.number)
            for index, newer in enumerate(ordered):
                for older in ordered[:index]:
                    trade = self.trades.get(older.out_trade_no)
                    if older.channel.value not in _CLOSABLE_CHANNELS or trade is None:
                        continue
                    ends = [datetime.fromisoformat(trade[k]) for k in _ENDS if trade.get(k)]
                    if older.out_trade_no in closed_at:
                        ends.append(closed_at[older.out_trade_no])
                    opened = datetime.fromisoformat(trade["created_at"])
                    if opened < newer.created_at and not any(e <= newer.created_at for e in ends):
                        yield Violation(
                            "I7",
                            order_id,
                            f"{newer.id} opened while {older.id} was open at the provider",
                        )

    def _no_forged_change(self) -> Iterator[Violation]:
        for delivery in self.sandbox.deliveries:
            fault = delivery.get("fault") or ""
            if fault.startswith("forged:") and delivery["ok"]:
                payment = self.by_trade.get(delivery["out_trade_no"])
                yield Violation(
                    "I8",
                    payment.order_id if payment else None,
                    f"{delivery['channel']} {fault} acknowledged",
                )
        for order_id, order in self.payonce.orders.items():
            for payment in self.payonce.payments[order_id]:
                if payment.amount != order.total:
                    yield Violation("I8", order_id, f"{payment.id} amount {payment.amount}")
        if self.order_service.forged:
            yield Violation("I8", None, f"{self.order_service.forged} unsigned order webhooks")

    def _durable_acks(self) -> Iterator[Violation]:
        for visit in self.visits:
            if visit.order_id is None:
                continue
            if visit.order_id not in self.payonce.orders:
                yield Violation("I9", visit.order_id, "an acknowledged order is missing")
                continue
            order = self.payonce.orders[visit.order_id]
            known: dict[str, Payment] = {p.id: p for p in self.payonce.payments[visit.order_id]}
            for payment_id in sorted(visit.acknowledged_payments - known.keys()):
                yield Violation("I9", visit.order_id, f"acknowledged {payment_id} is missing")
            # Nothing a shopper was shown may be newer than what payonce kept.
            for reply in visit.replies:
                shown = reply.body.get("status_version")
                if reply.status >= 300 or not isinstance(shown, int):
                    continue
                kept = known.get(str(reply.body.get("id")))
                held = kept.version if kept is not None else order.version
                if shown > held:
                    yield Violation(
                        "I9", visit.order_id, f"answered version {shown}, payonce keeps {held}"
                    )
        for delivery in self.sandbox.deliveries:
            if not delivery["ok"] or (delivery.get("fault") or "").startswith("forged:"):
                continue
            trade = self.trades.get(delivery["out_trade_no"])
            payment = self.by_trade.get(delivery["out_trade_no"])
            if trade and int(trade["captured"]) and payment and payment.status not in _CAPTURED:
                yield Violation(
                    "I9", payment.order_id, f"{delivery['channel']} notice acked, {payment.status}"
                )
