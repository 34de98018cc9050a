"""Alipay's trade bills: the signed download-URL query and the bill file it points to.

``alipay.data.dataservice.bill.downloadurl.query`` (biz ``bill_type=trade``, ``bill_date``)
answers, signed like every gateway reply, a ``bill_download_url`` that is itself signed (a
token over its parameters) and valid for 30 seconds. A GET on it returns the bill as Alipay
does: a zip holding the day's detail CSV (``…_业务明细.csv``) and its summary
(``…_业务明细(汇总).csv``), both GBK, ``#`` comment lines around a header and one row per money
movement, each value followed by a tab. A day is billed once it has ended in China time; before,
the query answers ``isp.bill_not_exist``.
"""

# ruff: noqa: RUF001 (Alipay's bill speaks Chinese, with full-width punctuation)
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import zipfile
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from payonce.sandbox.alipay_book import AlipayBook
from payonce.sandbox.alipay_requests import text
from payonce.sandbox.alipay_trades import BUYER_LOGON_ID, CHANNEL
from payonce.sandbox.alipay_wire import CHINA_TZ, INVALID_ARGUMENT, AlipayError, Reply, yuan
from payonce.sandbox.channel import SandboxContext
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.ledger import Movement, day_ended

BILL_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
DOWNLOAD_PATH = "/alipay/downloadBillFile.resource"
URL_VALIDITY = timedelta(seconds=30)
DETAIL_SUFFIX = "_业务明细.csv"
SUMMARY_SUFFIX = "_业务明细(汇总).csv"
COLUMNS = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)
_BILL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SIGNED_PARAMS = ("bizType", "userId", "fileType", "bizDates", "downloadFileName", "fileId")


