"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from payonce.entrypoints.web.dependencies import DepsDep
from payonce.entrypoints.web.problems import render_json

router = APIRouter(tags=["operations"])


@router.get("/livez")
async def livez() -> Response:
    """The process is up."""
    return Response(render_json({"status": "ok"}), media_type="application/json")


@router.get("/readyz")
async def readyz(deps: DepsDep) -> Response:
    """Storage answers (StorageUnavailable becomes a 503 problem otherwise)."""
    await deps.storage.ping()
    return Response(render_json({"status": "ok", "storage": "ok"}), media_type="application/json")
