"""Routes of payments: apply (open or reuse the order's trade), read, cancel, and the QR as SVG."""

from __future__ import annotations

import io
from typing import Any

import segno
from fastapi import APIRouter, Request
from starlette.responses import Response

from payonce.domain.channels import Channel, Platform
from payonce.domain.ids import OrderId, PaymentId
from payonce.domain.payment import ActionType
from payonce.entrypoints.web.dependencies import CallerDep, DepsDep, IdempotencyKey, run_idempotent
from payonce.entrypoints.web.orders import PROBLEMS, problem_response
from payonce.entrypoints.web.problems import render_json
from payonce.entrypoints.web.schemas import ApplyPaymentIn, OrderIdPath, PaymentIdPath, PaymentOut
from payonce.errors import ChannelUnsupported, PaymentNotFound
from payonce.service import orders, read_repair
from payonce.service.apply import apply_payment
from payonce.service.cancel import cancel_payment
from payonce.service.views import payment_view

router = APIRouter(tags=["payments"])
# What a payment's QR code carries: the code itself, or a wallet launch link that a phone can
# open by scanning when it did not open on this device (the mobile-web fallback).
QR_FIELDS = {ActionType.QR_CODE: "qr_code", ActionType.LAUNCH_URL: "launch_url"}
# Refusals of the calls that reach a provider, besides every route's.
PROVIDER_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    502: problem_response("`provider_rejected`: the provider refused definitively"),
}


@router.post(
    "/api/orders/{order_id}/payments",
    status_code=201,
    response_model=PaymentOut,
    responses={
        **PROVIDER_PROBLEMS,
        200: {"model": PaymentOut, "description": "a live trade was reused"},
        400: problem_response("`idempotency_key_missing`"),
    },
)
async def apply(
    order_id: OrderIdPath,
    body: ApplyPaymentIn,
    request: Request,
    caller: CallerDep,
    deps: DepsDep,
    key: IdempotencyKey = None,
) -> Response:
    """Pay an order with a channel on a platform: 201 opened a new trade, 200 reused the live one.

    ``Idempotency-Key`` is required.
    """
    caller.ensure_order(OrderId(order_id))
    try:
        channel = Channel(body.channel)
    except ValueError:
        raise ChannelUnsupported(f"unknown channel {body.channel!r}") from None
    platform = Platform(body.platform)

    async def handler() -> tuple[int, Any]:
        # Behind a proxy, uvicorn's --proxy-headers makes this the shopper's address.
        shopper_ip = request.client.host if request.client else None
        applied = await apply_payment(
            deps, OrderId(order_id), channel, platform, shopper_ip=shopper_ip
        )
        return (201 if applied.created else 200), applied.payment

    return await run_idempotent(request, caller, key, handler, required=True)


async def _readable_payment(deps: DepsDep, caller: CallerDep, payment_id: str) -> Any:
    payment = await orders.get_payment(deps, PaymentId(payment_id))
    if caller.order_id is not None and caller.order_id != payment.order_id:
        raise PaymentNotFound()
    return payment


@router.get("/api/payments/{payment_id}", response_model=PaymentOut, responses=PROBLEMS)
async def get_payment(payment_id: PaymentIdPath, caller: CallerDep, deps: DepsDep) -> Response:
    payment = await _readable_payment(deps, caller, payment_id)
    if not caller.is_backend:
        payment = await read_repair.repair(deps, payment)
    return Response(render_json(payment_view(payment)), media_type="application/json")


@router.post(
    "/api/payments/{payment_id}/cancel", response_model=PaymentOut, responses=PROVIDER_PROBLEMS
)
async def cancel(
    payment_id: PaymentIdPath,
    request: Request,
    caller: CallerDep,
    deps: DepsDep,
    key: IdempotencyKey = None,
) -> Response:
    """Close the payment's trade at the provider, when its channel can close trades."""
    await _readable_payment(deps, caller, payment_id)

    async def handler() -> tuple[int, Any]:
        return 200, payment_view(await cancel_payment(deps, PaymentId(payment_id)))

    return await run_idempotent(request, caller, key, handler)


@router.get(
    "/api/payments/{payment_id}/qr.svg",
    responses={200: {"content": {"image/svg+xml": {}}}, **PROBLEMS},
    response_class=Response,
)
async def qr_svg(payment_id: PaymentIdPath, caller: CallerDep, deps: DepsDep) -> Response:
    """The payment's QR code, rendered here (never by a third-party service)."""
    payment = await _readable_payment(deps, caller, payment_id)
    action = payment.action
    field = QR_FIELDS.get(action.type) if action is not None else None
    if action is None or field is None:
        raise PaymentNotFound("this payment has no QR code")
    buffer = io.BytesIO()
    segno.make(action.fields[field], error="m").save(
        buffer, kind="svg", scale=6, border=2, xmldecl=False, svgns=True, omitsize=True
    )
    return Response(buffer.getvalue(), media_type="image/svg+xml")
