"""The PayPal channel: its REST routes, the buyer's approval page, and its wallet side."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from payonce.sandbox.channel import SandboxChannel, SandboxContext, TradeListing
from payonce.sandbox.paypal_api import Answer, PaypalApi
from payonce.sandbox.paypal_book import BookListener, PaypalBook
from payonce.sandbox.paypal_credentials import PaypalCredentials
from payonce.sandbox.paypal_notices import PaypalNotices, cert_name
from payonce.sandbox.paypal_records import APPROVABLE, BUYER_PAYER_ID, CHANNEL, Order, OrderStatus
from payonce.sandbox.paypal_wire import CHECKOUT_PATH, approve_link, order_json, value_of
from payonce.sandbox.problems import Problem
from payonce.sandbox.signing import load_private_key
from payonce.sandbox.wallet import Wallet, WalletView

# PayPal's reports (and so this statement) follow the account's time zone; the sandbox's
# merchant account is on PayPal's home time, Pacific.
PAYPAL_TZ = ZoneInfo("America/Los_Angeles")


def _with_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class PaypalChannel:
    """Answers the merchant's REST calls and the buyer's approval for PayPal."""

    name = CHANNEL
    statement_zone = PAYPAL_TZ

    def __init__(
        self,
        context: SandboxContext,
        *,
        credentials: PaypalCredentials,
        api: PaypalApi,
        book: PaypalBook,
    ) -> None:
        self._context = context
        self._credentials = credentials
        self._api = api
        self._book = book
        self._lock = context.lock
        self._public_url = context.public_url.rstrip("/")
        self._pages = Environment(
            loader=PackageLoader("payonce.sandbox", "templates"),
            autoescape=select_autoescape(default=True),
        )

    def approve_url(self, order: Order) -> str:
        return approve_link(self._public_url, order.id)

    # -- the REST API ----------------------------------------------------------------------

    def router(self, wallet: Wallet) -> APIRouter:
        router = APIRouter(prefix="/paypal", tags=["paypal"])
        api = self._api

        async def answer(result: Answer) -> JSONResponse:
            if result.hold:
                await self._context.hold()  # the work is done; the merchant times out
            return JSONResponse(result.body, status_code=result.status)

        @router.post("/v1/oauth2/token")
        async def token(request: Request) -> JSONResponse:
            status, body = api.token(request.headers, await request.body())
            return JSONResponse(body, status_code=status)

        @router.post("/v2/checkout/orders")
        async def create_order(request: Request) -> JSONResponse:
            return await answer(await api.create_order(request.headers, await request.body()))

        @router.get("/v2/checkout/orders/{order_id}")
        async def get_order(request: Request, order_id: str) -> JSONResponse:
            return await answer(await api.get_order(request.headers, order_id))

        @router.post("/v2/checkout/orders/{order_id}/capture")
        async def capture(request: Request, order_id: str) -> JSONResponse:
            body = await request.body()
            return await answer(await api.capture_order(request.headers, order_id, body))

        @router.post("/v2/payments/captures/{capture_id}/refund")
        async def refund(request: Request, capture_id: str) -> JSONResponse:
            body = await request.body()
            return await answer(await api.refund_capture(request.headers, capture_id, body))

        @router.get("/v2/payments/captures/{capture_id}")
        async def get_capture(request: Request, capture_id: str) -> JSONResponse:
            return await answer(await api.get_capture(request.headers, capture_id))

        @router.get("/v2/payments/refunds/{refund_id}")
        async def get_refund(request: Request, refund_id: str) -> JSONResponse:
            return await answer(await api.get_refund(request.headers, refund_id))

        @router.get("/v1/reporting/transactions")
        async def transactions(request: Request) -> JSONResponse:
            return await answer(await api.transactions(request.headers, request.query_params))

        @router.get("/v1/notifications/webhooks/{webhook_id}")
        async def get_webhook(request: Request, webhook_id: str) -> JSONResponse:
            return await answer(await api.webhook(request.headers, webhook_id, None))

        @router.patch("/v1/notifications/webhooks/{webhook_id}")
        async def patch_webhook(request: Request, webhook_id: str) -> JSONResponse:
            body = await request.body()
            return await answer(await api.webhook(request.headers, webhook_id, body))

        @router.get("/v1/notifications/certs/{name}")
        async def certificate(name: str) -> Response:
            """The certificate that verifies webhook signatures (PAYPAL-CERT-URL)."""
            if name != cert_name(self._credentials.webhook_cert_pem):
                raise Problem(404, "not_found", "No such certificate")
            return PlainTextResponse(
                self._credentials.webhook_cert_pem, media_type="application/x-pem-file"
            )

        self._approval_routes(router, wallet)
        return router

    # -- the buyer's approval page ---------------------------------------------------------

    def _approval_routes(self, router: APIRouter, wallet: Wallet) -> None:
        @router.get("/checkoutnow", response_class=HTMLResponse)
        async def checkout(request: Request, token: str = "") -> Response:
            """The approve link: the order, and Approve / Cancel buttons that POST."""
            try:
                async with self._lock:
                    order = self._order_for_token(token)
                    html = self._page(request, order)
            except Problem as problem:
                return wallet.error_page(request, problem)
            return HTMLResponse(html)

        @router.post("/checkoutnow/{decision}", response_model=None)
        async def decide(request: Request, decision: str) -> Response:
            """Approve (or cancel), then send the browser back to the merchant."""
            form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
            try:
                if decision not in ("approve", "cancel"):
                    raise Problem(404, "not_found", "Not found")
                async with self._lock:
                    order = self._order_for_token(form.get("token", ""))
                    if decision == "approve":
                        self._book.approve(order)
                        target = order.terms.return_url
                        params = {"token": order.id, "PayerID": BUYER_PAYER_ID}
                    else:
                        target, params = order.terms.cancel_url, {"token": order.id}
                    html = self._page(request, order)
            except Problem as problem:
                return wallet.error_page(request, problem)
            if target is None:
                return HTMLResponse(html)
            return RedirectResponse(_with_query(target, params), status_code=303)

    def _page(self, request: Request, order: Order) -> str:
        root = request.scope.get("root_path", "")
        terms = order.terms
        return self._pages.get_template("paypal_checkout.html").render(
            order=order,
            amount=value_of(terms.amount, terms.currency),
            approvable=order.status in APPROVABLE,
            approve_action=f"{root}{CHECKOUT_PATH}/approve",
            cancel_action=f"{root}{CHECKOUT_PATH}/cancel",
        )

    def _order_for_token(self, token: str) -> Order:
        order = self._book.by_id(token) if token else None
        if order is None:
            raise Problem(404, "code_unknown", "Unknown order", "no such PayPal order")
        return order

    # -- the wallet side -------------------------------------------------------------------

    def recognises(self, code: str) -> bool:
        parts = urlsplit(code)
        return parts.path.endswith(CHECKOUT_PATH) and "token" in dict(parse_qsl(parts.query))

    def _order_for_code(self, code: str) -> Order:
        return self._order_for_token(dict(parse_qsl(urlsplit(code).query)).get("token", ""))

    async def view(self, code: str) -> WalletView:
        async with self._lock:
            return self._view(self._order_for_code(code))

    async def scan(self, code: str) -> WalletView:
        """The buyer opens the approve link (PayPal's page); the order does not change."""
        async with self._lock:
            return self._view(self._book.open(self._order_for_code(code)))

    async def pay(self, code: str) -> WalletView:
        """The buyer approves; no money moves until the merchant captures."""
        async with self._lock:
            return self._view(self._book.approve(self._order_for_code(code)))

    def _view(self, order: Order) -> WalletView:
        approvable = order.status in APPROVABLE
        note = {
            OrderStatus.APPROVED: "Approved: the merchant captures the payment.",
            OrderStatus.COMPLETED: "Paid.",
            OrderStatus.VOIDED: "This order has expired.",
        }.get(order.status)
        return WalletView(
            channel=CHANNEL,
            code=self.approve_url(order),
            out_trade_no=order.out_trade_no,
            trade_no=order.id,
            subject=order.terms.description,
            amount=order.terms.amount,
            currency=order.terms.currency,
            status=order.status.value,
            pay_deadline=order.expires_at,
            can_scan=approvable,
            can_pay=approvable,
            note=note,
        )

    # -- records ---------------------------------------------------------------------------

    def trades(self, out_trade_no: str | None = None) -> list[TradeListing]:
        return self._book.trades(out_trade_no)

    def tick(self) -> None:
        self._book.expire_due()


def build_paypal(context: SandboxContext, credentials: PaypalCredentials) -> SandboxChannel:
    """The PayPal channel for one merchant's REST app, its webhooks on PayPal's schedule."""
    public_url = context.public_url.rstrip("/")
    api_base = f"{public_url}/paypal"
    epoch = int(context.clock.now().timestamp())

    def approve_url(order: Order) -> str:
        return approve_link(public_url, order.id)

    notices = PaypalNotices(
        credentials=credentials,
        signer=load_private_key(credentials.webhook_private_key_pem),
        notifier=context.notifier,
        api=api_base,
        order_resource=lambda order: order_json(order, api_base, approve_url(order)),
        epoch=epoch,
    )
    book = PaypalBook(
        clock=context.clock,
        ledger=context.ledger,
        listener=BookListener(notices.approved, notices.captured, notices.refunded),
        epoch=epoch,
        late=lambda: context.faults.pay_late_by,
    )
    api = PaypalApi(
        context,
        apps={credentials.client_id: credentials},
        book=book,
        subscription=notices.subscription,
        api=api_base,
        approve_url=approve_url,
    )
    return PaypalChannel(context, credentials=credentials, api=api, book=book)
