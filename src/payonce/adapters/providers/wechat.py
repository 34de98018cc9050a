"""The WeChat Pay (v3) channel on wechatpayv3: native QR, H5 and app orders, query, close, refund.

The SDK is synchronous (``requests``), so its calls run in a worker thread. It runs in public-key
mode (the platform's public key and its id are configured), so it never downloads platform
certificates; it has no base-URL option and is pointed at a gateway (the real one or the
sandbox) through its core's ``_gate_way`` attribute.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt

from payonce.adapters.providers.freshness import require_fresh
from payonce.adapters.providers.strict_json import loads_strict
from payonce.adapters.providers.wechat_bill import parse_bill, verified_bill
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
SCHEME = "WECHATPAY2-SHA256-RSA2048"
# The provider_code of a close WeChat refused because the order is younger than five minutes:
# the trade is still open and payable, and a close after that age will succeed.
CLOSE_TOO_SOON = "CLOSE_TOO_SOON"
# How long WeChat honours what create answers: a code_url or prepay_id two hours, an h5_url
# five minutes.
CODE_VALIDITY = timedelta(hours=2)
H5_VALIDITY = timedelta(minutes=5)
_STATES = {
    "SUCCESS": TradeState.PAID,
    "REFUND": TradeState.REFUNDED,  # paid, then refunded (payonce refunds only in full)
    "NOTPAY": TradeState.OPEN,
    "USERPAYING": TradeState.OPEN,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.CLOSED,  # the payment failed: nothing moved, it can no longer pay
}
# Refusal codes that mean "ask again later", not "no".
_RETRYABLE = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "BANKERROR"}
_HEADERS = (
    "Wechatpay-Signature",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Serial",
    "Wechatpay-Signature-Type",
)


def _never_sent(error: BaseException) -> bool:
    """Whether the request certainly did not reach WeChat: no connection was ever made."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError) and error.args:
        return isinstance(getattr(error.args[0], "reason", None), NewConnectionError)
    return False


@dataclass(frozen=True)
class WechatSettings:
    mchid: str
    appid: str
    merchant_private_key_pem: str = field(repr=False)
    merchant_serial_no: str
    apiv3_key: str = field(repr=False)
    platform_public_key_pem: str
    platform_public_key_id: str
    gateway_url: str
    notify_url: str
    timeout_s: float = 15.0
    # H5 orders must name the shopper's IP: the one the apply request came from, or this one
    # when payonce did not see it.
    h5_payer_ip: str = "127.0.0.1"


def wechat_time(moment: datetime) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def _json_object(text: object) -> dict[str, Any] | None:
    try:
        data = json.loads(text) if isinstance(text, str | bytes) and text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _strict_json(text: bytes) -> dict[str, Any] | None:
    """A JSON object whose keys each appear once (two readers must never see two stories)."""
    try:
        data = loads_strict(text) if text else None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        return None
    return data if isinstance(data, dict) else None