def _wire_time(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _chinese_time(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y年%m月%d日 %H:%M:%S")


class AlipayBills:
    """Answers the bill download-URL query and serves the bill files it points to."""

    def __init__(
        self, context: SandboxContext, *, book: AlipayBook, credentials: AlipayCredentials
    ) -> None:
        self._clock = context.clock
        self._ledger = context.ledger
        self._lock = context.lock
        self._public_url = context.public_url.rstrip("/")
        self._book = book
        # Signs the download URLs; derived, so a URL is the same under the same keys and clock.
        pem = credentials.alipay_private_key_pem.encode()
        self._secret = hashlib.sha256(b"bills|" + pem).digest()

    # -- the gateway method ----------------------------------------------------------------

    async def download_url_query(
        self, method: str, params: Mapping[str, str], biz: dict[str, Any], app: AlipayCredentials
    ) -> Reply:
        bill_type = text(biz, "bill_type") or ""
        bill_date = text(biz, "bill_date") or ""
        if bill_type != "trade":
            raise AlipayError(
                "isv.invalid-parameter",
                f"bill_type {bill_type} 不支持 (only trade)",
                kind=INVALID_ARGUMENT,
            )
        if not _BILL_DATE.fullmatch(bill_date):
            # Monthly bills (yyyy-MM) are not simulated.
            raise AlipayError(
                "isv.invalid-parameter", "bill_date 格式为 yyyy-MM-dd", kind=INVALID_ARGUMENT
            )
        try:
            day = date.fromisoformat(bill_date)
        except ValueError as error:
            raise AlipayError(
                "isv.invalid-parameter", "bill_date 无效", kind=INVALID_ARGUMENT
            ) from error
        now = self._clock.now()
        if not day_ended(day, CHINA_TZ, now):
            raise AlipayError("isp.bill_not_exist", "账单不存在 (the day is not billed yet)")
        return Reply.success(method, bill_download_url=self._url(app, day, now))

    def _url(self, app: AlipayCredentials, day: date, now: datetime) -> str:
        compact = day.strftime("%Y%m%d")
        params = {
            "bizType": "trade",
            "userId": app.seller_id,
            "fileType": "csv.zip",
            "bizDates": compact,
            "downloadFileName": f"{app.seller_id}_{compact}.csv.zip",
            "fileId": f"{app.app_id}/trade/{compact}",
            "timestamp": str(int(now.timestamp() * 1000)),
        }
        params["token"] = self._token(params)
        return f"{self._public_url}{DOWNLOAD_PATH}?{urlencode(params)}"

    def _token(self, params: Mapping[str, str]) -> str:
        message = "&".join(f"{key}={params.get(key, '')}" for key in (*_SIGNED_PARAMS, "timestamp"))
        return hmac.new(self._secret, message.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- the download ----------------------------------------------------------------------

    def router(self, apps: Mapping[str, AlipayCredentials]) -> APIRouter:
        router = APIRouter(tags=["alipay"])

        @router.get(DOWNLOAD_PATH, response_model=None)
        async def download(request: Request) -> Response:
            """The bill file a download URL names, while its token holds and it is fresh."""
            params = dict(request.query_params)
            refusal = self._refusal(params)
            if refusal is not None:
                return PlainTextResponse(refusal, status_code=403)
            seller = params["userId"]
            app = next((a for a in apps.values() if a.seller_id == seller), None)
            if app is None:
                return PlainTextResponse("unknown account", status_code=404)
            day = datetime.strptime(params["bizDates"], "%Y%m%d").date()
            async with self._lock:
                content = self.bill_zip(app, day)
            return Response(
                content,
                media_type="application/zip",
                headers={
                    "Content-Disposition": f'attachment; filename="{params["downloadFileName"]}"'
                },
            )

        return router

    def _refusal(self, params: Mapping[str, str]) -> str | None:
        """Why a download URL is refused (tampered with, or expired), or None."""
        token = params.get("token", "")
        if not all(params.get(key) for key in (*_SIGNED_PARAMS, "timestamp")):
            return "incomplete download URL"
        if not hmac.compare_digest(token, self._token(params)):
            return "invalid token"
        stamp = params["timestamp"]
        if not stamp.isdigit():
            return "invalid timestamp"
        issued = datetime.fromtimestamp(int(stamp) / 1000, CHINA_TZ)
        if self._clock.now() >= issued + URL_VALIDITY:
            return "the download URL has expired"
        return None

    # -- the file --------------------------------------------------------------------------

    def bill_zip(self, app: AlipayCredentials, day: date) -> bytes:
        """The day's bill of one merchant app, as the zip Alipay serves."""
        movements = [
            movement
            for movement in self._ledger.on_day(channel=CHANNEL, day=day, tz=CHINA_TZ)
            if (order := self._book.known(movement.out_trade_no)) is not None
            and order.terms.app_id == app.app_id
        ]
        stem = f"{app.seller_id}_{day:%Y%m%d}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(stem + DETAIL_SUFFIX, self._detail(app, day, movements))
            archive.writestr(stem + SUMMARY_SUFFIX, self._summary(app, day, movements))
        return buffer.getvalue()

    def _header(self, app: AlipayCredentials, day: date, title: str) -> list[str]:
        start = datetime.combine(day, datetime.min.time(), tzinfo=CHINA_TZ)
        return [
            f"#支付宝{title}查询",
            f"#账号：[{app.seller_id}]",
            f"#起始日期：[{_chinese_time(start)}]   "
            f"终止日期：[{_chinese_time(start + timedelta(days=1))}]",
        ]

    def _detail(self, app: AlipayCredentials, day: date, movements: list[Movement]) -> bytes:
        out = io.StringIO()
        out.write("\r\n".join(self._header(app, day, "业务明细")) + "\r\n")
        out.write("#" + "-" * 41 + "业务明细列表" + "-" * 40 + "\r\n")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for movement in movements:
            writer.writerow([f"{value}\t" for value in self._row(movement)])
        captures = [m for m in movements if m.kind == "capture"]
        refunds = [m for m in movements if m.kind == "refund"]
        out.write("#" + "-" * 41 + "业务明细列表结束" + "-" * 36 + "\r\n")
        out.write(
            f"#交易合计：{len(captures)}笔，商家实收共：{yuan(sum(m.amount for m in captures))}元，"
            "商家优惠共：0.00元\r\n"
        )
        refunded = yuan(sum(m.amount for m in refunds))
        out.write(
            f"#退款合计：{len(refunds)}笔，商家实收退款共：-{refunded}元，商家优惠退款共：0.00元\r\n"
        )
        out.write(f"#导出时间：[{_chinese_time(self._clock.now())}]\r\n")
        return out.getvalue().encode("gbk", errors="replace")

    def _row(self, movement: Movement) -> list[str]:
        order = self._book.known(movement.out_trade_no)
        assert order is not None
        assert order.trade is not None
        refund = movement.kind == "refund"
        received = f"-{yuan(movement.amount)}" if refund else yuan(movement.amount)
        return [
            movement.trade_no,
            movement.out_trade_no,
            "退款" if refund else "交易",
            order.terms.subject,
            _wire_time(order.trade.created_at),
            _wire_time(movement.at),
            "",
            "",
            "",
            "",
            BUYER_LOGON_ID,
            yuan(order.terms.amount),
            received,
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "",
            "0.00",
            "0.00",
            movement.reference if refund else "",
            "0.00",
            "0.00",
            "",
        ]

    def _summary(self, app: AlipayCredentials, day: date, movements: list[Movement]) -> bytes:
        captures = [m.amount for m in movements if m.kind == "capture"]
        refunds = [m.amount for m in movements if m.kind == "refund"]
        out = io.StringIO()
        out.write("\r\n".join(self._header(app, day, "业务汇总")) + "\r\n")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [
                "门店编号",
                "门店名称",
                "交易订单总笔数",
                "退款订单总笔数",
                "订单金额（元）",
                "商家实收（元）",
            ]
        )
        net = sum(captures) - sum(refunds)
        writer.writerow(["", "合计", len(captures), len(refunds), yuan(sum(captures)), yuan(net)])
        out.write(f"#导出时间：[{_chinese_time(self._clock.now())}]\r\n")
        return out.getvalue().encode("gbk", errors="replace")
