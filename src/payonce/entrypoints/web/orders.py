"""Routes of orders: create (shop backend), read or long-poll, list an order's payments and the
ways it can be paid."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from payonce.domain.ids import OrderId
from payonce.domain.money import InvalidMoney
from payonce.domain.order import Order, OrderLine
from payonce.entrypoints.web.dependencies import CallerDep, DepsDep, IdempotencyKey, run_idempotent
from payonce.entrypoints.web.problems import PROBLEM, render_json
from payonce.entrypoints.web.schemas import (
    CreateOrderIn,
    OrderIdPath,
    OrderOut,
    PaymentListOut,
    PaymentOptionsOut,
    Problem,
    inline_schema,
)
from payonce.errors import Forbidden, InvalidRequest
from payonce.service import orders, read_repair
from payonce.service.views import order_view, payment_view

router = APIRouter(prefix="/api/orders", tags=["orders"])
_PROBLEM_SCHEMA = inline_schema(Problem)


def problem_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    """An OpenAPI response of problem+json refusals; ``retry_after``: they may carry the
    ``Retry-After`` header (a retryable refusal)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before sending the same request again",
                "schema": {"type": "string"},
            }
        }
    return response


# The refusals every API route may answer (the codes are in docs/api.md).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: problem_response("`unauthorized`: no or unknown bearer credential"),
    403: problem_response("`forbidden`: these credentials do not allow this call"),
    404: problem_response("`order_not_found`, `payment_not_found`, `not_found`"),
    409: problem_response("the order or payment cannot do this now (see `code`)", retry_after=True),
    413: problem_response("`body_too_large`"),
    422: problem_response(
        "`invalid_request` (with `errors`), `channel_unsupported`, `idempotency_key_reused`"
    ),
    429: problem_response("`rate_limited`: too many requests", retry_after=True),
    503: problem_response(
        "`storage_unavailable`, `provider_unavailable`: a dependency did not answer",
        retry_after=True,
    ),
}
MAX_WAIT_S = 30
DISCONNECT_CHECK_S = 1.0


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


async def _long_poll(request: Request, waiting: Coroutine[Any, Any, Order]) -> Order | None:
    """What ``waiting`` answers, or None once the client has left: the wait ends at once (a
    server shutting down waits for open requests, and a tab that closed wants nothing)."""
    answer = asyncio.ensure_future(waiting)
    try:
        while not answer.done():
            await asyncio.wait({answer}, timeout=DISCONNECT_CHECK_S)
            if not answer.done() and await request.is_disconnected():
                return None
        return answer.result()
    finally:
        answer.cancel()


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    responses={**PROBLEMS, 204: {"description": "the client left a long poll: nobody reads it"}},
)
async def get_order(
    order_id: OrderIdPath,
    request: Request,
    caller: CallerDep,
    deps: DepsDep,
    after_version: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0,
) -> Response:
    """The order; with ``after_version`` and ``wait`` it answers once status_version exceeds it."""
    caller.ensure_order(OrderId(order_id))
    if not caller.is_backend:  # the shopper's page: the quickest sign of a payment
        await read_repair.repair_order(deps, OrderId(order_id))
    if after_version is not None and wait > 0:
        waited = orders.wait_for_order(
            deps, OrderId(order_id), after_version=after_version, wait_s=wait
        )
        order = await _long_poll(request, waited)
        if order is None:
            return Response(status_code=204)  # nobody is left to read it
    else:
        order = await orders.get_order(deps, OrderId(order_id))
    return Response(
        render_json(order_view(order, include_secret=caller.is_backend)),
        media_type="application/json",
    )


@router.get("/{order_id}/payments", response_model=PaymentListOut, responses=PROBLEMS)
async def list_payments(order_id: OrderIdPath, caller: CallerDep, deps: DepsDep) -> Response:
    """The order's payment records, newest first."""
    caller.ensure_order(OrderId(order_id))
    listed = await orders.list_payments_and_refunds(deps, OrderId(order_id))
    return Response(
        render_json({"payments": [payment_view(p, refund=r) for p, r in listed]}),
        media_type="application/json",
    )


@router.get("/{order_id}/payment-options", response_model=PaymentOptionsOut, responses=PROBLEMS)
async def payment_options(order_id: OrderIdPath, caller: CallerDep, deps: DepsDep) -> Response:
    """The channels that can pay this order (its currency), each with the platforms it serves."""
    caller.ensure_order(OrderId(order_id))
    options = await orders.payment_options(deps, OrderId(order_id))
    listed = [
        {"channel": channel.value, "platforms": [p.value for p in platforms]}
        for channel, platforms in options.items()
    ]
    return Response(render_json({"options": listed}), media_type="application/json")
