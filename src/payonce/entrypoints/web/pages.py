"""The checkout pages: the demo shop (development) and the pay page shoppers use."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from payonce.entrypoints.web import demo_shop
from payonce.entrypoints.web.dependencies import container_of

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
router = APIRouter(include_in_schema=False)
router.include_router(demo_shop.router(TEMPLATES))


@router.get("/pay/{order_id}")
async def pay_page(request: Request, order_id: str) -> Response:
    """The pay page: everything it shows it reads with the order's client_secret, in the page."""
    container = container_of(request)
    return TEMPLATES.TemplateResponse(
        request,
        "pay.html",
        {"order_id": order_id, "sandbox": container.settings.sandbox_mounted},
    )
