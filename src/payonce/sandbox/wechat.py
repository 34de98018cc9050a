"""The WeChat Pay channel: its v3 REST API (signed calls and answers) and its wallet side."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from payonce.sandbox.call_log import GatewayCall
from payonce.sandbox.channel import SandboxContext, TradeListing
from payonce.sandbox.faults import Operation
from payonce.sandbox.problems import Problem
from payonce.sandbox.signing import load_private_key, load_public_key, verify_rsa2
from payonce.sandbox.wallet import CodeBody, Wallet, WalletView
from payonce.sandbox.wechat_bills import DOWNLOAD_PATH, WechatBills
from payonce.sandbox.wechat_book import WechatBook
from payonce.sandbox.wechat_credentials import WechatCredentials
from payonce.sandbox.wechat_notices import DEFAULT_ECHO_RATE, WechatNotices
from payonce.sandbox.wechat_requests import Merchants, mismatch, out_trade_no_of
from payonce.sandbox.wechat_trades import (
    CHANNEL,
    PAYABLE,
    TRADE_TYPES,
    OrderTerms,
    Trade,
    refund_json,
    transaction_json,
    wallet_view,
)
from payonce.sandbox.wechat_wire import (
    CHINA_TZ,
    JSON_TYPE,
    Reply,
    WechatError,
    derived_nonce,
    json_body,
    signed_headers,
    system_error,
)

CODE_URL_PREFIX = "weixin://wxpay/bizpayurl?pr="
_PREPAY_ID = re.compile(r"^wx\d{14}[0-9a-f]{20}$")
_API = "/wechat/v3/"
Work = Callable[[], Reply]
# One API call's work, once its merchant is authenticated: (merchant, request, raw body).
Handler = Callable[[WechatCredentials, Request, bytes], Awaitable[Reply]]


class EchoRate(BaseModel):
    echo_rate: float = Field(ge=0.0, le=1.0)


class WechatChannel:
    """Answers the merchant's v3 API calls and the shopper's wallet actions for WeChat Pay."""

    name = CHANNEL
    statement_zone = CHINA_TZ

    def __init__(
        self,
        context: SandboxContext,
        *,
        account: WechatCredentials,
        book: WechatBook,
        notices: WechatNotices,
        bills: WechatBills,
    ) -> None:
        self._context = context
        self._clock = context.clock
        self._account = account
        self._merchants = Merchants({account.mchid: account})
        self._merchant_key = load_public_key(account.merchant_public_key_pem)
        self._signer: rsa.RSAPrivateKey = load_private_key(account.platform_private_key_pem)
        self._book = book
        self._notices = notices
        self._bills = bills
        self._public_url = context.public_url.rstrip("/")
        self._answers = itertools.count(1)

    @property
    def echo_rate(self) -> float:
        """How often a notification delivery is echoed a second later (a seeded WeChat quirk)."""
        return self._notices.echo_rate

    @echo_rate.setter
    def echo_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("echo_rate is a probability")
        self._notices.echo_rate = rate

    def code_url(self, trade: Trade) -> str:
        return f"{CODE_URL_PREFIX}{trade.token}"

    def h5_url(self, trade: Trade, package: str) -> str:
        return (
            f"{self._public_url}/wechat/h5/checkmweb?prepay_id={trade.prepay_id}&package={package}"
        )

    # -- the API ---------------------------------------------------------------------------

    def router(self, wallet: Wallet) -> APIRouter:
        router = APIRouter(tags=["wechat"])

        @router.post("/wechat/v3/pay/transactions/{kind}")
        async def create(kind: str, request: Request) -> Response:
            """Native, H5 and App orders: ``code_url``, ``h5_url`` or ``prepay_id``."""
            return await self._serve(request, f"POST /v3/pay/transactions/{kind}", self._create)

        @router.get("/wechat/v3/pay/transactions/out-trade-no/{out_trade_no}")
        async def query(out_trade_no: str, request: Request) -> Response:
            return await self._serve(
                request, "GET /v3/pay/transactions/out-trade-no/{out_trade_no}", self._query
            )

        @router.get("/wechat/v3/pay/transactions/id/{transaction_id}")
        async def query_by_id(transaction_id: str, request: Request) -> Response:
            return await self._serve(
                request, "GET /v3/pay/transactions/id/{transaction_id}", self._query
            )

        @router.post("/wechat/v3/pay/transactions/out-trade-no/{out_trade_no}/close")
        async def close(out_trade_no: str, request: Request) -> Response:
            """204 when closed; refused while the order is younger than five minutes."""
            return await self._serve(
                request, "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close", self._close
            )

        @router.post("/wechat/v3/refund/domestic/refunds")
        async def refund(request: Request) -> Response:
            return await self._serve(request, "POST /v3/refund/domestic/refunds", self._refund)

        @router.get("/wechat/v3/refund/domestic/refunds/{out_refund_no}")
        async def refund_query(out_refund_no: str, request: Request) -> Response:
            return await self._serve(
                request, "GET /v3/refund/domestic/refunds/{out_refund_no}", self._refund_query
            )

        @router.get("/wechat/v3/bill/tradebill")
        async def trade_bill(request: Request) -> Response:
            return await self._serve(request, "GET /v3/bill/tradebill", self._bills.apply)

        @router.get(f"/wechat{DOWNLOAD_PATH}")
        async def bill_file(request: Request) -> Response:
            """The bill file (unsigned: its hash came in the signed apply answer)."""
            return await self._bills.download(request, _signed_target(request))

        @router.get("/wechat/h5/checkmweb", response_class=HTMLResponse)
        async def h5_page(request: Request) -> HTMLResponse:
            """What an h5_url opens: the wallet page for that link."""
            return await wallet.page(
                request, f"{self._public_url}/wechat/h5/checkmweb?{request.url.query}"
            )

        @router.post("/wechat/wallet/decline")
        async def decline(body: CodeBody) -> JSONResponse:
            """The shopper's bank refuses the payment: the trade says PAYERROR."""
            return JSONResponse((await self.decline(body.code.strip())).as_json())

        @router.get("/wechat/echo", tags=["control"])
        async def get_echo() -> EchoRate:
            return EchoRate(echo_rate=self.echo_rate)

        @router.put("/wechat/echo", tags=["control"])
        async def put_echo(body: EchoRate) -> EchoRate:
            """Set how often deliveries are echoed a second later (applies to new payments)."""
            self.echo_rate = body.echo_rate
            return EchoRate(echo_rate=self.echo_rate)

        return router

    async def _serve(
        self,
        request: Request,
        label: str,
        handler: Handler,
    ) -> Response:
        """Authenticate one call, answer it (signed), log it; hold the answer on a time-out."""
        body = await request.body()
        mchid = ""
        try:
            account = self._merchants.authenticate(
                request.method, _signed_target(request), body, request.headers
            )
            mchid = account.mchid
            reply = await handler(account, request, body)
        except WechatError as error:
            reply = Reply.failure(error)
        self._log(label, mchid, request, body, reply)
        if reply.hold:
            await self._context.hold()
        content = reply.content()
        nonce = derived_nonce("answer", next(self._answers))
        headers = signed_headers(
            self._signer,
            self._account.platform_public_key_id,
            content,
            at=self._clock.now(),
            nonce=nonce,
        )
        headers["Request-ID"] = nonce.lower()
        if reply.status == 204:
            return Response(status_code=204, headers=headers)
        return Response(content, status_code=reply.status, headers=headers, media_type=JSON_TYPE)

    def _log(self, label: str, mchid: str, request: Request, body: bytes, reply: Reply) -> None:
        fields: dict[str, Any] = dict(reply.body or {})
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            sent = json.loads(body) if body else {}
            if isinstance(sent, dict):
                fields = {**sent, **fields}
        out_trade_no = request.path_params.get("out_trade_no") or fields.get("out_trade_no")
        trade_no = request.path_params.get("transaction_id") or fields.get("transaction_id")
        self._context.calls.record(
            GatewayCall(
                channel=CHANNEL,
                method=label,
                app_id=mchid,
                out_trade_no=str(out_trade_no) if out_trade_no else None,
                trade_no=str(trade_no) if trade_no else None,
                at=self._clock.now(),
                code=str(reply.status),
                sub_code=reply.error_code,
                held=reply.hold,
            )
        )

    async def _locked(self, op: Operation, work: Work) -> Reply:
        """Do the work under the state lock, unless an error fault refuses it first.

        A time-out fault lets the work happen and then holds the answer back: the merchant
        sees a time-out for a call that did take effect.
        """
        async with self._context.lock:
            fault = self._context.faults.call_fault(op, CHANNEL)
            if fault == "error":
                return Reply.failure(system_error())
            try:
                reply = work()
            except WechatError as error:
                reply = Reply.failure(error)
        reply.hold = fault == "timeout"
        return reply

    # -- the calls -------------------------------------------------------------------------

    async def _create(self, account: WechatCredentials, request: Request, body: bytes) -> Reply:
        kind = request.path_params["kind"]
        if kind not in TRADE_TYPES:
            raise WechatError(404, "NOT_FOUND", f"no such API: /v3/pay/transactions/{kind}")
        terms = self._merchants.terms(account, kind, json_body(body))

        def work() -> Reply:
            trade = self._book.create(terms)
            if kind == "native":
                return Reply(200, {"code_url": self.code_url(trade)})
            if kind == "h5":
                return Reply(200, {"h5_url": self.h5_url(trade, self._book.issue_h5_link(trade))})
            return Reply(200, {"prepay_id": trade.prepay_id})

        return await self._locked("create", work)

    def _check_mchid(self, account: WechatCredentials, mchid: object) -> None:
        if mchid != account.mchid:
            raise mismatch(f"mchid {mchid} is not the caller")

    async def _query(self, account: WechatCredentials, request: Request, body: bytes) -> Reply:
        self._check_mchid(account, request.query_params.get("mchid"))
        out_trade_no = request.path_params.get("out_trade_no")
        transaction_id = request.path_params.get("transaction_id", "")

        def work() -> Reply:
            if out_trade_no is not None:
                trade = self._book.existing(out_trade_no)
            else:
                trade = self._book.by_transaction_id(transaction_id)
            if trade.terms.mchid != account.mchid:
                raise WechatError(404, "ORDER_NOT_EXIST", "订单不存在 (no such order)")
            return Reply(200, transaction_json(trade, self._book.provider_now()))

        return await self._locked("query", work)

    async def _close(self, account: WechatCredentials, request: Request, body: bytes) -> Reply:
        self._check_mchid(account, json_body(body).get("mchid"))
        out_trade_no = out_trade_no_of(request.path_params["out_trade_no"])

        def work() -> Reply:
            self._shopper_pays_first(out_trade_no)
            self._book.close(self._book.existing(out_trade_no))
            return Reply(204)

        return await self._locked("close", work)

    def _shopper_pays_first(self, out_trade_no: str) -> None:
        """The race a merchant cannot prevent: the payment lands just before its close."""
        if not self._context.faults.strikes("pay_before_close", CHANNEL):
            return
        trade = self._book.find(out_trade_no)
        if trade is None:
            return
        with contextlib.suppress(Problem):  # not payable any more: nothing to race
            self._book.pay(trade)

    async def _refund(self, account: WechatCredentials, request: Request, body: bytes) -> Reply:
        asked = self._merchants.refund(json_body(body))

        def work() -> Reply:
            try:
                if asked.transaction_id is not None:
                    trade = self._book.by_transaction_id(asked.transaction_id)
                else:
                    trade = self._book.existing(asked.out_trade_no or "")
            except WechatError as error:
                raise WechatError(
                    404, "RESOURCE_NOT_EXISTS", "订单不存在 (no such order)"
                ) from error
            if trade.terms.mchid != account.mchid:
                raise WechatError(404, "RESOURCE_NOT_EXISTS", "订单不存在 (no such order)")
            refund, _moved = self._book.refund(
                trade, asked.out_refund_no, asked.refund, asked.total
            )
            return Reply(200, refund_json(trade, refund))

        return await self._locked("refund", work)

    async def _refund_query(
        self, account: WechatCredentials, request: Request, body: bytes
    ) -> Reply:
        out_refund_no = request.path_params["out_refund_no"]
        async with self._context.lock:
            found = self._book.refund_of(out_refund_no)
            if found is None or found[0].terms.mchid != account.mchid:
                return Reply.failure(
                    WechatError(404, "RESOURCE_NOT_EXISTS", "退款单不存在 (no such refund)")
                )
            return Reply(200, refund_json(*found))

    # -- the wallet side -------------------------------------------------------------------

    def recognises(self, code: str) -> bool:
        return (
            code.startswith(CODE_URL_PREFIX)
            or "/wechat/h5/checkmweb?" in code
            or bool(_PREPAY_ID.fullmatch(code))
            or (code.startswith("{") and '"prepayid"' in code)
        )

    async def view(self, code: str) -> WalletView:
        async with self._context.lock:
            trade, expires = self._trade_for_code(code)
            return wallet_view(trade, code, self._book.provider_now(), expires)

    async def scan(self, code: str) -> WalletView:
        async with self._context.lock:
            trade, expires = self._usable(code)
            self._book.scan(trade)
            return wallet_view(trade, code, self._book.provider_now(), expires)

    async def pay(self, code: str) -> WalletView:
        async with self._context.lock:
            trade, expires = self._usable(code)
            self._book.pay(trade)
            return wallet_view(trade, code, self._book.provider_now(), expires)

    async def decline(self, code: str) -> WalletView:
        async with self._context.lock:
            trade, expires = self._usable(code)
            self._book.decline(trade)
            return wallet_view(trade, code, self._book.provider_now(), expires)

    def _usable(self, code: str) -> tuple[Trade, datetime]:
        """The trade of a code the shopper can still use (else the state's own refusal)."""
        trade, expires = self._trade_for_code(code)
        now = self._book.provider_now()
        if trade.state_at(now) in PAYABLE and now >= expires:
            raise Problem(409, "code_expired", "Code expired", "this payment code expired")
        return trade, expires

    def _trade_for_code(self, code: str) -> tuple[Trade, datetime]:
        """The trade a code opens, and until when that code opens it."""
        self._book.expire_due()
        trade: Trade | None = None
        expires: datetime | None = None
        if code.startswith(CODE_URL_PREFIX):
            trade = self._book.by_token(code.removeprefix(CODE_URL_PREFIX))
        elif "/wechat/h5/checkmweb?" in code:
            params = parse_qs(urlsplit(code).query)
            trade = self._book.by_prepay_id(params.get("prepay_id", [""])[0])
            package = params.get("package", [""])[0]
            expires = trade.h5_links.get(package) if trade is not None else None
            if trade is not None and expires is None:
                trade = None  # a link this sandbox never handed out
        elif code.startswith("{"):
            trade = self._book.by_prepay_id(self._verified_app_request(code))
        else:
            trade = self._book.by_prepay_id(code)
        if trade is None:
            raise Problem(422, "code_unknown", "Unknown code", "no such WeChat Pay code")
        return trade, expires or trade.code_expires_at

    def _verified_app_request(self, code: str) -> str:
        """An app's pay request (WeChat's PayReq), checked as the WeChat app does: its prepay id.

        The merchant signs ``appid\\ntimestamp\\nnoncestr\\nprepayid\\n`` with its API key.
        """
        try:
            fields = json.loads(code)
        except ValueError as error:
            raise Problem(422, "invalid_code", "Invalid pay request", "not JSON") from error
        needed = ("appid", "partnerid", "prepayid", "package", "noncestr", "timestamp", "sign")
        if not isinstance(fields, dict) or not all(isinstance(fields.get(k), str) for k in needed):
            raise Problem(422, "invalid_code", "Invalid pay request", f"needs {', '.join(needed)}")
        if (fields["appid"], fields["partnerid"]) != (self._account.appid, self._account.mchid):
            raise Problem(422, "invalid_code", "Invalid pay request", "another merchant's order")
        message = f"{fields['appid']}\n{fields['timestamp']}\n{fields['noncestr']}\n"
        message += f"{fields['prepayid']}\n"
        if fields["package"] != "Sign=WXPay" or not verify_rsa2(
            self._merchant_key, message, fields["sign"]
        ):
            raise Problem(422, "invalid_signature", "Invalid pay request", "sign does not verify")
        prepay_id: str = fields["prepayid"]
        return prepay_id

    # -- records ---------------------------------------------------------------------------

    def trades(self, out_trade_no: str | None = None) -> list[TradeListing]:
        return self._book.trades(out_trade_no)

    def terms(self, out_trade_no: str) -> OrderTerms | None:
        """What the merchant asked for when it created this trade (None: never created)."""
        trade = self._book.find(out_trade_no)
        return trade.terms if trade is not None else None

    def tick(self) -> None:
        self._book.expire_due()


