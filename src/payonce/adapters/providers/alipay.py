"""The Alipay channel on python-alipay-sdk: precreate (PC QR), wap/app pay, query, close, refund.

The SDK is synchronous (``urlopen``), so its calls run in a worker thread; it is pointed at any
gateway (the real one or the sandbox) through its ``_gateway`` attribute.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.error import URLError
from urllib.parse import parse_qsl

import httpx
from alipay import AliPay
from alipay.exceptions import AliPayException
from alipay.utils import AliPayConfig

from payonce.adapters.providers.alipay_bill import parse_bill
from payonce.adapters.providers.freshness import require_fresh
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import InvalidMoney, Money
from payonce.domain.payment import Action, ActionType
from payonce.errors import (
    NotificationRejected,
    ProviderRejected,
    ProviderRetryable,
    ProviderUnavailable,
)
from payonce.ports.clock import Clock
from payonce.ports.provider import (
    CreatedTrade,
    NotificationReply,
    ProviderNotification,
    RefundResult,
    StatementLine,
    TradeRequest,
    TradeSnapshot,
    TradeState,
)

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
SUCCESS = "10000"
BILL_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
# Sub-codes that mean "ask again later", not "no".
_RETRYABLE = {"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"}
_TRADE_STATES = {
    "WAIT_BUYER_PAY": TradeState.OPEN,
    "TRADE_SUCCESS": TradeState.PAID,
    "TRADE_FINISHED": TradeState.PAID,
    "TRADE_CLOSED": TradeState.CLOSED,
}
# Gateway-level refusals (unsigned answers) that mean "no", not "try again": bad parameters,
# an unknown app, a bad signature of ours, insufficient permissions.
_REFUSAL_CODES = {"40001", "40002", "40006"}
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _paid_then_closed(state: TradeState, paid_at: datetime | None) -> TradeState:
    """TRADE_CLOSED is Alipay's word both for a trade never paid and for one paid and then
    refunded in full (a cancel that found it paid, a refund): the payment time tells which."""
    return TradeState.REFUNDED if state is TradeState.CLOSED and paid_at is not None else state


@dataclass(frozen=True)
class AlipaySettings:
    app_id: str
    seller_id: str
    app_private_key_pem: str
    alipay_public_key_pem: str
    gateway_url: str
    notify_url: str
    timeout_s: float = 15.0
    qr_validity: timedelta = timedelta(hours=2)


def _never_sent(error: BaseException) -> bool:
    """Whether the request certainly did not reach Alipay (the connection was refused)."""
    reason = error.reason if isinstance(error, URLError) else error
    return isinstance(reason, ConnectionRefusedError)


def alipay_time(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def parse_alipay_time(text: str) -> datetime:
    """A China-time ``YYYY-MM-DD HH:MM:SS`` as aware UTC; ValueError if it is not one."""
    local = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    return local.astimezone(UTC)


def _named_trade(body: bytes) -> str | None:
    """The out_trade_no a refused form names, read without trusting it (a hint to ask about)."""
    try:
        fields = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    except ValueError:
        return None
    named = [value for key, value in fields if key == "out_trade_no"]
    if len(named) != 1 or not 0 < len(named[0]) <= 64 or not named[0].isprintable():
        return None
    return named[0]


class AlipayProvider:
    channel = Channel.ALIPAY

    def __init__(self, settings: AlipaySettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._sdk = AliPay(
            appid=settings.app_id,
            app_notify_url=settings.notify_url,
            app_private_key_string=settings.app_private_key_pem,
            alipay_public_key_string=settings.alipay_public_key_pem,
            sign_type="RSA2",
            config=AliPayConfig(timeout=settings.timeout_s),
        )
        self._sdk._gateway = settings.gateway_url

    @property
    def merchant_id(self) -> str:
        return self.settings.app_id

    @property
    def statement_zone(self) -> tzinfo:
        return CHINA

    def supports(self, platform: Platform, currency: str) -> bool:
        return currency == "CNY"

    async def _call(self, what: str, call: Callable[[], Any]) -> dict[str, Any]:
        """Run one SDK call in a thread; translate every foreign failure at this edge.

        The request may have been acted upon whatever went wrong after it left (a time-out, a
        dropped connection, an answer that is not Alipay's or whose signature fails): all of
        these are unknown outcomes. Only an unsigned gateway refusal is a definite "no".
        """
        try:
            response = await asyncio.to_thread(call)
        except AliPayException as error:
            # The SDK keeps the answer's code private; it is what tells a refusal from an outage.
            code = str(getattr(error, "_AliPayException__code", ""))
            if code in _REFUSAL_CODES:
                raise ProviderRejected(f"alipay {what}: {error}", provider_code=code) from error
            raise ProviderUnavailable(f"alipay {what}: {error}") from error
        except Exception as error:
            detail = f"alipay {what}: {type(error).__name__}: {error}"
            if _never_sent(error):
                raise ProviderRetryable(detail) from error
            raise ProviderUnavailable(detail) from error
        if not isinstance(response, dict):
            raise ProviderUnavailable(f"alipay {what}: unexpected answer {response!r}")
        return response

    @staticmethod
    def _failure(what: str, response: Mapping[str, Any]) -> Exception:
        code, sub_code = str(response.get("code")), str(response.get("sub_code", ""))
        detail = f"alipay {what}: {code} {sub_code} {response.get('sub_msg', '')}".strip()
        if code == "20000" or sub_code in _RETRYABLE:
            return ProviderUnavailable(detail)
        return ProviderRejected(detail, provider_code=sub_code or code)

    async def create(self, request: TradeRequest) -> CreatedTrade:
        amount = request.amount.to_decimal_string()
        deadline = alipay_time(request.pay_deadline)
        common: dict[str, Any] = {
            "subject": request.subject,
            "out_trade_no": request.out_trade_no,
            "total_amount": amount,
            "time_expire": deadline,
        }
        if request.platform is Platform.PC:
            response = await self._call(
                "precreate", lambda: self._sdk.api_alipay_trade_precreate(**common)
            )
            if response.get("code") != SUCCESS:
                raise self._failure("precreate", response)
            expires = min(request.pay_deadline, self._clock.now() + self.settings.qr_validity)
            return CreatedTrade(
                Action(ActionType.QR_CODE, {"qr_code": str(response["qr_code"])}, expires)
            )
        # Wap and app payments are signed here and opened by the shopper's wallet: no call yet.
        if request.platform is Platform.WAP:
            query = self._sdk.api_alipay_trade_wap_pay(return_url=request.return_url, **common)
            fields = {"launch_url": f"{self.settings.gateway_url}?{query}"}
            if request.return_url:
                fields["fallback_url"] = request.return_url
            return CreatedTrade(Action(ActionType.LAUNCH_URL, fields, request.pay_deadline))
        order_string = self._sdk.api_alipay_trade_app_pay(**common)
        return CreatedTrade(
            Action(ActionType.APP_ORDER, {"order_string": order_string}, request.pay_deadline)
        )

    def _snapshot(self, response: Mapping[str, Any]) -> TradeSnapshot:
        state = _TRADE_STATES.get(str(response.get("trade_status")))
        if state is None:
            raise ProviderUnavailable(
                f"alipay: unknown trade_status {response.get('trade_status')}"
            )
        try:
            amount = Money.from_decimal_string(str(response["total_amount"]), "CNY")
        except (KeyError, InvalidMoney) as error:
            raise ProviderUnavailable(f"alipay: bad total_amount in {response}") from error
        paid_at = None
        if response.get("send_pay_date"):  # when the shopper's payment went through
            try:
                paid_at = parse_alipay_time(str(response["send_pay_date"]))
            except ValueError as error:
                raise ProviderUnavailable(f"alipay: bad send_pay_date in {response}") from error
        return TradeSnapshot(
            _paid_then_closed(state, paid_at), response.get("trade_no"), amount, paid_at
        )

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        response = await self._call(
            "query", lambda: self._sdk.api_alipay_trade_query(out_trade_no=out_trade_no)
        )
        if response.get("code") == SUCCESS:
            return self._snapshot(response)
        if response.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return TradeSnapshot(TradeState.NOT_FOUND)
        raise self._failure("query", response)

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        response = await self._call(
            "close", lambda: self._sdk.api_alipay_trade_close(out_trade_no=out_trade_no)
        )
        if response.get("code") == SUCCESS:
            return TradeSnapshot(TradeState.CLOSED, response.get("trade_no"))
        sub_code = response.get("sub_code")
        if sub_code == "ACQ.TRADE_STATUS_ERROR":  # paid (or already closed): ask which
            return await self.query(out_trade_no)
        if sub_code != "ACQ.TRADE_NOT_EXIST":
            raise self._failure("close", response)
        # Nobody scanned the QR yet, so there is no trade to close, but the QR could still be
        # scanned later: cancel blocks the trade number for good.
        cancelled = await self._call(
            "cancel", lambda: self._sdk.api_alipay_trade_cancel(out_trade_no=out_trade_no)
        )
        if cancelled.get("code") != SUCCESS:
            raise self._failure("cancel", cancelled)
        if cancelled.get("action") == "refund":
            # The shopper paid in the instant between close and cancel, and cancel refunded it.
            return TradeSnapshot(TradeState.REFUNDED, cancelled.get("trade_no"))
        return TradeSnapshot(TradeState.CLOSED, cancelled.get("trade_no"))

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """An Alipay payment is captured when the shopper pays: nothing to collect."""
        return await self.query(out_trade_no)

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult:
        response = await self._call(
            "refund",
            lambda: self._sdk.api_alipay_trade_refund(
                refund_amount=amount.to_decimal_string(),
                out_trade_no=out_trade_no,
                out_request_no=refund_no,
            ),
        )
        if response.get("code") != SUCCESS:
            raise self._failure("refund", response)
        if response.get("fund_change") == "Y":
            return RefundResult(refund_no, amount, completed=True)
        # No money moved on this call: a repeat of a refund made before (its answer lost), or
        # one still in progress. Alipay's rule: the refund query says which.
        found = await self._call(
            "refund query",
            lambda: self._sdk.api_alipay_trade_fastpay_refund_query(
                refund_no, out_trade_no=out_trade_no
            ),
        )
        if found.get("code") != SUCCESS:
            raise self._failure("refund query", found)
        done = (
            found.get("refund_status") == "REFUND_SUCCESS"
            and found.get("refund_amount") == amount.to_decimal_string()
        )
        return RefundResult(refund_no, amount, completed=done)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        return self._parse_notification(body)

    def named_trade(self, body: bytes) -> str | None:
        return _named_trade(body)

    def _parse_notification(self, body: bytes) -> ProviderNotification:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as error:
            raise NotificationRejected("malformed", f"not a form body: {error}") from error
        data = dict(pairs)
        if len(data) != len(pairs):
            raise NotificationRejected("malformed", "a field appears twice")
        if not all(_FIELD_NAME.fullmatch(name) for name in data):
            raise NotificationRejected("malformed", "not a form of Alipay's fields")
        signature = data.pop("sign", "")
        if not signature:
            raise NotificationRejected("unsigned", "no sign field")
        if data.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("unsupported_algorithm", f"sign_type {data['sign_type']}")
        try:
            verified = self._sdk.verify(dict(data), signature)
        except Exception as error:  # a malformed signature is a failed verification
            raise NotificationRejected("bad_signature", str(error)) from error
        if not verified:
            raise NotificationRejected("bad_signature", "signature does not verify")
        return self._notification(data)

    def _notification(self, data: Mapping[str, str]) -> ProviderNotification:
        missing = {"notify_id", "out_trade_no", "trade_status", "total_amount", "app_id"} - set(
            data
        )
        if missing:
            raise NotificationRejected("malformed", f"missing {sorted(missing)}")
        state = _TRADE_STATES.get(data["trade_status"])
        if state is None:
            raise NotificationRejected("malformed", f"trade_status {data['trade_status']}")
        if state is TradeState.OPEN:
            # Alipay notifies the ends of a trade (paid, closed); a "still waiting" is no news
            # payonce asked for, and a signed one says the paid trade is not: refused.
            raise NotificationRejected("not_success", f"trade_status {data['trade_status']}")
        self._check_fresh(data.get("notify_time", ""))
        seller_id = data.get("seller_id", self.settings.seller_id)
        if not hmac.compare_digest(seller_id.encode(), self.settings.seller_id.encode()):
            raise NotificationRejected("merchant_mismatch", f"seller_id {seller_id}")
        currency = data.get("trans_currency") or "CNY"
        try:
            amount = Money.from_decimal_string(data["total_amount"], currency)
        except InvalidMoney as error:
            raise NotificationRejected("amount_mismatch", str(error)) from error
        paid_at = None
        if data.get("gmt_payment"):
            try:
                paid_at = parse_alipay_time(data["gmt_payment"])
            except ValueError as error:
                raise NotificationRejected(
                    "malformed", f"gmt_payment {data['gmt_payment']!r}"
                ) from error
        return ProviderNotification(
            channel=Channel.ALIPAY,
            notify_id=data["notify_id"],
            out_trade_no=data["out_trade_no"],
            provider_trade_no=data.get("trade_no") or None,
            state=_paid_then_closed(state, paid_at),
            amount=amount,
            merchant_id=data["app_id"],
            paid_at=paid_at,
        )

    def _check_fresh(self, notify_time: str) -> None:
        """Alipay stamps every attempt anew: an old stamp is a replay of an earlier delivery."""
        try:
            sent = datetime.strptime(notify_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
        except ValueError as error:
            raise NotificationRejected("malformed", f"notify_time {notify_time!r}") from error
        require_fresh(sent, self._clock.now(), what=f"notify_time {notify_time}")

    async def statement(self, day: date) -> list[StatementLine]:
        """The day's trade bill (China time): a signed download URL, then the zip it names."""
        biz = {"bill_type": "trade", "bill_date": day.isoformat()}
        response = await self._call(
            "bill", lambda: self._sdk.server_api(BILL_METHOD, biz_content=biz)
        )
        if response.get("code") != SUCCESS:
            if response.get("sub_code") == "isp.bill_not_exist":  # the day is not billed yet
                raise ProviderUnavailable(f"alipay bill of {day}: not ready")
            raise self._failure("bill", response)
        url = response.get("bill_download_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ProviderUnavailable(f"alipay bill of {day}: no bill_download_url")
        # The URL carries its own token (and expires in 30 s): fetch it at once, as it is.
        try:
            async with httpx.AsyncClient(timeout=self.settings.timeout_s) as client:
                answer = await client.get(url)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"alipay bill of {day}: {type(error).__name__}") from error
        if answer.status_code != 200:
            raise ProviderUnavailable(f"alipay bill of {day}: download {answer.status_code}")
        return parse_bill(answer.content, day)

    async def aclose(self) -> None:
        """Nothing held open: the SDK opens a connection per call."""

    def acknowledge(self) -> NotificationReply:
        return NotificationReply(200, b"success", "text/plain")

    def refuse(self, reason: str) -> NotificationReply:
        return NotificationReply(400, b"fail", "text/plain")
