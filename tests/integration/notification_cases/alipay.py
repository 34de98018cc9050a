"""The notification matrix's Alipay cases: forged, tampered, replayed and garbled variants of
its genuine notification, each with the reason payonce must refuse it for."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

from payonce.sandbox.alipay_wire import china_time
from payonce.sandbox.signing import (
    NOTIFICATION_UNSIGNED_KEYS,
    load_private_key,
    sign_rsa2,
    unsigned_string,
)
from tests.integration.notification_cases.common import (
    BIG_FIELD,
    FUTURE,
    HUGE,
    STALE,
    UNKNOWN_TRADE,
    Case,
    Forged,
    Scene,
    flip,
    without,
)


def _form(scene: Scene) -> dict[str, str]:
    return dict(parse_qsl(scene.genuine.body.decode("utf-8"), keep_blank_values=True))


def _alipay_sign(scene: Scene, form: Mapping[str, str], *, pem: str | None = None) -> str:
    unsigned = {k: v for k, v in form.items() if k != "sign"}
    key = load_private_key(pem or scene.keys.alipay.alipay_private_key_pem)
    return sign_rsa2(key, unsigned_string(unsigned, exclude=NOTIFICATION_UNSIGNED_KEYS))


def _alipay(form: Mapping[str, str], scene: Scene, endpoint: str | None = None) -> Forged:
    return Forged(scene.genuine.headers, urlencode(form).encode("utf-8"), endpoint)


def alipay_tampered(**changes: str) -> Callable[[Scene], Forged]:
    """Fields changed after signing (the genuine signature kept)."""
    return lambda s: _alipay({**_form(s), **changes}, s)


def alipay_resigned(**changes: str) -> Callable[[Scene], Forged]:
    """Fields changed, then validly signed with Alipay's key."""

    def build(s: Scene) -> Forged:
        form = {**_form(s), **changes}
        return _alipay({**form, "sign": _alipay_sign(s, form)}, s)

    return build


def alipay_resigned_fn(
    change: Callable[[Scene, dict[str, str]], None],
) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        form = _form(s)
        change(s, form)
        return _alipay({**form, "sign": _alipay_sign(s, form)}, s)

    return build


def _alipay_sig(change: Callable[[str], str]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        form = _form(s)
        return _alipay({**form, "sign": change(form["sign"])}, s)

    return build


def _alipay_raw(make: Callable[[Scene], bytes]) -> Callable[[Scene], Forged]:
    return lambda s: Forged(s.genuine.headers, make(s))


ALIPAY: list[Case] = [
    Case("sig-flipped-byte", "bad_signature", _alipay_sig(flip)),
    Case("sig-truncated", "bad_signature", _alipay_sig(lambda sig: sig[: len(sig) // 2])),
    Case("sig-empty", "unsigned", _alipay_sig(lambda sig: "")),
    Case("sig-missing", "unsigned", lambda s: _alipay(without(_form(s), "sign"), s)),
    Case("sig-not-base64", "bad_signature", _alipay_sig(lambda sig: "%%not-base64%%")),
    Case(
        "sig-other-key",
        "bad_signature",
        lambda s: _alipay(
            {**_form(s), "sign": _alipay_sign(s, _form(s), pem=s.keys.alipay.app_private_key_pem)},
            s,
        ),
    ),
    Case(
        "sig-of-another-body",
        "bad_signature",
        lambda s: _alipay(
            {**_form(s), "sign": _alipay_sign(s, {**_form(s), "total_amount": "0.01"})}, s
        ),
    ),
    Case("tampered-amount", "bad_signature", alipay_tampered(total_amount="0.01")),
    Case("tampered-currency", "bad_signature", alipay_tampered(trans_currency="USD")),
    Case("tampered-out-trade-no", "bad_signature", alipay_tampered(out_trade_no=UNKNOWN_TRADE)),
    Case("tampered-trade-no", "bad_signature", alipay_tampered(trade_no="2026" + "1" * 24)),
    Case("tampered-status", "bad_signature", alipay_tampered(trade_status="TRADE_FINISHED")),
    Case("tampered-seller-id", "bad_signature", alipay_tampered(seller_id="2088999999999999")),
    Case("tampered-app-id", "bad_signature", alipay_tampered(app_id="2021000999999999")),
    Case("tampered-notify-id", "bad_signature", alipay_tampered(notify_id="forged-notify-id")),
    Case(
        "tampered-notify-time",
        "bad_signature",
        lambda s: alipay_tampered(notify_time=china_time(s.now - timedelta(seconds=30)))(s),
    ),
    Case("resigned-amount", "amount_mismatch", alipay_resigned(total_amount="40.98")),
    Case("resigned-currency", "currency_mismatch", alipay_resigned(trans_currency="USD")),
    Case(
        "resigned-other-seller", "merchant_mismatch", alipay_resigned(seller_id="2088999999999999")
    ),
    Case("resigned-other-app", "merchant_mismatch", alipay_resigned(app_id="2021000999999999")),
    Case("resigned-unknown-trade", "unknown_trade", alipay_resigned(out_trade_no=UNKNOWN_TRADE)),
    Case(
        "resigned-other-order",
        "amount_mismatch",
        alipay_resigned_fn(lambda s, f: f.update(out_trade_no=s.other_out_trade_no)),
    ),
    Case("resigned-not-success", "not_success", alipay_resigned(trade_status="WAIT_BUYER_PAY")),
    Case("resigned-unknown-status", "malformed", alipay_resigned(trade_status="TRADE_PENDING")),
    Case(
        "resigned-no-notify-id",
        "malformed",
        alipay_resigned_fn(lambda s, f: f.pop("notify_id")),
    ),
    Case("sign-type-rsa", "unsupported_algorithm", alipay_resigned(sign_type="RSA")),
    Case("sign-type-sm2", "unsupported_algorithm", alipay_resigned(sign_type="SM2")),
    Case(
        "stale-notify-time",
        "stale",
        alipay_resigned_fn(lambda s, f: f.update(notify_time=china_time(s.now - STALE))),
    ),
    Case(
        "future-notify-time",
        "stale",
        alipay_resigned_fn(lambda s, f: f.update(notify_time=china_time(s.now + FUTURE))),
    ),
    Case("garbled-notify-time", "malformed", alipay_resigned(notify_time="yesterday")),
    Case("body-json", "malformed", _alipay_raw(lambda s: json.dumps(_form(s)).encode())),
    Case("body-empty", "unsigned", _alipay_raw(lambda s: b"")),
    Case(
        "duplicate-amount",
        "malformed",
        _alipay_raw(lambda s: s.genuine.body + b"&total_amount=0.01"),
    ),
    Case(
        "wrong-encoding",
        "malformed",
        _alipay_raw(lambda s: s.genuine.body.decode("utf-8").encode("utf-16")),
    ),
    Case("huge-field-unsigned", "bad_signature", alipay_tampered(body="x" * BIG_FIELD)),
    Case("huge-body", "too_large", _alipay_raw(lambda s: s.genuine.body + b"&a=" + b"x" * HUGE)),
    Case(
        "posted-to-wechat",
        "unsigned",
        lambda s: Forged(s.genuine.headers, s.genuine.body, endpoint="wechat"),
    ),
]


# -- WeChat Pay: a signed JSON envelope around an AES-GCM sealed transaction ------------------
