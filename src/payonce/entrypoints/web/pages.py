"""The checkout pages: a demo shop's order button (development) and the pay page shoppers use."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from payonce.domain.order import OrderLine
from payonce.entrypoints.web.dependencies import container_of
from payonce.errors import Forbidden
from payonce.service import orders

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
router = APIRouter(include_in_schema=False)

DEMO_CART = (
    OrderLine("TEA-001", "Longjing green tea, 100 g", 2, 1999),
    OrderLine("CUP-010", "Celadon tea cup", 1, 2500),
)


@router.get("/")
async def index(request: Request) -> Response:
    container = container_of(request)
    return TEMPLATES.TemplateResponse(
        request,
        "index.html",
        {
            "cart": DEMO_CART,
            "total": sum(line.line_amount for line in DEMO_CART),
            "demo": container.settings.sandbox_mounted,
        },
    )


@router.post("/demo/orders")
async def create_demo_order(request: Request) -> Response:
    """The demo shop's backend: creates the order server side, hands the browser its secret only."""
    container = container_of(request)
    if not container.settings.sandbox_mounted:
        raise Forbidden("the demo shop runs only beside the sandbox")
    order = await orders.create_order(
        container.deps, customer_id="demo-shopper", currency="CNY", lines=DEMO_CART
    )
    # The secret travels in the fragment: browsers never send it to a server in a URL.
    return RedirectResponse(f"/pay/{order.id}#{order.client_secret}", status_code=303)


@router.get("/pay/{order_id}")
async def pay_page(request: Request, order_id: str) -> Response:
    container = container_of(request)
    return TEMPLATES.TemplateResponse(
        request,
        "pay.html",
        {"order_id": order_id, "sandbox": container.settings.sandbox_mounted},
    )
