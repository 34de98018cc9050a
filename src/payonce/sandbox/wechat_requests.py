"""The merchant's signed WeChat Pay calls: whose they are, whether the signature holds, terms."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payonce.sandbox.signing import load_public_key
from payonce.sandbox.wechat_credentials import WechatCredentials
from payonce.sandbox.wechat_trades import CURRENCY, TRADE_TYPES, OrderTerms
from payonce.sandbox.wechat_wire import (
    SignedRequest,
    WechatError,
    fen_field,
    param_error,
    parse_china_time,
    sign_error,
    text_field,
)

_OUT_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{6,32}$")
_OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")


def mismatch(detail: str) -> WechatError:
    return WechatError(400, "INVALID_REQUEST", f"商户号与应用不匹配 ({detail})")


def out_trade_no_of(value: str) -> str:
    if not _OUT_NO.fullmatch(value):
        raise param_error("out_trade_no: 6-32 letters, digits or _-|*@")
    return value


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str | None
    transaction_id: str | None
    out_refund_no: str
    refund: int
    total: int


class Merchants:
    """The merchants registered with the sandbox's WeChat Pay, and the checks of their calls."""

    def __init__(self, accounts: Mapping[str, WechatCredentials]) -> None:
        self._accounts = dict(accounts)
        self._keys = {
            mchid: load_public_key(account.merchant_public_key_pem)
            for mchid, account in accounts.items()
        }

    def authenticate(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> WechatCredentials:
        """The merchant whose API key signed this call, or WeChat's 401 SIGN_ERROR."""
        signed = SignedRequest.parse(headers.get("authorization", ""))
        account = self._accounts.get(signed.mchid)
        if account is None:
            raise sign_error(f"unknown mchid {signed.mchid}")
        if signed.serial_no != account.merchant_serial_no:
            raise sign_error(f"serial_no {signed.serial_no} is not this merchant's certificate")
        signed.verify(self._keys[account.mchid], method, target, body)
        platform = headers.get("wechatpay-serial")
        if platform is not None and platform != account.platform_public_key_id:
            raise param_error(f"Wechatpay-Serial {platform} is not the platform key in use")
        return account

    def terms(self, account: WechatCredentials, kind: str, data: Mapping[str, Any]) -> OrderTerms:
        """The order a create call asks for, checked as WeChat checks it."""
        appid = text_field(data, "appid", limit=32)
        mchid = text_field(data, "mchid", limit=32)
        if mchid != account.mchid:
            raise mismatch(f"mchid {mchid} is not the caller")
        if appid != account.appid:
            raise mismatch(f"appid {appid} is not bound to mchid {mchid}")
        notify_url = text_field(data, "notify_url", limit=255)
        if not notify_url.startswith(("https://", "http://")):
            raise param_error("notify_url must be an http(s) URL")
        amount = data.get("amount")
        if not isinstance(amount, dict):
            raise param_error("缺少参数 amount (missing amount)")
        currency = amount.get("currency", CURRENCY)
        if currency != CURRENCY:
            raise param_error(f"currency {currency!r}: only CNY")
        payer_ip = _check_h5_scene(data.get("scene_info")) if kind == "h5" else None
        time_expire = text_field(data, "time_expire", limit=64, required=False)
        try:
            deadline = parse_china_time(time_expire) if time_expire else None
        except ValueError as error:
            raise param_error(f"time_expire: {error}") from error
        return OrderTerms(
            mchid=mchid,
            appid=appid,
            out_trade_no=out_trade_no_of(text_field(data, "out_trade_no", limit=32)),
            trade_type=TRADE_TYPES[kind],
            description=text_field(data, "description", limit=127),
            total=fen_field(amount, "total"),
            currency=CURRENCY,
            notify_url=notify_url,
            time_expire=deadline,
            attach=text_field(data, "attach", limit=128, required=False),
            payer_client_ip=payer_ip,
        )

    @staticmethod
    def refund(data: Mapping[str, Any]) -> RefundRequest:
        out_trade_no = text_field(data, "out_trade_no", limit=32, required=False) or None
        transaction_id = text_field(data, "transaction_id", limit=32, required=False) or None
        if out_trade_no is None and transaction_id is None:
            raise param_error("out_trade_no or transaction_id is required")
        out_refund_no = text_field(data, "out_refund_no", limit=64)
        if not _OUT_REFUND_NO.fullmatch(out_refund_no):
            raise param_error("out_refund_no: letters, digits or _-|*@")
        amount = data.get("amount")
        if not isinstance(amount, dict):
            raise param_error("缺少参数 amount (missing amount)")
        if amount.get("currency", CURRENCY) != CURRENCY:
            raise param_error("amount.currency: only CNY")
        return RefundRequest(
            out_trade_no=out_trade_no,
            transaction_id=transaction_id,
            out_refund_no=out_refund_no,
            refund=fen_field(amount, "refund"),
            total=fen_field(amount, "total"),
        )


def _check_h5_scene(scene: object) -> str:
    """H5 payments name the shopper's IP and the kind of page they pay from; the IP."""
    if not isinstance(scene, dict) or not isinstance(scene.get("payer_client_ip"), str):
        raise param_error("scene_info.payer_client_ip is required for H5")
    h5_info = scene.get("h5_info")
    if not isinstance(h5_info, dict) or not h5_info.get("type"):
        raise param_error("scene_info.h5_info.type is required for H5")
    payer_ip: str = scene["payer_client_ip"]
    return payer_ip