def _signed_target(request: Request) -> str:
    """The URL the merchant signed: the path from ``/v3/`` on, with its query string.

    The SDK signs the path relative to its gateway (``…/sandbox/wechat``), wherever the sandbox
    is mounted.
    """
    path = request.url.path
    at = path.find(_API)
    target = path[at + len("/wechat") :] if at >= 0 else path
    query = request.url.query
    return f"{target}?{query}" if query else target


def build_wechat(
    context: SandboxContext,
    credentials: WechatCredentials,
    *,
    echo_rate: float = DEFAULT_ECHO_RATE,
) -> WechatChannel:
    """The WeChat Pay channel for one merchant, notifying on WeChat's schedule.

    ``echo_rate`` is how often a delivery is repeated about a second later (seeded by the fault
    seed, independent of the fault rates); ``WechatChannel.echo_rate`` changes it at run time.
    """
    notices = WechatNotices(
        credentials=credentials,
        signer=load_private_key(credentials.platform_private_key_pem),
        notifier=context.notifier,
        echo_rate=echo_rate,
    )
    book = WechatBook(
        clock=context.clock,
        ledger=context.ledger,
        on_paid=notices.on_paid,
        late=lambda: context.faults.pay_late_by,
    )
    merchants = Merchants({credentials.mchid: credentials})
    bills = WechatBills(context, book=book, merchants=merchants, credentials=credentials)
    return WechatChannel(context, account=credentials, book=book, notices=notices, bills=bills)
