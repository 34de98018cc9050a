"""The pages a person opens on the sandbox: the shopper's phone, and the index linking to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from payonce.sandbox.wallet import CODE_MAX_LENGTH, currency_symbols

PHONE_PATH = "/phone"

# The wallet's pay button says what paying means on each channel.
PAY_LABELS = {"alipay": "Pay", "wechat": "Pay", "paypal": "Approve", "boleto": "Pay at bank"}

_INDEX = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>payonce provider sandbox</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto;
           padding: 0 1rem; color: #1a1a1a; }
    a:focus-visible { outline: 3px solid #0a58ca; outline-offset: 2px; }
  </style>
</head>
<body>
  <h1>payonce provider sandbox</h1>
  <p>A payment provider simulator for tests and demos. Never in production.</p>
  <p><a id="phone-link" href="{{ root }}/phone">The shopper's phone</a>: paste a QR code,
     launch URL, app order string, approve link or boleto line, pay it and watch the
     notifications the provider sends.</p>
  <h2>Channels</h2>
  <ul>{% for name in channels %}<li>{{ name }}</li>{% endfor %}</ul>
</body>
</html>
"""


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page rather than a client asking for JSON."""
    return "text/html" in request.headers.get("accept", "")


class Phone:
    """Renders the phone page; everything it does, it does through the wallet's endpoints."""

    def __init__(self) -> None:
        self._templates = Environment(
            loader=PackageLoader("payonce.sandbox", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )

    def page(self, request: Request, code: str) -> HTMLResponse:
        html = self._templates.get_template("phone.html").render(
            root=request.scope.get("root_path", ""),
            code=code,
            autoload=bool(code.strip()),
            pay_labels=PAY_LABELS,
            symbols=currency_symbols(),
        )
        return HTMLResponse(html)

    def index(self, request: Request, channels: Sequence[str]) -> HTMLResponse:
        """The sandbox's index for a browser: what it is, and the way to the phone."""
        html = self._templates.from_string(_INDEX).render(
            root=request.scope.get("root_path", ""), channels=list(channels)
        )
        return HTMLResponse(html)

    def router(self) -> APIRouter:
        router = APIRouter(tags=["wallet"])

        @router.get(PHONE_PATH, response_class=HTMLResponse)
        async def phone(
            request: Request,
            code: Annotated[str, Query(max_length=CODE_MAX_LENGTH)] = "",
        ) -> HTMLResponse:
            """The shopper's phone: look up, scan and pay a code; watch the notifications."""
            return self.page(request, code)

        return router
