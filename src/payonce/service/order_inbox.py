"""The order side's inbox: applies each payment event to its order exactly once, by event id."""

from __future__ import annotations

import logging

from payonce.domain.events import Event, Topic
from payonce.domain.order import Order, OrderStatus
from payonce.errors import StaleVersion
from payonce.service import audit
from payonce.service.context import Deps
from payonce.service.recording import cache_order_state, publish

log = logging.getLogger(__name__)


class OrderInbox:
    """The built-in order service, reached in-process. Moves an order to READY_FOR_SHIPMENT.

    It can always fulfil an order, so a closed order that a late capture paid under the
    "reopen" policy (the event says so) is reopened as paid.
    """

    name = "orders"
    topics = frozenset({Topic.PAYMENT_SUCCEEDED})

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle(self, event: Event) -> None:
        if event.topic is not Topic.PAYMENT_SUCCEEDED:
            return
        deps = self._deps
        for _ in range(deps.policy.conflict_retries):
            try:
                changed = await self._apply(event)
            except StaleVersion:
                continue
            if changed is not None:
                await cache_order_state(deps, changed)
                await publish(deps, changed, None)
            return
        raise StaleVersion(f"order {event.order_id} kept changing under the inbox")

    async def _apply(self, event: Event) -> Order | None:
        deps = self._deps
        async with deps.storage.transaction() as uow:
            now = deps.clock.now()
            if not await uow.inbox.record(self.name, event.id, now=now):
                return None  # seen before: applied once already
            order = await uow.orders.get(event.order_id)
            if order is None:
                log.error("payment.succeeded %s for an unknown order %s", event.id, event.order_id)
                return None
            reopens = order.status is OrderStatus.CLOSED and event.payload.get("reopens") is True
            if order.status is not OrderStatus.UNPAID and not reopens:
                log.error(
                    "payment.succeeded %s for order %s in %s: not applied",
                    event.id,
                    order.id,
                    order.status,
                )
                return None
            paid = order.moved_to(
                OrderStatus.READY_FOR_SHIPMENT, now=now, paid_payment_id=event.payment_id
            )
            await uow.orders.update(paid, expected_version=order.version)
            why = f"{event.topic.value} {event.id}: paid by {event.payment_id}"
            await audit.moved(
                uow, order, paid, why=why + (", reopened" if reopens else ""), now=now
            )
            return paid
