"""Who is calling: the shop backend (an API key), one order's browser (its client_secret), or an
operator (an admin key); and what each of them may touch."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from payonce.domain.ids import OrderId, order_id_of_secret
from payonce.errors import Forbidden, OrderNotFound, Unauthorized
from payonce.service.context import Deps


class Role(StrEnum):
    BACKEND = "backend"  # the shop's backend: creates orders, reads and pays any of them
    SHOPPER = "shopper"  # one order's browser: that order's read, pay, cancel and events only
    ADMIN = "admin"  # an operator: refunds, outbox replays, reconciliation, metrics; no orders


@dataclass(frozen=True, slots=True)
class AccessKeys:
    """The keys valid now; several of each during a rotation (the new one and the old)."""

    api: tuple[str, ...]
    admin: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    order_id: OrderId | None  # the shopper's order; None for the backend and operators
    role: Role = Role.BACKEND

    @property
    def is_backend(self) -> bool:
        return self.role is Role.BACKEND

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys."""
        if self.role is Role.SHOPPER:
            return f"order:{self.order_id}"
        return self.role.value

    def ensure_order(self, order_id: OrderId) -> None:
        """One order's secret reveals nothing of another: the answer is "not found"."""
        if self.role is Role.SHOPPER and self.order_id != order_id:
            raise OrderNotFound()


BACKEND = Caller(order_id=None)
ADMIN = Caller(order_id=None, role=Role.ADMIN)


def _one_of(token: bytes, keys: tuple[str, ...]) -> bool:
    # Every key is compared, in constant time each: how many matched tells nothing of which.
    matches = [hmac.compare_digest(token, key.encode()) for key in keys]
    return any(matches)


async def authenticate(deps: Deps, token: str | None, keys: AccessKeys) -> Caller:
    """The caller a bearer token names; ``Unauthorized`` when it names none."""
    if not token:
        raise Unauthorized()
    encoded = token.encode()
    if _one_of(encoded, keys.api):
        return BACKEND
    if _one_of(encoded, keys.admin):
        return ADMIN
    order_id = order_id_of_secret(token)
    if order_id is not None:
        async with deps.storage.transaction() as uow:
            order = await uow.orders.get(order_id)
        if order is not None and hmac.compare_digest(encoded, order.client_secret.encode()):
            return Caller(order_id=order_id, role=Role.SHOPPER)
    raise Unauthorized()


def ensure_not_admin(caller: Caller) -> Caller:
    """Orders and payments are the shop's and its shoppers': an operator's key opens none."""
    if caller.is_admin:
        raise Forbidden("an admin key is for operations; orders take the API key")
    return caller


def ensure_admin(caller: Caller) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this call takes an admin key")
    return caller
