"""Issue 7: a Hypothesis state machine drives payonce's order/payment service through random
sequences of shopper, provider and worker actions, and checks the promises of DESIGN.md §2
after every step and once more after everything has settled.

Hypothesis is synchronous and payonce is not. The test is a plain function; it owns one event
loop (an ``asyncio.Runner``) and runs each rule's coroutine to completion on it. The loopback
server that payonce and its mounted sandbox answer on is a task on that same loop, so it
serves only while a rule awaits it, and nothing runs between steps: no thread, no background
loop (``run_background=False``). The workers' passes (relay, polls and sweeper, expiry) run
when a rule calls them, as the other integration tests call them. Each example gets a fresh
payonce on MemoryStorage (tests/integration/stateful_world.py).

What holds when:
- after every step: at most one applied payment per order, and it is the order's
  paid_payment_id (READY_FOR_SHIPMENT exactly when there is one); that payment is PAID and
  captured once in the sandbox's ledger, never refunded; statuses move only along the
  transition tables, status_version never decreases, a paid or closed order stays so; each
  trade has at most one capture and at most one refund, of the order's amount, and a record
  PAID (REFUNDED) is captured (and refunded) in the ledger; at most one closable trade of an
  order can still take money at its provider (I7), and none of a closed order's can; each
  notification payonce acknowledged shows in its payment.
- right after the relay ran (until a rule could teach payonce of a capture): every extra
  capture payonce knows of is refunded, so the captures it knows of net exactly the order's
  amount if paid, else 0. The ledger may hold more: captures payonce has not heard of yet
  (an undelivered notification, a close that lost its race).
- after the final settle (two weeks of deliveries and worker passes): every capture in the
  ledger paid its order or was refunded exactly once, each order nets its amount if paid
  else 0 (I1, I2), no trade is open or refunding, and every notification sent was
  acknowledged.
"""

from __future__ import annotations

import itertools
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from payonce.domain.order import ORDER_TRANSITIONS, Order, OrderStatus
from payonce.domain.payment import LIVE_STATUSES, PAYMENT_TRANSITIONS, Payment, PaymentStatus
from payonce.ports.provider import TradeState
from tests.integration.stateful_world import (
    CHANNELS,
    CODE_FIELD,
    KeyUse,
    OrderRef,
    OrderView,
    PaymentRef,
    Stage,
    World,
    new_key,
    reachable,
)

# About 40 s on an idle 2-core machine; derandomized, so every run tries the same sequences.
SETTINGS = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
P = PaymentStatus
CURRENCIES = st.sampled_from(sorted(CHANNELS))
CAPTURED = frozenset({P.PAID, P.REFUNDING, P.REFUNDED})
# The statuses a payment may be in once payonce acknowledged a notification of each state.
REFLECTED = {
    TradeState.PAID: CAPTURED,
    TradeState.APPROVED: frozenset(P) - LIVE_STATUSES,  # captured, or closed: not wanted
    TradeState.CLOSED: frozenset(P) - LIVE_STATUSES,
    TradeState.REFUNDED: frozenset({P.REFUNDED}),
}


ORDER_REACH = reachable(ORDER_TRANSITIONS)
PAYMENT_REACH = reachable(PAYMENT_TRANSITIONS)


PICKS = st.lists(st.integers(0, 2), min_size=1, max_size=2)  # channels, by the currency's list


class PaymentsMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self, stage: Stage) -> None:
        super().__init__()
        self.world = World(stage)
        self.known: dict[str, OrderRef] = {}
        self.payments: dict[str, list[PaymentRef]] = {}  # by order, oldest first
        self.seen_orders: dict[str, Order] = {}  # as the last step read them
        self.seen_payments: dict[str, Payment] = {}
        self.relayed = False

    def _views(self) -> dict[str, OrderView]:
        return self.world.run(self.world.view(list(self.known)))

    def _may_learn(self) -> None:
        """This step may teach payonce of a capture: the relay has not run since."""
        self.relayed = False

    def _payment(self, order: OrderRef, nth: int) -> PaymentRef | None:
        opened = self.payments.get(order.id, [])
        return opened[nth % len(opened)] if opened else None

    # -- the shop and the shopper ---------------------------------------------------------

    @initialize(
        target=orders,
        currency=CURRENCIES,
        quantity=st.integers(1, 3),
        picks=PICKS,
        lose=st.booleans(),
    )
    def first_order(self, currency: str, quantity: int, picks: list[int], lose: bool) -> OrderRef:
        """The first order, and the shopper's first choice of channel (or two, one after the
        other). With ``lose``, an Alipay close does not hold against a payment under way."""
        self.world.lose_close_races(lose)
        order = self._new_order(currency, quantity)
        self.apply(order, picks)
        return order

    @precondition(
        lambda self: (
            len(self.known) < 6
            and all(o.status is not OrderStatus.UNPAID for o in self.seen_orders.values())
        )
    )
    @rule(target=orders, currency=CURRENCIES, quantity=st.integers(1, 3))
    def create_order(self, currency: str, quantity: int) -> OrderRef:
        return self._new_order(currency, quantity)

    def _new_order(self, currency: str, quantity: int) -> OrderRef:
        order = self.world.run(self.world.create_order(currency, quantity))
        self.known[order.id] = order
        return order

    @rule(order=orders, picks=PICKS)
    def apply(self, order: OrderRef, picks: list[int]) -> None:
        """Pay with a channel the order's currency takes, on PC, with a fresh key (or with
        one, then at once another: the shopper changed their mind)."""
        for pick in picks:
            channel = CHANNELS[order.currency][pick % len(CHANNELS[order.currency])]
            self._apply(order, channel, new_key(), None)

    @rule(order=orders, pick=st.integers(0, 2), nth=st.integers(0, 7))
    def apply_again(self, order: OrderRef, pick: int, nth: int) -> None:
        """A key used before, with the same channel (a retry) or another one (I5)."""
        if not order.keys:
            return
        channel = CHANNELS[order.currency][pick % len(CHANNELS[order.currency])]
        key = list(order.keys)[nth % len(order.keys)]
        earlier: KeyUse | None = order.keys[key]
        kept = self.world.deps.policy.idempotency_retention
        if earlier and (not earlier.stored or self.world.now() >= earlier.at + kept):
            earlier = None  # given back, or forgotten: the key is as good as new
        self._apply(order, channel, key, earlier)

    def _apply(self, order: OrderRef, channel: str, key: str, earlier: KeyUse | None) -> None:
        self._may_learn()
        now = self.world.now()
        response = self.world.run(self.world.apply(order, channel, key))
        if earlier is not None and earlier.channel != channel:
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "idempotency_key_reused"
        elif earlier is not None:  # the stored answer, byte for byte: no second trade
            assert response.headers.get("Idempotent-Replayed") == "true"
            assert (response.status_code, response.content) == (earlier.status, earlier.content)
        else:
            order.keys[key] = KeyUse(channel, response.status_code, response.content, now)
            self._answered(order, channel, response)

    def _answered(self, order: OrderRef, channel: str, response: httpx.Response) -> None:
        body = response.json()
        opened = self.payments.setdefault(order.id, [])
        if response.status_code in (200, 201):
            got = (body["channel"], body["amount"], body["status"])
            assert got == (channel, order.amount, "PAYING"), body
            known = body["id"] in {p.id for p in opened}
            assert known == (response.status_code == 200), body  # 200: the live trade, reused
            if not known:
                code = body["action"][CODE_FIELD[channel]]
                opened.append(PaymentRef(body["id"], order, channel, code))
            return
        view = self._views()[order.id]
        undecided = {t.payment.status for t in view.trades} & {P.CLOSING, P.UNKNOWN}
        why = {  # each refusal, and what must be true for it to be right
            "order_already_paid": view.order.status is OrderStatus.READY_FOR_SHIPMENT,
            "order_closed": view.order.status is OrderStatus.CLOSED,
            "order_expired": view.order.is_expired(self.world.now()),
            "payment_outcome_unknown": bool(undecided),  # an older trade would not close yet
        }
        assert why.get(body.get("code"), False), (response.status_code, body)

    @rule(order=orders, nth=st.integers(0, 3))
    def scan(self, order: OrderRef, nth: int) -> None:
        """The shopper opens a trade in the wallet (PayPal: the approval page)."""
        self._wallet("scan", self._payment(order, nth))

    @rule(order=orders, nth=st.integers(0, 3))
    def pay(self, order: OrderRef, nth: int) -> None:
        """The shopper pays in the wallet (PayPal: approves; a boleto: at the bank)."""
        self._wallet("pay", self._payment(order, nth))

    @rule(order=orders)
    def pay_every_code(self, order: OrderRef) -> None:
        """The shopper pays with every code the order showed them, one wallet after another
        (a payment under way when its trade was closed, a voucher still valid, ...)."""
        for payment in self.payments.get(order.id, []):
            self._wallet("pay", payment)

    def _wallet(self, action: str, payment: PaymentRef | None) -> None:
        if payment is not None:
            response = self.world.run(self.world.wallet(action, payment.code))
            assert response.status_code == 200 or 400 <= response.status_code < 500, response.text

    @rule(order=orders, nth=st.integers(0, 3))
    def cancel(self, order: OrderRef, nth: int) -> None:
        """The shopper cancels a payment: its trade is closed at the provider, if it can be."""
        payment = self._payment(order, nth)
        if payment is None:
            return
        self._may_learn()
        path = f"/api/payments/{payment.id}/cancel"
        response = self.world.run(self.world.shopper("POST", path, order))
        [trade] = [t for t in self._views()[order.id].trades if t.payment.id == payment.id]
        if response.status_code == 200:
            assert response.json()["status"] in ("CLOSED", "REFUNDED"), response.text
            assert not trade.open_at_provider
            return
        assert response.status_code == 409, response.text
        if response.json()["code"] == "payment_not_cancellable":
            assert not trade.payment.is_live or not trade.payment.closable, trade.payment
        else:
            assert response.json()["code"] == "payment_outcome_unknown", response.text

    @rule(order=orders, nth=st.integers(0, 3))
    def read_repair(self, order: OrderRef, nth: int) -> None:
        """The shopper's page reads its order and a payment (payonce may ask the provider
        first); what the shopper is shown never goes back (I4)."""
        self._may_learn()
        payment = self._payment(order, nth)
        reads: list[tuple[str, Order | Payment | None]] = [
            (f"/api/orders/{order.id}", self.seen_orders.get(order.id))
        ]
        if payment is not None:
            reads.append((f"/api/payments/{payment.id}", self.seen_payments.get(payment.id)))
        for path, seen in reads:
            response = self.world.run(self.world.shopper("GET", path, order))
            assert response.status_code == 200, response.text
            assert seen is None or response.json()["status_version"] >= seen.version

    # -- the provider, the workers, time --------------------------------------------------

    @rule()
    def notify(self) -> None:
        """The sandbox delivers the notifications due now: payonce acknowledges each one."""
        self._may_learn()
        fresh = self.world.run(self.world.deliver())
        assert all(d.ok for d in fresh), [(d.status_code, d.answer, d.error) for d in fresh]

    @precondition(lambda self: self.world.acked)
    @rule(nth=st.integers(0, 63))
    def duplicate_notify(self, nth: int) -> None:
        """A delivered notification's exact bytes again: acknowledged once more (or refused
        as stale), it changes nothing and moves no money (I6)."""
        self._may_learn()
        acked = self.world.acked[nth % len(self.world.acked)]
        records, money = self._records(), self.world.sandbox.ledger()
        response = self.world.run(self.world.resend(acked.delivery))
        assert response.status_code < 500, response.text
        assert self._records() == records
        assert self.world.sandbox.ledger() == money

    def _records(self) -> list[Any]:
        views = self._views().values()
        return [(v.order, [t.payment for t in v.trades]) for v in views]

    @rule(wait_s=st.sampled_from([0, 15, 60]))
    def poll(self, wait_s: int) -> None:
        """A little time passes, then the due trade polls and the sweeper run."""
        self._may_learn()
        self.world.clock.advance(timedelta(seconds=wait_s))
        self.world.run(self.world.poll())

    # Mostly the pass alone: an order whose deadline came at once would have little to show.
    @rule(order=orders, when=st.sampled_from(["now"] * 9 + ["at its deadline"]))
    def expire(self, order: OrderRef, when: str) -> None:
        """The expiry pass runs, now or once time has reached the order's deadline."""
        self._may_learn()
        if when == "at its deadline" and order.expires_at > self.world.now():
            self.world.clock.advance(order.expires_at - self.world.now())
        self.world.run(self.world.expire())

    @rule()
    def relay(self) -> None:
        """The outbox relay: the order service hears, extra captures are refunded."""
        self.world.run(self.world.relay())
        self.relayed = True

    @rule(seconds=st.sampled_from([5, 61, 301]))
    def advance_clock(self, seconds: int) -> None:
        self.world.clock.advance(timedelta(seconds=seconds))

    # -- after every step -----------------------------------------------------------------

    @invariant()
    def promises_hold(self) -> None:
        views = list(self._views().values())
        self.one_applied_payment_per_order(views)
        self.a_paid_order_s_payment_is_captured_once(views)
        self.nothing_goes_back(views)
        self.money_matches_the_records(views)
        self.extra_captures_are_refunded_once_relayed(views)
        self.one_open_trade_per_order(views)
        self.acknowledged_notifications_show(views)
        self.every_change_is_audited(views)

    def every_change_is_audited(self, views: list[OrderView]) -> None:
        """Each order, payment and refund has an unbroken chain of audit rows, from its
        creation to the status it has now: no change was made without its row."""
        for view in views:
            current = {view.order.id: view.order.status.value}
            current.update({t.payment.id: t.payment.status.value for t in view.trades})
            current.update(dict(view.refunds))
            chains: dict[str, list[tuple[str | None, str]]] = {}
            for row in view.audit:
                chains.setdefault(row.entity_id, []).append((row.from_status, row.to_status))
            assert set(chains) == set(current), (chains, current)
            for entity, chain in chains.items():
                assert chain[0][0] is None, (entity, chain)
                for (_, reached), (left, _) in itertools.pairwise(chain):
                    assert left == reached, (entity, chain)
                assert chain[-1][1] == current[entity], (entity, chain, current[entity])

    def one_applied_payment_per_order(self, views: list[OrderView]) -> None:
        for view in views:
            applied = view.applied()
            assert len(applied) <= 1, view
            paid_id = applied[0].payment.id if applied else None
            assert view.order.paid_payment_id == paid_id, view
            assert (view.order.status is OrderStatus.READY_FOR_SHIPMENT) == bool(applied), view

    def a_paid_order_s_payment_is_captured_once(self, views: list[OrderView]) -> None:
        for view in views:
            total = view.order.total
            for trade in view.applied():
                assert trade.payment.status is P.PAID, trade
                money = [(m.kind, m.amount, m.currency) for m in trade.movements]
                assert money == [("capture", total.amount, total.currency)], trade

    def nothing_goes_back(self, views: list[OrderView]) -> None:
        for view in views:
            order, before = view.order, self.seen_orders.get(view.order.id)
            if before is not None:
                assert order.status in ORDER_REACH[before.status], (before, order)
                assert order.version >= before.version, (before, order)
                if before.status is not OrderStatus.UNPAID:  # paid or closed: for good
                    assert order.status is before.status, (before, order)
                    assert order.paid_payment_id == before.paid_payment_id, (before, order)
            self.seen_orders[order.id] = order
            for trade in view.trades:
                payment, then = trade.payment, self.seen_payments.get(trade.payment.id)
                if then is not None:
                    assert payment.status in PAYMENT_REACH[then.status], (then, payment)
                    assert payment.version >= then.version, (then, payment)
                    assert payment.applied or not then.applied, (then, payment)
                self.seen_payments[payment.id] = payment

    def money_matches_the_records(self, views: list[OrderView]) -> None:
        ours = set()
        for view in views:
            total = view.order.total
            for trade in view.trades:
                ours.add(trade.payment.out_trade_no)
                captures, refunds = trade.count("capture"), trade.count("refund")
                assert captures <= 1, trade
                assert refunds <= captures, trade
                money = {(m.amount, m.currency) for m in trade.movements}
                assert money <= {(total.amount, total.currency)}, trade
                status = trade.payment.status
                assert status is not P.PAID or trade.net == total.amount, trade
                assert status not in (P.REFUNDING, P.REFUNDED) or captures == 1, trade
                assert status is not P.REFUNDED or refunds == 1, trade
        assert {m.out_trade_no for m in self.world.sandbox.ledger()} <= ours

    def extra_captures_are_refunded_once_relayed(self, views: list[OrderView]) -> None:
        if not self.relayed:
            return
        for view in views:
            known = [t for t in view.trades if t.payment.status in CAPTURED]
            assert all(t.payment.applied for t in known if t.payment.status is P.PAID), view
            assert all(t.payment.status is not P.REFUNDING for t in known), view
            paid = view.order.status is OrderStatus.READY_FOR_SHIPMENT
            assert sum(t.net for t in known) == (view.order.total.amount if paid else 0), view

    def one_open_trade_per_order(self, views: list[OrderView]) -> None:
        for view in views:
            still_open = [t for t in view.trades if t.open_at_provider]
            assert len([t for t in still_open if t.payment.closable]) <= 1, still_open
            assert view.order.status is not OrderStatus.CLOSED or not still_open, still_open

    def acknowledged_notifications_show(self, views: list[OrderView]) -> None:
        payments = {t.payment.out_trade_no: t.payment for v in views for t in v.trades}
        for acked in self.world.acked:
            payment = payments[acked.delivery.out_trade_no]
            expected = REFLECTED.get(acked.state) if acked.state else None
            assert expected is None or payment.status in expected, (acked.state, payment)

    # -- the end: everything settles ------------------------------------------------------

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # after a failed step, that failure is the report
                self.world.run(self.world.settle())
                self.relayed = True
                self.promises_hold()
                self.everything_settled()
        finally:
            self.world.close()

    def everything_settled(self) -> None:
        """I1 and I2 at quiescence: each capture paid its order or was refunded exactly once."""
        for view in self._views().values():
            paid = view.order.status is OrderStatus.READY_FOR_SHIPMENT
            assert paid or view.order.status is OrderStatus.CLOSED, view
            assert sum(t.net for t in view.trades) == (view.order.total.amount if paid else 0)
            for trade in view.trades:
                assert not trade.payment.is_live, trade
                assert trade.payment.status is not P.REFUNDING, trade
                kinds = [m.kind for m in trade.movements]
                expected = [["capture"]] if trade.payment.applied else [[], ["capture", "refund"]]
                assert kinds in expected, trade
        sent = set(self.world.sandbox.notifications())
        acked = {(a.delivery.channel, a.delivery.notify_id) for a in self.world.acked}
        assert sent <= acked, sent - acked


def test_any_sequence_of_payments_keeps_the_promises(tmp_path: Path, sandbox_keys: Path) -> None:
    stage = Stage(tmp_path, sandbox_keys)
    try:
        # Any factory will do (says its docstring), though its annotation asks for a class.
        run_state_machine_as_test(lambda: PaymentsMachine(stage), settings=SETTINGS)  # type: ignore[arg-type]
    finally:
        stage.close()
