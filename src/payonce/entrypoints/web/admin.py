"""The operators' routes, behind the admin key alone: refund an extra capture now, replay an
outbox event, reconcile a day's statement, and the metrics."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from payonce.domain.channels import Channel
from payonce.domain.ids import EventId, PaymentId
from payonce.domain.payment import PaymentStatus
from payonce.domain.refund import RefundReason
from payonce.entrypoints.web.dependencies import (
    AdminDep,
    DepsDep,
    IdempotencyKey,
    container_of,
    run_idempotent,
)
from payonce.entrypoints.web.orders import PROBLEMS, problem_response
from payonce.entrypoints.web.problems import render_json
from payonce.entrypoints.web.schemas import PaymentOut
from payonce.errors import EventNotFound, InvalidRequest, PaymentNotRefundable
from payonce.service import orders, outbox
from payonce.service.reconcile import reconcile
from payonce.service.refunds import refund_extra_capture
from payonce.service.views import payment_view

router = APIRouter(prefix="/api/admin", tags=["admin"])
operations = APIRouter(tags=["operations"])
ADMIN_PROBLEMS: dict[int | str, dict[str, Any]] = PROBLEMS
STATEMENTS_KEPT = timedelta(days=400)
REFUNDABLE = (PaymentStatus.PAID, PaymentStatus.REFUNDING, PaymentStatus.REFUNDED)
ResourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Why the extra capture is refunded, when payonce has not decided it already.
    reason: Literal["duplicate", "late"] = "duplicate"


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # One consumer only (its name, as `payonce outbox show` lists them); all when absent.
    consumer: str | None = Field(default=None, min_length=1, max_length=64)


class ReplayOut(BaseModel):
    event_id: str
    consumer: str | None
    replayed: bool


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    date: date
    repair: bool = True


@router.post("/payments/{payment_id}/refund", response_model=PaymentOut, responses=ADMIN_PROBLEMS)
async def refund_now(
    payment_id: ResourceId,
    body: RefundIn,
    request: Request,
    caller: AdminDep,
    deps: DepsDep,
    key: IdempotencyKey = None,
) -> Response:
    """Refund an extra capture now (it is refunded by itself too; this does not wait for the
    relay's next try). The payment that paid its order is refused."""
    payment = await orders.get_payment(deps, PaymentId(payment_id))
    if payment.applied or payment.status not in REFUNDABLE:
        raise PaymentNotRefundable(f"payment {payment.id} is {payment.status}")

    async def handler() -> tuple[int, Any]:
        refunded = await refund_extra_capture(deps, payment.id, RefundReason(body.reason))
        if refunded.status is not PaymentStatus.REFUNDED:
            # It stopped being an extra capture meanwhile (it paid its order): nothing moved.
            raise PaymentNotRefundable(f"payment {refunded.id} is {refunded.status}")
        return 200, payment_view(refunded)

    return await run_idempotent(request, caller, key, handler)


@router.post("/outbox/{event_id}/replay", response_model=ReplayOut, responses=ADMIN_PROBLEMS)
async def replay_event(
    event_id: ResourceId, body: ReplayIn, request: Request, caller: AdminDep, deps: DepsDep
) -> Response:
    """Make an event due again, for every consumer or one (each applies an event id once)."""
    names = {consumer.name for consumer in deps.consumers}
    if body.consumer is not None and body.consumer not in names:
        raise InvalidRequest(f"no consumer {body.consumer!r}; consumers: {sorted(names)}")
    replayed = await outbox.replay(
        deps.storage, EventId(event_id), now=deps.clock.now(), consumer=body.consumer
    )
    if not replayed:
        raise EventNotFound(f"no outbox event {event_id}")
    answer = {"event_id": event_id, "consumer": body.consumer, "replayed": True}
    return Response(render_json(answer), media_type="application/json")


@router.post(
    "/reconcile",
    responses={
        **ADMIN_PROBLEMS,
        502: problem_response("`provider_rejected`: the provider refused to give the statement"),
    },
)
async def reconcile_day(body: ReconcileIn, caller: AdminDep, deps: DepsDep) -> Response:
    """Match a channel's statement of a day against payonce's records, repairing what is safe
    (a missed capture applied or refunded); the breaks left need a person."""
    today = deps.clock.now().date()
    if not today - STATEMENTS_KEPT <= body.date <= today:
        # Providers bill days that ended, and keep their bills for a while (about a year).
        raise InvalidRequest(f"a statement day from {today - STATEMENTS_KEPT} to {today}")
    result = await reconcile(deps, body.channel, body.date, repair=body.repair)
    return Response(render_json(result.as_json()), media_type="application/json")


@operations.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **ADMIN_PROBLEMS},
)
async def metrics(request: Request, caller: AdminDep) -> Response:
    """Prometheus's text format: applies, duplicates prevented, refunds, notification
    rejections, provider latency, lock waits, poll and outbox lag."""
    registry = container_of(request).metrics
    return Response(registry.render(), media_type=registry.content_type)
