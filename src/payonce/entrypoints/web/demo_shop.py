"""The demo shop beside the sandbox: a catalog, a cart, and a backend ordering through the API."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from payonce.entrypoints.web.dependencies import container_of
from payonce.errors import Forbidden, InvalidRequest

MAX_QUANTITY = 9
MAX_FORM_BYTES = 4096


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    prices: dict[str, int]  # minor units per currency: the shop's price list, never the browser's
    default_quantity: int = 0


CATALOG = (
    Product("TEA-001", "Longjing green tea, 100 g", {"CNY": 1999, "BRL": 5490}, 2),
    Product("CUP-010", "Celadon tea cup", {"CNY": 2500, "BRL": 6900}, 1),
    Product("WHISK-05", "Bamboo matcha whisk", {"CNY": 3900, "BRL": 9900}),
    Product("POT-200", "Yixing clay teapot", {"CNY": 16800, "BRL": 45900}),
)
# The shop sells in yuan at home and in reais to Brazil (where shoppers pay by Boleto).
CURRENCIES = ("CNY", "BRL")


def _lines(form: dict[str, str], currency: str) -> list[dict[str, Any]]:
    """The order lines of a submitted cart, priced from the catalog."""
    lines = []
    for product in CATALOG:
        raw = str(form.get(f"qty-{product.sku}", "0") or "0")
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_QUANTITY:
            raise InvalidRequest(f"quantity of {product.sku} must be 0 to {MAX_QUANTITY}")
        if int(raw):
            lines.append(
                {
                    "sku": product.sku,
                    "name": product.name,
                    "quantity": int(raw),
                    "unit_amount": product.prices[currency],
                }
            )
    if not lines:
        raise InvalidRequest("the cart is empty")
    return lines


def _digest(order: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()[:16]


async def _form(request: Request) -> dict[str, str]:
    """The cart's small urlencoded form, read without a multipart parser."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:  # refused before more of it is read
            raise InvalidRequest("the cart form is too large")
    try:
        return dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=32))
    except ValueError as error:
        raise InvalidRequest("the cart form has too many fields") from error


def router(templates: Jinja2Templates) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/")
    async def shop(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "catalog": CATALOG,
                "max_quantity": MAX_QUANTITY,
                # One checkout per rendered cart: a double-submitted form makes one order.
                "cart_id": secrets.token_urlsafe(16),
                "demo": container_of(request).settings.sandbox_mounted,
            },
        )

    @routes.post("/demo/orders")
    async def checkout(request: Request) -> Response:
        """The shop's backend: orders through payonce's API with its API key, server side, and
        hands the browser the order's client_secret only."""
        container = container_of(request)
        if not container.settings.sandbox_mounted:
            raise Forbidden("the demo shop runs only beside the sandbox")
        form = await _form(request)
        currency = str(form.get("currency", "CNY"))
        if currency not in CURRENCIES:
            raise InvalidRequest(f"the demo shop sells in {', '.join(CURRENCIES)}")
        cart_id = str(form.get("cart_id", ""))[:64] or secrets.token_urlsafe(16)
        order = {
            "customer_id": "demo-shopper",
            "currency": currency,
            "lines": _lines(form, currency),
        }
        transport = httpx.ASGITransport(app=request.app)
        async with httpx.AsyncClient(transport=transport, base_url=container.public_url) as api:
            answer = await api.post(
                "/api/orders",
                json=order,
                headers={
                    "Authorization": f"Bearer {container.api_keys[0]}",
                    # One order per cart as sent: the same cart twice is one order; changed
                    # (after going back), it is another.
                    "Idempotency-Key": f"demo-cart-{cart_id}-{_digest(order)}",
                },
            )
        if answer.status_code != 201:
            return Response(
                answer.content,
                status_code=answer.status_code,
                media_type=answer.headers.get("content-type"),
            )
        created = answer.json()
        # The secret travels in the fragment: browsers never send it to a server in a URL.
        return RedirectResponse(f"/pay/{created['id']}#{created['client_secret']}", status_code=303)

    return routes
