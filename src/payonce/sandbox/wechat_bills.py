"""WeChat Pay's trade bills: ``GET /v3/bill/tradebill`` and the bill file it points to.

The apply call (signed like every v3 call, its answer signed too) names a day (``bill_date``,
China time), a ``bill_type`` (ALL, SUCCESS, REFUND) and optionally ``tar_type=GZIP``; it answers
``{"hash_type": "SHA1", "hash_value", "download_url"}``. The download (also a signed GET) answers
the file unsigned: the hash, of the uncompressed file, is how the merchant knows it is whole.
The file is WeChat's CSV: a header row, one row per movement with every value prefixed by a
backquote, then a summary header and row. A day is billed once it has ended in China time (before,
``STATEMENT_CREATING``); an ended day without a movement has no bill (``NO_STATEMENT_EXIST``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import re
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from payonce.sandbox.channel import SandboxContext
from payonce.sandbox.ledger import Movement, day_ended
from payonce.sandbox.wechat_book import WechatBook
from payonce.sandbox.wechat_credentials import WechatCredentials
from payonce.sandbox.wechat_requests import Merchants
from payonce.sandbox.wechat_trades import CHANNEL, OPENID
from payonce.sandbox.wechat_wire import CHINA_TZ, Reply, WechatError, param_error

DOWNLOAD_PATH = "/v3/billdownload/file"
URL_VALIDITY = timedelta(seconds=30)
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
COLUMNS = (
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
)
SUMMARY = (
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SIGNED = ("mchid", "bill_date", "bill_type", "tar_type", "issued")


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


class WechatBills:
    """Answers the trade bill apply call and serves the files it points to."""

    def __init__(
        self,
        context: SandboxContext,
        *,
        book: WechatBook,
        merchants: Merchants,
        credentials: WechatCredentials,
    ) -> None:
        self._context = context
        self._clock = context.clock
        self._book = book
        self._merchants = merchants
        self._public_url = context.public_url.rstrip("/")
        # Signs the download URLs; derived, so a URL is the same under the same keys and clock.
        self._secret = hashlib.sha256(b"bills|" + credentials.apiv3_key.encode()).digest()

    # -- apply -----------------------------------------------------------------------------

    async def apply(self, account: WechatCredentials, request: Request, body: bytes) -> Reply:
        query = request.query_params
        bill_date = query.get("bill_date", "")
        bill_type = query.get("bill_type", "ALL")
        tar_type = query.get("tar_type", "")
        day = _bill_day(bill_date)
        if bill_type not in BILL_TYPES:
            raise param_error(f"bill_type: one of {', '.join(BILL_TYPES)}")
        if tar_type not in ("", "GZIP"):
            raise param_error("tar_type: GZIP, or none")
        if not day_ended(day, CHINA_TZ, self._clock.now()):
            raise WechatError(400, "STATEMENT_CREATING", "账单生成中 (the bill is not ready yet)")
        async with self._context.lock:
            content = self.bill(account, day, bill_type)
        if content is None:
            raise WechatError(400, "NO_STATEMENT_EXIST", "账单文件不存在 (no trade that day)")
        params = {
            "mchid": account.mchid,
            "bill_date": bill_date,
            "bill_type": bill_type,
            "tar_type": tar_type,
            "issued": str(int(self._clock.now().timestamp())),
        }
        params["token"] = self._token(params)
        url = f"{self._public_url}/wechat{DOWNLOAD_PATH}?{urlencode(params)}"
        digest = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        return Reply(200, {"hash_type": "SHA1", "hash_value": digest, "download_url": url})

    def _token(self, params: dict[str, str]) -> str:
        message = "&".join(f"{key}={params.get(key, '')}" for key in _SIGNED)
        return hmac.new(self._secret, message.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- download --------------------------------------------------------------------------

    async def download(self, request: Request, target: str) -> Response:
        """The file a download URL names: for the merchant who signs the GET, while fresh."""
        try:
            account = self._merchants.authenticate(
                request.method, target, await request.body(), request.headers
            )
            params = {key: request.query_params.get(key, "") for key in _SIGNED}
            token = request.query_params.get("token", "")
            if not hmac.compare_digest(token, self._token(params)):
                raise param_error("token: not a download URL of this merchant")
            if params["mchid"] != account.mchid:
                raise WechatError(403, "NO_AUTH", "无权限 (another merchant's bill)")
            issued = datetime.fromtimestamp(int(params["issued"]), CHINA_TZ)
            if self._clock.now() >= issued + URL_VALIDITY:
                raise WechatError(400, "INVALID_REQUEST", "下载链接已过期 (the URL has expired)")
            day = _bill_day(params["bill_date"])
            async with self._context.lock:
                content = self.bill(account, day, params["bill_type"])
        except WechatError as error:
            body = {"code": error.code, "message": error.message}
            return JSONResponse(body, status_code=error.status)
        if content is None:
            return JSONResponse({"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}, 400)
        if params["tar_type"] == "GZIP":
            return Response(gzip.compress(content, mtime=0), media_type="application/x-gzip")
        return Response(content, media_type="text/plain; charset=utf-8")

    # -- the file --------------------------------------------------------------------------

    def bill(self, account: WechatCredentials, day: date, bill_type: str) -> bytes | None:
        """The day's bill of one merchant (None: no movement, so no bill)."""
        movements = [
            movement
            for movement in self._context.ledger.on_day(channel=CHANNEL, day=day, tz=CHINA_TZ)
            if (trade := self._book.known(movement.out_trade_no)) is not None
            and trade.terms.mchid == account.mchid
            and bill_type in ("ALL", "SUCCESS" if movement.kind == "capture" else "REFUND")
        ]
        if not movements:
            return None
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for movement in movements:
            writer.writerow(["`" + value for value in self._row(movement)])
        captured = sum(m.amount for m in movements if m.kind == "capture")
        refunded = sum(m.amount for m in movements if m.kind == "refund")
        orders = sum(self._total(m) for m in movements if m.kind == "capture")
        writer.writerow(SUMMARY)
        totals = [str(len(movements)), _yuan(captured), _yuan(refunded), "0.00", "0.00000"]
        writer.writerow(["`" + value for value in (*totals, _yuan(orders), _yuan(refunded))])
        return out.getvalue().encode("utf-8")

    def _total(self, movement: Movement) -> int:
        trade = self._book.known(movement.out_trade_no)
        assert trade is not None
        return trade.terms.total

    def _row(self, movement: Movement) -> list[str]:
        trade = self._book.known(movement.out_trade_no)
        assert trade is not None
        terms = trade.terms
        refund = movement.kind == "refund"
        found = self._book.refund_of(movement.reference) if refund else None
        return [
            movement.at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"),
            terms.appid,
            terms.mchid,
            "0",
            "",
            movement.trade_no,
            movement.out_trade_no,
            OPENID,
            terms.trade_type,
            "REFUND" if refund else "SUCCESS",
            "OTHERS",
            terms.currency,
            "0.00" if refund else _yuan(movement.amount),
            "0.00",
            found[1].refund_id if found is not None else "0",
            movement.reference if refund else "0",
            _yuan(movement.amount) if refund else "0.00",
            "0.00",
            "ORIGINAL" if refund else "",
            "SUCCESS" if refund else "",
            terms.description,
            terms.attach,
            "0.00000",
            "0.60%",
            _yuan(terms.total),
            _yuan(movement.amount) if refund else "0.00",
            "",
        ]


def _bill_day(text: str) -> date:
    if not _DATE.fullmatch(text):
        raise param_error("bill_date: yyyy-MM-dd")
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise param_error(f"bill_date {text} is not a date") from error