def parse_wechat_time(text: str) -> datetime:
    """An RFC 3339 time with its offset (``2026-11-24T10:00:00+08:00``) as aware UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return moment.astimezone(UTC)


def _success_time(data: Mapping[str, Any]) -> datetime | None:
    """When the shopper paid (``success_time``), if the transaction says; ValueError if bad."""
    text = data.get("success_time")
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError(f"success_time {text!r}")
    return parse_wechat_time(text)


def _money(amount: object, *, key: str = "total") -> Money | None:
    """``{"total": fen, "currency": "CNY"}`` as Money; None when it is not that."""
    if not isinstance(amount, dict):
        return None
    fen = amount.get(key)
    if not isinstance(fen, int):
        return None
    try:
        return Money(fen, str(amount.get("currency", "CNY")))
    except InvalidMoney:
        return None


class WechatProvider:
    channel = Channel.WECHAT

    def __init__(self, settings: WechatSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        # notify_url is passed to each order rather than to the SDK, which would otherwise add
        # it to refunds too and ask for refund notifications payonce does not consume.
        self._sdk: Any = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE,
            mchid=settings.mchid,
            private_key=settings.merchant_private_key_pem,
            cert_serial_no=settings.merchant_serial_no,
            appid=settings.appid,
            apiv3_key=settings.apiv3_key,
            notify_url=None,
            timeout=settings.timeout_s,
            public_key=settings.platform_public_key_pem,
            public_key_id=settings.platform_public_key_id,
        )
        self._sdk._core._gate_way = settings.gateway_url.rstrip("/")

    @property
    def merchant_id(self) -> str:
        return self.settings.mchid

    @property
    def statement_zone(self) -> tzinfo:
        return CHINA

    def supports(self, platform: Platform, currency: str) -> bool:
        return currency == "CNY"

    # -- calls -----------------------------------------------------------------------------

    async def _call(
        self, what: str, call: Callable[[], tuple[int, object]]
    ) -> tuple[int, dict[str, Any]]:
        """Run one SDK call in a thread; translate every foreign failure at this edge.

        The request may have been acted upon whatever went wrong after it left (a time-out, a
        dropped connection, an answer whose signature fails): all of these are unknown outcomes.
        """
        try:
            status, text = await asyncio.to_thread(call)
        except Exception as error:
            detail = f"wechat {what}: {type(error).__name__}: {error}"
            if _never_sent(error):
                raise ProviderRetryable(detail) from error
            raise ProviderUnavailable(detail) from error
        data = _json_object(text)
        if status == 204:
            return status, {}
        if data is None:
            raise ProviderUnavailable(f"wechat {what}: {status} answer is not WeChat's JSON")
        return status, data

    @staticmethod
    def _refusal(what: str, status: int, data: Mapping[str, Any]) -> Exception:
        """A definite "no" only for a 4xx carrying WeChat's code; anything else is unknown."""
        code = str(data.get("code", ""))
        detail = f"wechat {what}: {status} {code} {data.get('message', '')}".strip()
        if not 400 <= status < 500 or status == 429 or not code or code in _RETRYABLE:
            return ProviderUnavailable(detail)
        return ProviderRejected(detail, provider_code=code)

    async def create(self, request: TradeRequest) -> CreatedTrade:
        if request.amount.currency != "CNY":
            raise ProviderRejected("wechat takes CNY only", provider_code="PARAM_ERROR")
        pay_type, key = {
            Platform.PC: (WeChatPayType.NATIVE, "code_url"),
            Platform.WAP: (WeChatPayType.H5, "h5_url"),
            Platform.APP: (WeChatPayType.APP, "prepay_id"),
        }[request.platform]
        order: dict[str, Any] = {
            "description": request.subject[:127] or request.out_trade_no,
            "out_trade_no": request.out_trade_no,
            "amount": {"total": request.amount.amount, "currency": "CNY"},
            "time_expire": wechat_time(request.pay_deadline),
            "notify_url": self.settings.notify_url,
            "pay_type": pay_type,
        }
        if request.platform is Platform.WAP:
            order["scene_info"] = {
                "payer_client_ip": request.shopper_ip or self.settings.h5_payer_ip,
                "h5_info": {"type": "Wap"},
            }
        status, data = await self._call("create", lambda: self._sdk.pay(**order))
        if status != 200:
            raise self._refusal("create", status, data)
        answer = data.get(key)
        if not isinstance(answer, str) or not answer:
            # The order may exist at WeChat; only a query can tell.
            raise ProviderUnavailable(f"wechat create: no {key} in {data}")
        return CreatedTrade(self._action(request, answer))

    def _action(self, request: TradeRequest, answer: str) -> Action:
        now = self._clock.now()
        if request.platform is Platform.PC:
            expires = min(request.pay_deadline, now + CODE_VALIDITY)
            return Action(ActionType.QR_CODE, {"qr_code": answer}, expires)
        if request.platform is Platform.WAP:
            fields = {"launch_url": answer}
            if request.return_url:
                fields["fallback_url"] = request.return_url
            return Action(
                ActionType.LAUNCH_URL, fields, min(request.pay_deadline, now + H5_VALIDITY)
            )
        expires = min(request.pay_deadline, now + CODE_VALIDITY)
        return Action(ActionType.APP_ORDER, self._app_pay_request(answer, now), expires)

    def _app_pay_request(self, prepay_id: str, now: datetime) -> dict[str, str]:
        """What the merchant's app hands the WeChat SDK (PayReq), signed with our API key."""
        timestamp = str(int(now.timestamp()))
        nonce = secrets.token_hex(16).upper()
        sign = self._sdk.sign([self.settings.appid, timestamp, nonce, prepay_id])
        return {
            "prepay_id": prepay_id,
            "appid": self.settings.appid,
            "partnerid": self.settings.mchid,
            "prepayid": prepay_id,
            "package": "Sign=WXPay",
            "noncestr": nonce,
            "timestamp": timestamp,
            "sign": str(sign),
        }

    def _snapshot(self, out_trade_no: str, data: Mapping[str, Any]) -> TradeSnapshot:
        if data.get("out_trade_no") != out_trade_no or data.get("mchid") != self.settings.mchid:
            raise ProviderUnavailable(f"wechat query of {out_trade_no}: answer about another trade")
        state = _STATES.get(str(data.get("trade_state")))
        if state is None:
            raise ProviderUnavailable(f"wechat: unknown trade_state {data.get('trade_state')}")
        money = _money(data.get("amount"))
        if money is None:
            raise ProviderUnavailable(f"wechat: bad amount in {data}")
        transaction_id = data.get("transaction_id")
        try:
            paid_at = _success_time(data)
        except ValueError as error:
            raise ProviderUnavailable(f"wechat: bad success_time in {data}") from error
        return TradeSnapshot(state, str(transaction_id) if transaction_id else None, money, paid_at)

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        status, data = await self._call("query", lambda: self._sdk.query(out_trade_no=out_trade_no))
        if status == 200:
            return self._snapshot(out_trade_no, data)
        if status == 404 and data.get("code") == "ORDER_NOT_EXIST":
            return TradeSnapshot(TradeState.NOT_FOUND)
        raise self._refusal("query", status, data)

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """Close an unpaid order; WeChat refuses for its first five minutes (CLOSE_TOO_SOON)."""
        status, data = await self._call("close", lambda: self._sdk.close(out_trade_no))
        if 200 <= status < 300:
            return TradeSnapshot(TradeState.CLOSED)
        code = data.get("code")
        if code == "ORDERPAID":  # the shopper paid first: ask what the trade is now
            return await self.query(out_trade_no)
        if code == "ORDER_CLOSED":
            return TradeSnapshot(TradeState.CLOSED)
        if code == "ORDER_NOT_EXIST":
            return TradeSnapshot(TradeState.NOT_FOUND)
        raise self._refusal("close", status, data)

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """A WeChat payment is captured when the shopper pays: nothing to collect."""
        return await self.query(out_trade_no)

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult:
        # WeChat must be told the order's total with every refund; the trade knows it.
        paid = await self.query(out_trade_no)
        if paid.amount is None:
            raise ProviderRejected(
                f"wechat refund: no trade {out_trade_no}", provider_code="ORDER_NOT_EXIST"
            )
        asked = {"refund": amount.amount, "total": paid.amount.amount, "currency": "CNY"}
        status, data = await self._call(
            "refund",
            lambda: self._sdk.refund(
                out_refund_no=refund_no, amount=asked, out_trade_no=out_trade_no
            ),
        )
        if status != 200:
            raise self._refusal("refund", status, data)
        if data.get("out_refund_no") != refund_no:
            raise ProviderUnavailable(f"wechat refund {refund_no}: answer about another refund")
        refund_status = data.get("status")
        if refund_status == "CLOSED":
            raise ProviderRejected(f"wechat refund {refund_no} closed", provider_code="CLOSED")
        refunded = _money(data.get("amount"), key="refund")
        if refunded is None:
            raise ProviderUnavailable(f"wechat refund: bad amount in {data}")
        # PROCESSING (and ABNORMAL: the shopper's account refused it) have not completed.
        return RefundResult(refund_no, refunded, completed=refund_status == "SUCCESS")

    # -- notifications ---------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        lowered = {name.lower(): value for name, value in headers.items()}
        wire = {name: lowered.get(name.lower(), "") for name in _HEADERS}
        if not wire["Wechatpay-Signature"]:
            raise NotificationRejected("unsigned", "no Wechatpay-Signature header")
        if wire["Wechatpay-Signature-Type"] != SCHEME:
            raise NotificationRejected(
                "unsupported_algorithm", f"signature type {wire['Wechatpay-Signature-Type']!r}"
            )
        # Only the configured platform key may sign (the SDK would otherwise go and download
        # certificates for an unknown serial, from inside this call).
        if not hmac.compare_digest(
            wire["Wechatpay-Serial"].encode(), self.settings.platform_public_key_id.encode()
        ):
            raise NotificationRejected("bad_signature", f"serial {wire['Wechatpay-Serial']!r}")
        envelope = _strict_json(body)
        resource = envelope.get("resource") if envelope else None
        if envelope is None or not isinstance(resource, dict):
            raise NotificationRejected("malformed", "not a notification with a resource")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected("unsupported_algorithm", str(resource.get("algorithm")))
        try:
            # Verifies the signature over "timestamp\nnonce\nbody\n", then decrypts: the
            # resource's own text, read here (duplicate keys refused) rather than by the SDK.
            plaintext = self._sdk.decrypt_callback(wire, body)
        except Exception as error:
            raise NotificationRejected("malformed", f"{type(error).__name__}: {error}") from error
        if not isinstance(plaintext, str):
            raise NotificationRejected("bad_signature", "signature or resource does not verify")
        self._check_fresh(wire["Wechatpay-Timestamp"])
        transaction = _strict_json(plaintext.encode("utf-8"))
        if transaction is None:
            raise NotificationRejected("malformed", "the resource is not a JSON object")
        if envelope.get("event_type") != "TRANSACTION.SUCCESS":
            raise NotificationRejected("unsupported_event", str(envelope.get("event_type")))
        return self._notification(str(envelope.get("id", "")), transaction)

    def named_trade(self, body: bytes) -> str | None:
        """The out_trade_no of a refused notification, if its resource decrypts: AES-GCM
        authenticates it under our APIv3 key, yet it is only a hint to ask the provider about."""
        envelope = _json_object(body)
        resource = envelope.get("resource") if envelope else None
        if not isinstance(resource, dict):
            return None
        try:
            text = aes_decrypt(
                nonce=str(resource["nonce"]),
                ciphertext=str(resource["ciphertext"]),
                associated_data=str(resource.get("associated_data") or ""),
                apiv3_key=self.settings.apiv3_key,
            )
        except Exception:  # not a sealed resource of ours: no hint
            return None
        named = (_json_object(text) or {}).get("out_trade_no")
        return named if isinstance(named, str) and 0 < len(named) <= 64 else None

    def _notification(self, notify_id: str, resource: Mapping[str, Any]) -> ProviderNotification:
        mchid, appid = str(resource.get("mchid", "")), str(resource.get("appid", ""))
        out_trade_no = resource.get("out_trade_no")
        if not notify_id or not isinstance(out_trade_no, str) or not out_trade_no:
            raise NotificationRejected("malformed", "missing id or out_trade_no")
        if not hmac.compare_digest(mchid.encode(), self.settings.mchid.encode()):
            raise NotificationRejected("merchant_mismatch", f"mchid {mchid}")
        if not hmac.compare_digest(appid.encode(), self.settings.appid.encode()):
            raise NotificationRejected("merchant_mismatch", f"appid {appid}")
        state = _STATES.get(str(resource.get("trade_state")))
        if state is not TradeState.PAID:
            raise NotificationRejected("malformed", f"trade_state {resource.get('trade_state')}")
        money = _money(resource.get("amount"))
        if money is None:
            raise NotificationRejected("amount_mismatch", f"amount {resource.get('amount')!r}")
        transaction_id = resource.get("transaction_id")
        try:
            paid_at = _success_time(resource)
        except ValueError as error:
            raise NotificationRejected(
                "malformed", f"success_time {resource.get('success_time')!r}"
            ) from error
        return ProviderNotification(
            channel=Channel.WECHAT,
            notify_id=notify_id,
            out_trade_no=out_trade_no,
            provider_trade_no=str(transaction_id) if transaction_id else None,
            state=state,
            amount=money,
            merchant_id=mchid,
            paid_at=paid_at,
        )

    def _check_fresh(self, timestamp: str) -> None:
        """WeChat signs every attempt anew: an old timestamp is a replay of an earlier one.

        The SDK's callback() verifies and decrypts, but never looks at the time.
        """
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise NotificationRejected("malformed", f"Wechatpay-Timestamp {timestamp!r}")
        sent = datetime.fromtimestamp(int(timestamp), UTC)
        require_fresh(sent, self._clock.now(), what=f"Wechatpay-Timestamp {timestamp}")

    # -- statements ------------------------------------------------------------------------

    async def statement(self, day: date) -> list[StatementLine]:
        """The day's trade bill (China time): a signed apply, then the file, checked by hash."""
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=CHINA)
        if self._clock.now() < end:  # an open day's "no bill" would read as "nothing moved"
            raise ProviderUnavailable(f"wechat bill of {day}: the day is not over")
        status, data = await self._call(
            "bill", lambda: self._sdk.trade_bill(bill_date=day.isoformat(), bill_type="ALL")
        )
        if status != 200:
            if data.get("code") == "NO_STATEMENT_EXIST":  # an ended day without a trade
                return []
            if data.get("code") == "STATEMENT_CREATING":
                raise ProviderUnavailable(f"wechat bill of {day}: not ready")
            raise self._refusal("bill", status, data)
        url = data.get("download_url")
        at = url.find("/v3/") if isinstance(url, str) else -1
        if not isinstance(url, str) or at < 0:
            raise ProviderUnavailable(f"wechat bill of {day}: no download_url")
        # The download is a signed call too: it goes to our gateway, never to another host.
        gateway = self.settings.gateway_url.rstrip("/")
        try:
            status, content = await asyncio.to_thread(self._sdk.download_bill, gateway + url[at:])
        except Exception as error:
            raise ProviderUnavailable(f"wechat bill of {day}: {type(error).__name__}") from error
        if status != 200 or not isinstance(content, bytes):
            raise ProviderUnavailable(f"wechat bill of {day}: download answered {status}")
        text = verified_bill(content, data.get("hash_type"), data.get("hash_value"))
        return parse_bill(text, day, self.settings.mchid)

    async def aclose(self) -> None:
        """Nothing held open: the SDK opens a connection per call."""

    def acknowledge(self) -> NotificationReply:
        return NotificationReply(200, b'{"code":"SUCCESS","message":"OK"}', "application/json")

    def refuse(self, reason: str) -> NotificationReply:
        body = json.dumps({"code": "FAIL", "message": reason}).encode()
        return NotificationReply(400, body, "application/json")
