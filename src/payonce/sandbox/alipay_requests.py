"""The merchant's signed Alipay requests: whose they are, whether the signature holds, terms."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from payonce.ports.clock import Clock
from payonce.sandbox.alipay_trades import OrderTerms
from payonce.sandbox.alipay_wire import (
    INVALID_ARGUMENT,
    MISSING_ARGUMENT,
    AlipayError,
    parse_china_time,
    parse_relative_timeout,
    parse_yuan,
)
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.signing import (
    REQUEST_UNSIGNED_KEYS,
    load_public_key,
    unsigned_string,
    verify_rsa2,
)

# Pay methods the merchant signs without calling Alipay: the shopper's side brings them.
PAGE_METHODS = {
    "alipay.trade.wap.pay": "QUICK_WAP_WAY",
    "alipay.trade.app.pay": "QUICK_MSECURITY_PAY",
    "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY",
}
_OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def text(biz: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = biz.get(key)
    if value is None or value == "":
        if required:
            raise AlipayError("ACQ.INVALID_PARAMETER", f"缺少参数 {key} (missing {key})")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AlipayError("ACQ.INVALID_PARAMETER", f"参数无效 {key} (invalid {key})")
    return str(value)


def biz_content(params: Mapping[str, str]) -> dict[str, Any]:
    raw = params.get("biz_content", "") or "{}"
    try:
        biz = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AlipayError(
            "isv.invalid-parameter", "biz_content 不是 JSON", kind=INVALID_ARGUMENT
        ) from exc
    if not isinstance(biz, dict):
        raise AlipayError("isv.invalid-parameter", "biz_content 不是对象", kind=INVALID_ARGUMENT)
    return biz


class MerchantApps:
    """The merchant apps registered with the sandbox's Alipay, and the checks of their requests."""

    def __init__(self, *, clock: Clock, apps: Mapping[str, AlipayCredentials]) -> None:
        self._clock = clock
        self._apps = dict(apps)
        self._keys = {
            app_id: load_public_key(app.app_public_key_pem) for app_id, app in apps.items()
        }

    @property
    def apps(self) -> Mapping[str, AlipayCredentials]:
        return self._apps

    def get(self, app_id: str) -> AlipayCredentials | None:
        return self._apps.get(app_id)

    def verify(self, params: Mapping[str, str]) -> None:
        key = self._keys[params["app_id"]]
        signature = params.get("sign", "")
        if not signature:
            raise AlipayError("isv.missing-signature", "缺少签名参数", kind=MISSING_ARGUMENT)
        if params.get("sign_type", "RSA2") != "RSA2":
            raise AlipayError("isv.invalid-signature-type", "无效的签名类型", kind=INVALID_ARGUMENT)
        message = unsigned_string(params, exclude=REQUEST_UNSIGNED_KEYS)
        if not verify_rsa2(key, message, signature):
            raise AlipayError(
                "isv.invalid-signature", "验签出错 (invalid signature)", kind=INVALID_ARGUMENT
            )

    def terms(
        self,
        app: AlipayCredentials,
        params: Mapping[str, str],
        biz: Mapping[str, Any],
        product: str,
    ) -> OrderTerms:
        out_trade_no = text(biz, "out_trade_no") or ""
        if not _OUT_TRADE_NO.fullmatch(out_trade_no):
            raise AlipayError("ACQ.INVALID_PARAMETER", "out_trade_no 无效 (letters, digits, _ - .)")
        try:
            amount = parse_yuan(text(biz, "total_amount") or "")
        except ValueError as exc:
            raise AlipayError(
                "ACQ.INVALID_PARAMETER", "total_amount 无效 (invalid amount)"
            ) from exc
        subject = text(biz, "subject") or ""
        if len(subject) > 256:
            raise AlipayError("ACQ.INVALID_PARAMETER", "subject 过长 (subject too long)")
        notify_url = params.get("notify_url") or None
        if notify_url is not None and not notify_url.startswith(("http://", "https://")):
            raise AlipayError("isv.invalid-notify-url", "notify_url 无效", kind=INVALID_ARGUMENT)
        return_url = params.get("return_url") or None
        if return_url is not None and not return_url.startswith(("http://", "https://")):
            raise AlipayError("isv.invalid-return-url", "return_url 无效", kind=INVALID_ARGUMENT)
        deadline = None
        try:
            time_expire = text(biz, "time_expire", required=False)
            timeout_express = text(biz, "timeout_express", required=False)
            if time_expire is not None:
                deadline = parse_china_time(time_expire)
            elif timeout_express is not None:
                deadline = self._clock.now() + parse_relative_timeout(timeout_express)
        except ValueError as exc:
            raise AlipayError("ACQ.INVALID_PARAMETER", f"时间参数无效 ({exc})") from exc
        return OrderTerms(
            app_id=app.app_id,
            out_trade_no=out_trade_no,
            amount=amount,
            subject=subject,
            notify_url=notify_url,
            product_code=product,
            deadline=deadline,
            return_url=return_url if product == "QUICK_WAP_WAY" else None,
        )
