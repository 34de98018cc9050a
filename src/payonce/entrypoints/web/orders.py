"""Routes of orders: create (shop backend), read or long-poll, and list an order's payments."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from payonce.domain.ids import OrderId
from payonce.domain.money import InvalidMoney
from payonce.domain.order import OrderLine
from payonce.entrypoints.web.dependencies import CallerDep, DepsDep, IdempotencyKey, run_idempotent
from payonce.entrypoints.web.problems import render_json
from payonce.entrypoints.web.schemas import CreateOrderIn, OrderOut, PaymentListOut, Problem
from payonce.errors import Forbidden, InvalidRequest
from payonce.service import orders, read_repair
from payonce.service.views import order_view, payment_view

router = APIRouter(prefix="/api/orders", tags=["orders"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}}
    for status in (401, 404, 409, 422)
}
MAX_WAIT_S = 30


@router.post("", status_code=201, response_model=OrderOut, responses=PROBLEMS)
async def create_order(
    body: CreateOrderIn,
    request: Request,
    caller: CallerDep,
    deps: DepsDep,
    key: IdempotencyKey = None,
) -> Response:
    """Create an order from checkout lines; the amount is computed here (shop backend only)."""
    if not caller.is_backend:
        raise Forbidden("only the shop backend creates orders")

    async def handler() -> tuple[int, Any]:
        try:
            order = await orders.create_order(
                deps,
                customer_id=body.customer_id,
                currency=body.currency,
                lines=tuple(
                    OrderLine(ln.sku, ln.name, ln.quantity, ln.unit_amount) for ln in body.lines
                ),
                ttl=timedelta(seconds=body.expires_in_s) if body.expires_in_s else None,
            )
        except InvalidMoney as error:
            raise InvalidRequest(str(error)) from error
        return 201, order_view(order, include_secret=True)

    return await run_idempotent(request, caller, key, handler)


@router.get("/{order_id}", response_model=OrderOut, responses=PROBLEMS)
async def get_order(
    order_id: str,
    caller: CallerDep,
    deps: DepsDep,
    after_version: Annotated[int | None, Query(ge=0)] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0,
) -> Response:
    """The order; with ``after_version`` and ``wait`` it answers once status_version exceeds it."""
    caller.ensure_order(OrderId(order_id))
    if not caller.is_backend:  # the shopper's page: the quickest sign of a payment
        await read_repair.repair_order(deps, OrderId(order_id))
    if after_version is not None and wait > 0:
        order = await orders.wait_for_order(
            deps, OrderId(order_id), after_version=after_version, wait_s=wait
        )
    else:
        order = await orders.get_order(deps, OrderId(order_id))
    return Response(
        render_json(order_view(order, include_secret=caller.is_backend)),
        media_type="application/json",
    )


@router.get("/{order_id}/payments", response_model=PaymentListOut, responses=PROBLEMS)
async def list_payments(order_id: str, caller: CallerDep, deps: DepsDep) -> Response:
    """The order's payment records, newest first."""
    caller.ensure_order(OrderId(order_id))
    listed = await orders.list_payments_and_refunds(deps, OrderId(order_id))
    return Response(
        render_json({"payments": [payment_view(p, refund=r) for p, r in listed]}),
        media_type="application/json",
    )
