"""Opening a trade is decided on what was read, under a lock whose lapse the database notices."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.unlocked import NoLocks
from payonce.adapters.storage.memory import MemoryStorage
from payonce.domain.channels import Channel, Platform
from payonce.domain.order import Order, OrderLine
from payonce.domain.outcomes import TradeOpened
from payonce.domain.payment import Action, ActionType, Payment, PaymentStatus
from payonce.errors import FenceRejected, StaleVersion
from payonce.ports.locks import Lease
from payonce.service.context import Deps, order_lock_key
from payonce.service.recording import insert_intent, record
from payonce.service.trades import _record_created


@pytest.fixture
def deps(clock: AdjustableClock) -> Deps:
    return Deps(
        storage=MemoryStorage(),
        clock=clock,
        locks=NoLocks(),
        cache=InProcessCache(clock),
        feed=InProcessFeed(),
        providers={},
    )


async def _order(deps: Deps) -> Order:
    order = Order.create(
        customer_id="c",
        currency="CNY",
        lines=(OrderLine("S", "Tea", 1, 1000),),
        now=deps.clock.now(),
    )
    async with deps.storage.transaction() as uow:
        await uow.orders.add(order)
    return order


def _intent(order: Order, deps: Deps) -> Payment:
    return Payment.open_intent(
        order_id=order.id,
        channel=Channel.ALIPAY,
        platform=Platform.PC,
        amount=order.total,
        now=deps.clock.now(),
    )


async def test_an_intent_based_on_a_stale_read_is_refused(deps: Deps) -> None:
    seen = await _order(deps)
    async with deps.storage.transaction() as uow:  # e.g. a capture applied meanwhile
        await uow.orders.update(seen.touched(deps.clock.now()), expected_version=seen.version)
    with pytest.raises(StaleVersion):
        await insert_intent(deps, _intent(seen, deps), Lease("order", 10), seen=seen)
    async with deps.storage.transaction() as uow:
        assert await uow.payments.for_order(seen.id) == []


async def test_an_intent_from_an_expired_lock_is_refused(deps: Deps) -> None:
    seen = await _order(deps)
    newer = await insert_intent(deps, _intent(seen, deps), Lease("order", 20), seen=seen)
    async with deps.storage.transaction() as uow:
        current = await uow.orders.get(seen.id)
        await uow.payments.update(
            newer.moved_to(newer.status.CLOSED, now=deps.clock.now()), expected_version=1
        )
    assert current is not None
    with pytest.raises(FenceRejected):  # the holder of token 10 read `current` and lost its lock
        await insert_intent(deps, _intent(seen, deps), Lease("order", 10), seen=current)


async def test_an_intent_on_a_fresh_read_is_numbered_and_bumps_the_order(deps: Deps) -> None:
    seen = await _order(deps)
    stored = await insert_intent(deps, _intent(seen, deps), Lease("order", 1), seen=seen)
    assert stored.number == 1
    async with deps.storage.transaction() as uow:
        order = await uow.orders.get(seen.id)
    assert order is not None
    assert order.version == seen.version + 1


async def _lapsed_holder_with_an_answer(deps: Deps) -> tuple[Payment, TradeOpened]:
    """The holder of token 10 wrote its intent; then the next holder (token 20) wrote; then
    the provider's answer to the first holder's create arrives."""
    seen = await _order(deps)
    intent = await insert_intent(deps, _intent(seen, deps), Lease("order", 10), seen=seen)
    async with deps.storage.transaction() as uow:
        await uow.fences.check(order_lock_key(seen.id), 20)
    late = deps.clock.now() + timedelta(hours=2)
    opened = TradeOpened(Action(ActionType.QR_CODE, {"qr_code": "https://qr/late"}, late), "T-1")
    return intent, opened


async def test_a_fact_learnt_under_a_lapsed_lock_is_refused_and_changes_nothing(
    deps: Deps,
) -> None:
    intent, opened = await _lapsed_holder_with_an_answer(deps)
    with pytest.raises(FenceRejected):  # the holder of token 10 comes back with its answer
        await record(deps, intent.id, opened, lease=Lease("order", 10))
    async with deps.storage.transaction() as uow:
        assert await uow.payments.get(intent.id) == intent
    # The current holder records the same fact.
    assert (await record(deps, intent.id, opened, lease=Lease("order", 20))).action is not None


async def test_a_create_s_answer_refused_by_the_fence_is_still_kept_by_compare_and_set(
    deps: Deps,
) -> None:
    intent, opened = await _lapsed_holder_with_an_answer(deps)
    with pytest.raises(FenceRejected):  # the caller still learns that its lock lapsed
        await _record_created(deps, intent.id, opened, Lease("order", 10))
    async with deps.storage.transaction() as uow:
        kept = await uow.payments.get(intent.id)
    # No query can return the QR: it is kept, so the trade can be reused or closed knowingly.
    assert kept is not None
    assert kept.status is PaymentStatus.PAYING
    assert kept.action == opened.action
