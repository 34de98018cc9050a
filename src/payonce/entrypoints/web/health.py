"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from payonce.entrypoints.web.dependencies import DepsDep, container_of
from payonce.entrypoints.web.orders import problem_response
from payonce.entrypoints.web.problems import render_json
from payonce.entrypoints.web.schemas import HealthOut
from payonce.errors import RedisUnavailable

router = APIRouter(tags=["operations"])


@router.get("/livez", response_model=HealthOut)
async def livez() -> Response:
    """The process is up."""
    return Response(render_json({"status": "ok"}), media_type="application/json")


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={
        503: problem_response("`storage_unavailable`, `redis_unavailable`", retry_after=True)
    },
)
async def readyz(request: Request, deps: DepsDep) -> Response:
    """Storage answers, and Redis when it is configured (a 503 problem otherwise)."""
    await deps.storage.ping()
    answer = {"status": "ok", "storage": "ok"}
    ping = container_of(request).coordination.ping
    if ping is not None:
        try:
            await ping()
        except Exception as error:  # redis-py's own errors, which the web layer does not import
            raise RedisUnavailable(f"{type(error).__name__}: {error}") from error
        answer["redis"] = "ok"
    return Response(render_json(answer), media_type="application/json")
