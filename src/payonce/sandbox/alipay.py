"""The Alipay channel: its open-API gateway (signed calls and replies) and its wallet side."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from payonce.sandbox.alipay_bills import BILL_METHOD, AlipayBills
from payonce.sandbox.alipay_book import AlipayBook
from payonce.sandbox.alipay_notices import AlipayNotices
from payonce.sandbox.alipay_requests import PAGE_METHODS, MerchantApps, biz_content, text
from payonce.sandbox.alipay_trades import (
    BUYER_ID,
    BUYER_LOGON_ID,
    CHANNEL,
    PAID,
    Order,
    OrderSnapshot,
    Trade,
    TradeSnapshot,
    wallet_view,
)
from payonce.sandbox.alipay_wire import (
    CHINA_TZ,
    INVALID_ARGUMENT,
    MISSING_ARGUMENT,
    SYSTEM_ERROR,
    AlipayError,
    Reply,
    china_time,
    envelope,
    parse_params,
    parse_yuan,
    request_params,
    yuan,
)
from payonce.sandbox.call_log import GatewayCall
from payonce.sandbox.channel import SandboxContext
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.faults import FaultKind, Operation
from payonce.sandbox.problems import Problem
from payonce.sandbox.signing import (
    NOTIFICATION_UNSIGNED_KEYS,
    load_private_key,
    sign_rsa2,
    unsigned_string,
)
from payonce.sandbox.wallet import Wallet, WalletView

_QR = re.compile(r"/alipay/qr/([0-9a-f]{24})/?$")
# How the wallet refuses a signed pay string the gateway would refuse (else 422 invalid_code).
_CODE_REFUSALS = {
    "ACQ.CONTEXT_INCONSISTENT": (409, "context_inconsistent"),
    "ACQ.TRADE_HAS_CLOSE": (409, "order_cancelled"),
}
Work = Callable[[], Reply]


def _system_error() -> AlipayError:
    return AlipayError("ACQ.SYSTEM_ERROR", "系统错误 (system busy)", kind=SYSTEM_ERROR)


Handler = Callable[[str, Mapping[str, str], dict[str, Any], AlipayCredentials], Awaitable[Reply]]


class AlipayChannel:
    """Answers the merchant's gateway calls and the shopper's wallet actions for Alipay."""

    name = CHANNEL
    statement_zone = CHINA_TZ

    def __init__(
        self,
        context: SandboxContext,
        *,
        apps: MerchantApps,
        signer: rsa.RSAPrivateKey,
        book: AlipayBook,
        bills: AlipayBills,
    ) -> None:
        self._clock = context.clock
        self._calls = context.calls
        self._apps = apps
        self._signer = signer
        self._book = book
        self._faults = context.faults
        self._lock = context.lock
        self._hold = context.hold
        self._public_url = context.public_url.rstrip("/")
        self._methods: dict[str, Handler] = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.cancel": self._cancel,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            BILL_METHOD: bills.download_url_query,
        }
        self._bills = bills

    def qr_code(self, order: Order) -> str:
        return f"{self._public_url}/alipay/qr/{order.token}"

    # -- the gateway -----------------------------------------------------------------------

    def router(self, wallet: Wallet) -> APIRouter:
        router = APIRouter(tags=["alipay"])

        @router.api_route("/alipay/gateway.do", methods=["GET", "POST"], response_model=None)
        async def gateway(request: Request) -> Response:
            """Alipay's open-API gateway: signed GET query or POST form, signed JSON answer."""
            params = await request_params(request)
            if params.get("method", "") in PAGE_METHODS:
                try:
                    order = await self._register_signed(params)
                except AlipayError as error:
                    return wallet.error_page(
                        request, Problem(400, error.sub_code, error.msg, error.sub_msg)
                    )
                return await wallet.page(request, self.qr_code(order))
            reply = await self.call(params)
            if reply.hold:
                await self._hold()
            text = envelope(reply, self._signer)
            return Response(text, media_type="application/json;charset=utf-8")

        @router.get("/alipay/qr/{token}", response_class=HTMLResponse)
        async def qr(request: Request, token: str) -> HTMLResponse:
            """What a QR code points to: the wallet page for that code."""
            return await wallet.page(request, f"{self._public_url}/alipay/qr/{token}")

        router.include_router(self._bills.router(self._apps.apps))
        return router

    async def call(self, params: Mapping[str, str]) -> Reply:
        """One server-to-server call: its parameters in, its reply (not yet signed) out."""
        reply = await self._answer(params)
        self._log(params, reply)
        return reply

    def _log(self, params: Mapping[str, str], reply: Reply) -> None:
        try:
            biz = biz_content(params)
        except AlipayError:
            biz = {}
        out_trade_no = biz.get("out_trade_no") or reply.fields.get("out_trade_no")
        trade_no = biz.get("trade_no") or reply.fields.get("trade_no")
        sub_code = reply.fields.get("sub_code")
        self._calls.record(
            GatewayCall(
                channel=CHANNEL,
                method=params.get("method", ""),
                app_id=params.get("app_id", ""),
                out_trade_no=str(out_trade_no) if out_trade_no else None,
                trade_no=str(trade_no) if trade_no else None,
                at=self._clock.now(),
                code=str(reply.fields.get("code", "")),
                sub_code=str(sub_code) if sub_code else None,
                held=reply.hold,
            )
        )

    async def _answer(self, params: Mapping[str, str]) -> Reply:
        method = params.get("method", "")
        app_id = params.get("app_id", "")
        # Without a known app there is nobody to sign for (Alipay answers unsigned too).
        if not app_id:
            error = AlipayError("isv.missing-app-id", "缺少AppID参数", kind=MISSING_ARGUMENT)
            return Reply.failure(method, error, signed=False)
        app = self._apps.get(app_id)
        if app is None:
            error = AlipayError("isv.invalid-app-id", "无效的AppID参数", kind=INVALID_ARGUMENT)
            return Reply.failure(method, error, signed=False)
        try:
            self._apps.verify(params)
            if not method:
                raise AlipayError("isv.missing-method", "缺少方法名参数", kind=MISSING_ARGUMENT)
            handler = self._methods.get(method)
            if handler is None:
                raise AlipayError("isv.invalid-method", "不存在的方法名", kind=INVALID_ARGUMENT)
            return await handler(method, params, biz_content(params), app)
        except AlipayError as error:
            return Reply.failure(method, error)

    async def _locked(self, method: str, op: Operation, work: Work) -> Reply:
        """Do the work under the state lock, unless an error fault refuses it first.

        A time-out fault lets the work happen and then holds the answer back: the merchant
        sees a time-out for a call that did take effect.
        """
        async with self._lock:
            fault = self._faults.call_fault(op, CHANNEL)
            if fault == "error":
                return Reply.failure(method, _system_error())
            try:
                reply = work()
            except AlipayError as error:
                reply = Reply.failure(method, error)
        reply.hold = fault == "timeout"
        return reply

    # -- methods ---------------------------------------------------------------------------

    async def _precreate(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        terms = self._apps.terms(app, params, biz, "FACE_TO_FACE_PAYMENT")

        def work() -> Reply:
            order = self._book.register(terms)
            return Reply.success(
                method, out_trade_no=order.out_trade_no, qr_code=self.qr_code(order)
            )

        return await self._locked(method, "create", work)

    async def _query(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        out_trade_no = text(biz, "out_trade_no", required=False)
        trade_no = text(biz, "trade_no", required=False)
        async with self._lock:
            fault = self._faults.call_fault("query", CHANNEL)
            if fault == "error":
                return Reply.failure(method, _system_error())
            try:
                order = self._book.existing_trade(out_trade_no=out_trade_no, trade_no=trade_no)
            except AlipayError as error:
                if out_trade_no:
                    error.extra.setdefault("out_trade_no", out_trade_no)
                reply = Reply.failure(method, error)
            else:
                reply = Reply.success(method, **self._trade_fields(order))
        reply.hold = fault == "timeout"
        return reply

    def _trade_fields(self, order: Order) -> dict[str, Any]:
        trade = order.trade
        assert trade is not None
        fields: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": order.out_trade_no,
            "buyer_logon_id": BUYER_LOGON_ID,
            "trade_status": trade.status.value,
            "total_amount": yuan(order.terms.amount),
            "buyer_pay_amount": yuan(trade.captured),
            "point_amount": "0.00",
            "invoice_amount": yuan(trade.captured),
            "receipt_amount": yuan(trade.captured),
            "buyer_user_id": BUYER_ID,
        }
        if trade.paid_at is not None:
            fields["send_pay_date"] = china_time(trade.paid_at)
            fields["fund_bill_list"] = [
                {"amount": yuan(trade.captured), "fund_channel": "ALIPAYACCOUNT"}
            ]
        return fields

    async def _close(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        out_trade_no = text(biz, "out_trade_no", required=False)
        trade_no = text(biz, "trade_no", required=False)

        def work() -> Reply:
            self._shopper_pays_first("pay_before_close", out_trade_no, trade_no)
            order = self._book.existing_trade(out_trade_no=out_trade_no, trade_no=trade_no)
            trade = self._book.close(order)
            return Reply.success(method, trade_no=trade.trade_no, out_trade_no=order.out_trade_no)

        return await self._locked(method, "close", work)

    async def _cancel(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        out_trade_no = text(biz, "out_trade_no", required=False)
        trade_no = text(biz, "trade_no", required=False)

        def work() -> Reply:
            self._shopper_pays_first("pay_before_cancel", out_trade_no, trade_no)
            order, action = self._book.cancel(out_trade_no=out_trade_no, trade_no=trade_no)
            fields: dict[str, Any] = {"retry_flag": "N", "action": action}
            if order is not None and order.trade is not None:
                fields["trade_no"] = order.trade.trade_no
            fields["out_trade_no"] = order.out_trade_no if order is not None else out_trade_no
            if action == "refund":
                fields["gmt_refund_pay"] = china_time(self._clock.now())
            return Reply.success(method, **fields)

        # Cancelling is closing (or refunding) in one call: it shares the close time-out.
        return await self._locked(method, "close", work)

    def _shopper_pays_first(
        self, fault: FaultKind, out_trade_no: str | None, trade_no: str | None
    ) -> None:
        """The race a merchant cannot prevent: the payment lands just before its close."""
        if not self._faults.strikes(fault, CHANNEL):
            return
        order = self._book.find(out_trade_no=out_trade_no, trade_no=trade_no)
        if order is None:
            return
        with contextlib.suppress(Problem):  # not payable any more: nothing to race
            self._book.pay(order)

    async def _refund(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        out_trade_no = text(biz, "out_trade_no", required=False)
        trade_no = text(biz, "trade_no", required=False)
        try:
            amount = parse_yuan(text(biz, "refund_amount") or "")
        except ValueError as exc:
            raise AlipayError(
                "ACQ.INVALID_PARAMETER", "refund_amount 无效 (invalid amount)"
            ) from exc
        request_no = text(biz, "out_request_no", required=False)

        def work() -> Reply:
            order = self._book.existing_trade(out_trade_no=out_trade_no, trade_no=trade_no)
            refund, moved = self._book.refund(order, request_no or order.out_trade_no, amount)
            trade = order.trade
            assert trade is not None
            return Reply.success(
                method,
                trade_no=trade.trade_no,
                out_trade_no=order.out_trade_no,
                buyer_logon_id=BUYER_LOGON_ID,
                buyer_user_id=BUYER_ID,
                fund_change="Y" if moved else "N",
                refund_fee=yuan(trade.refunded),
                send_back_fee=yuan(refund.amount),
                gmt_refund_pay=china_time(refund.at),
            )

        return await self._locked(method, "refund", work)

    async def _refund_query(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        out_trade_no = text(biz, "out_trade_no", required=False)
        trade_no = text(biz, "trade_no", required=False)
        request_no = text(biz, "out_request_no") or ""
        async with self._lock:
            try:
                order = self._book.existing_trade(out_trade_no=out_trade_no, trade_no=trade_no)
            except AlipayError as error:
                return Reply.failure(method, error)
            trade = order.trade
            assert trade is not None
            fields: dict[str, Any] = {
                "trade_no": trade.trade_no,
                "out_trade_no": order.out_trade_no,
            }
            refund = trade.refunds.get(request_no)
            # Alipay's rule: no refund fields in a success answer means "not refunded".
            if refund is not None:
                fields |= {
                    "out_request_no": refund.out_request_no,
                    "total_amount": yuan(order.terms.amount),
                    "refund_amount": yuan(refund.amount),
                    "refund_status": "REFUND_SUCCESS",
                    "gmt_refund_pay": china_time(refund.at),
                }
            return Reply.success(method, **fields)

    # -- the wallet side -------------------------------------------------------------------

    def recognises(self, code: str) -> bool:
        return bool(_QR.search(code.split("?", 1)[0])) or "method=alipay.trade." in code

    async def view(self, code: str) -> WalletView:
        async with self._lock:
            order = self._order_for_code(code)
            return self._view(order)

    async def scan(self, code: str) -> WalletView:
        async with self._lock:
            order = self._order_for_code(code)
            self._book.scan(order)
            return self._view(order)

    async def pay(self, code: str) -> WalletView:
        async with self._lock:
            order = self._order_for_code(code)
            self._book.pay(order, despite_close=self._faults.strikes("pay_after_close", CHANNEL))
            return self._view(order)

    def _view(self, order: Order) -> WalletView:
        view = wallet_view(order, self.qr_code(order), self._book.provider_now())
        trade = order.trade
        if order.terms.return_url and trade is not None and trade.status in PAID:
            view = replace(view, return_url=self._signed_return(order, trade))
        return view

    def _signed_return(self, order: Order, trade: Trade) -> str:
        """The wap return: the shopper's browser back at the merchant, with signed proof."""
        assert order.terms.return_url is not None
        app = self._apps.get(order.terms.app_id)
        params = {
            "charset": "utf-8",
            "out_trade_no": order.out_trade_no,
            "method": "alipay.trade.wap.pay.return",
            "total_amount": yuan(order.terms.amount),
            "trade_no": trade.trade_no,
            "auth_app_id": order.terms.app_id,
            "version": "1.0",
            "app_id": order.terms.app_id,
            "sign_type": "RSA2",
            "seller_id": app.seller_id if app is not None else "",
            "timestamp": china_time(self._clock.now()),
        }
        message = unsigned_string(params, exclude=NOTIFICATION_UNSIGNED_KEYS)
        params["sign"] = sign_rsa2(self._signer, message)
        separator = "&" if "?" in order.terms.return_url else "?"
        return f"{order.terms.return_url}{separator}{urlencode(params)}"

    def _order_for_code(self, code: str) -> Order:
        self._book.expire_due()
        match = _QR.search(code.split("?", 1)[0])
        if match is not None:
            order = self._book.order_for_token(match.group(1))
            if order is None:
                raise Problem(422, "code_unknown", "Unknown code", "no such Alipay QR code")
            return order
        params = parse_params(code.split("?", 1)[1] if "?" in code else code)
        try:
            return self._register_from(params)
        except AlipayError as error:
            status, problem = _CODE_REFUSALS.get(error.sub_code, (422, "invalid_code"))
            raise Problem(status, problem, error.sub_code, error.sub_msg) from error

    async def _register_signed(self, params: Mapping[str, str]) -> Order:
        async with self._lock:
            return self._register_from(params)

    def _register_from(self, params: Mapping[str, str]) -> Order:
        """The pending order of a signed wap/app/page pay string (verified as the gateway does)."""
        method = params.get("method", "")
        product = PAGE_METHODS.get(method)
        if product is None:
            raise AlipayError("isv.invalid-method", "不存在的方法名", kind=INVALID_ARGUMENT)
        app = self._apps.get(params.get("app_id", ""))
        if app is None:
            raise AlipayError("isv.invalid-app-id", "无效的AppID参数", kind=INVALID_ARGUMENT)
        self._apps.verify(params)
        terms = self._apps.terms(app, params, biz_content(params), product)
        existing = self._book.find(out_trade_no=terms.out_trade_no, trade_no=None)
        # Reopening a known string shows its order as it is now (paid, closed...).
        if existing is not None and existing.terms.amount == terms.amount:
            return existing
        return self._book.register(terms)

    def orders(self) -> list[OrderSnapshot]:
        return self._book.orders(self.qr_code)

    def trades(self, out_trade_no: str | None = None) -> list[TradeSnapshot]:
        return self._book.trades(out_trade_no)

    def tick(self) -> None:
        self._book.expire_due()


def build_alipay(context: SandboxContext, credentials: AlipayCredentials) -> AlipayChannel:
    """The Alipay channel for one merchant app, its notifications on Alipay's schedule."""
    apps = {credentials.app_id: credentials}
    signer = load_private_key(credentials.alipay_private_key_pem)
    notices = AlipayNotices(apps=apps, signer=signer, notifier=context.notifier)
    book = AlipayBook(
        clock=context.clock,
        ledger=context.ledger,
        on_status=notices.on_status,
        late=lambda: context.faults.pay_late_by,
    )
    return AlipayChannel(
        context,
        apps=MerchantApps(clock=context.clock, apps=apps),
        signer=signer,
        book=book,
        bills=AlipayBills(context, book=book, credentials=credentials),
    )
