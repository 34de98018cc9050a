"""Who is calling: the shop backend (API key) or one order's browser (its client_secret)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from payonce.domain.ids import OrderId, order_id_of_secret
from payonce.errors import OrderNotFound, Unauthorized
from payonce.service.context import Deps


@dataclass(frozen=True, slots=True)
class Caller:
    order_id: OrderId | None  # None for the shop backend, which may touch every order

    @property
    def is_backend(self) -> bool:
        return self.order_id is None

    @property
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys."""
        return "backend" if self.order_id is None else f"order:{self.order_id}"

    def ensure_order(self, order_id: OrderId) -> None:
        """One order's secret reveals nothing of another: the answer is "not found"."""
        if self.order_id is not None and self.order_id != order_id:
            raise OrderNotFound()


BACKEND = Caller(order_id=None)


async def authenticate(deps: Deps, token: str | None, api_keys: Sequence[str]) -> Caller:
    if not token:
        raise Unauthorized()
    encoded = token.encode()
    if any(hmac.compare_digest(encoded, key.encode()) for key in api_keys):
        return BACKEND
    order_id = order_id_of_secret(token)
    if order_id is not None:
        async with deps.storage.transaction() as uow:
            order = await uow.orders.get(order_id)
        if order is not None and hmac.compare_digest(encoded, order.client_secret.encode()):
            return Caller(order_id=order_id)
    raise Unauthorized()
