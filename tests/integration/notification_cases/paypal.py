"""The notification matrix's PayPal cases: forged, tampered, replayed and garbled variants of
its genuine notification, each with the reason payonce must refuse it for."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from payonce.sandbox.signing import (
    load_private_key,
    sign_rsa2,
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
    set_in,
)


def _event(scene: Scene) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(scene.genuine.body)
    return event


def _unit(event: dict[str, Any]) -> dict[str, Any]:
    unit: dict[str, Any] = event["resource"]["purchase_units"][0]
    return unit


def _paypal_signature(
    scene: Scene,
    headers: Mapping[str, str],
    body: bytes,
    *,
    webhook_id: str | None = None,
    pem: str | None = None,
) -> str:
    key = load_private_key(pem or scene.keys.paypal.webhook_private_key_pem)
    message = "|".join(
        (
            headers["PAYPAL-TRANSMISSION-ID"],
            headers["PAYPAL-TRANSMISSION-TIME"],
            webhook_id or scene.keys.paypal.webhook_id,
            str(zlib.crc32(body) & 0xFFFFFFFF),
        )
    )
    return sign_rsa2(key, message)


def _paypal_signed(
    scene: Scene, body: bytes, *, at: str | None = None, **signing: Any
) -> dict[str, str]:
    headers = dict(scene.genuine.headers)
    if at is not None:
        headers["PAYPAL-TRANSMISSION-TIME"] = at
    headers["PAYPAL-TRANSMISSION-SIG"] = _paypal_signature(scene, headers, body, **signing)
    return headers


def paypal_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def paypal_resigned(change: Callable[[Scene, dict[str, Any]], None]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        event = _event(s)
        change(s, event)
        body = json.dumps(event).encode()
        return Forged(_paypal_signed(s, body), body)

    return build


def _paypal_body(make: Callable[[Scene], bytes]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        body = make(s)
        return Forged(_paypal_signed(s, body), body)

    return build


def _paypal_tampered(change: Callable[[dict[str, Any]], None]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        event = _event(s)
        change(event)
        return Forged(s.genuine.headers, json.dumps(event, separators=(",", ":")).encode())

    return build


def _paypal_headers(change: Callable[[dict[str, str]], None]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        headers = dict(s.genuine.headers)
        change(headers)
        return Forged(headers, s.genuine.body)

    return build


def _both_ids(number: Callable[[Scene], str]) -> Callable[[Scene, dict[str, Any]], None]:
    def change(s: Scene, event: dict[str, Any]) -> None:
        _unit(event).update(invoice_id=number(s), custom_id=number(s))

    return change


PSIG = "PAYPAL-TRANSMISSION-SIG"
PAYPAL: list[Case] = [
    Case(
        "sig-flipped-byte",
        "bad_signature",
        _paypal_headers(lambda h: set_in(h, PSIG, flip(h[PSIG]))),
    ),
    Case(
        "sig-truncated", "bad_signature", _paypal_headers(lambda h: set_in(h, PSIG, h[PSIG][:40]))
    ),
    Case("sig-empty", "unsigned", _paypal_headers(lambda h: set_in(h, PSIG, ""))),
    Case("sig-missing", "unsigned", _paypal_headers(lambda h: h.pop(PSIG))),
    Case("sig-not-base64", "bad_signature", _paypal_headers(lambda h: set_in(h, PSIG, "%%%"))),
    Case(
        "sig-other-key",
        "bad_signature",
        lambda s: Forged(
            _paypal_signed(s, s.genuine.body, pem=s.keys.alipay.alipay_private_key_pem),
            s.genuine.body,
        ),
    ),
    Case(
        "sig-of-another-body",
        "bad_signature",
        lambda s: Forged(
            {**s.genuine.headers, PSIG: _paypal_signed(s, s.genuine.body + b" ")[PSIG]},
            s.genuine.body,
        ),
    ),
    Case(
        "signed-for-another-webhook",
        "bad_signature",
        lambda s: Forged(_paypal_signed(s, s.genuine.body, webhook_id="WH-OTHER"), s.genuine.body),
    ),
    Case(
        "transmission-id-missing",
        "unsigned",
        _paypal_headers(lambda h: h.pop("PAYPAL-TRANSMISSION-ID")),
    ),
    Case(
        "transmission-time-missing",
        "unsigned",
        _paypal_headers(lambda h: h.pop("PAYPAL-TRANSMISSION-TIME")),
    ),
    Case(
        "auth-algo-sha1",
        "unsupported_algorithm",
        _paypal_headers(lambda h: set_in(h, "PAYPAL-AUTH-ALGO", "SHA1withRSA")),
    ),
    Case(
        "auth-algo-missing",
        "unsupported_algorithm",
        _paypal_headers(lambda h: h.pop("PAYPAL-AUTH-ALGO")),
    ),
    Case(
        "cert-url-foreign",
        "bad_signature",
        _paypal_headers(
            lambda h: set_in(
                h, "PAYPAL-CERT-URL", "https://certs.example.com/v1/notifications/certs/CERT-1"
            )
        ),
    ),
    Case(
        "cert-url-other-path",
        "bad_signature",
        _paypal_headers(
            lambda h: set_in(
                h, "PAYPAL-CERT-URL", h["PAYPAL-CERT-URL"].replace("/notifications/certs/", "/x/")
            )
        ),
    ),
    Case(
        "tampered-amount",
        "bad_signature",
        _paypal_tampered(lambda e: set_in(_unit(e)["amount"], "value", "0.01")),
    ),
    Case(
        "tampered-currency",
        "bad_signature",
        _paypal_tampered(lambda e: set_in(_unit(e)["amount"], "currency_code", "EUR")),
    ),
    Case(
        "tampered-invoice",
        "bad_signature",
        _paypal_tampered(lambda e: _unit(e).update(invoice_id="X", custom_id="X")),
    ),
    Case(
        "tampered-payee",
        "bad_signature",
        _paypal_tampered(lambda e: set_in(_unit(e), "payee", {"merchant_id": "FOREIGN"})),
    ),
    Case("tampered-event-id", "bad_signature", _paypal_tampered(lambda e: set_in(e, "id", "WH-X"))),
    Case(
        "tampered-transmission-id",
        "bad_signature",
        _paypal_headers(lambda h: set_in(h, "PAYPAL-TRANSMISSION-ID", "forged-transmission")),
    ),
    Case(
        "resigned-amount",
        "amount_mismatch",
        paypal_resigned(lambda s, e: set_in(_unit(e)["amount"], "value", "40.98")),
    ),
    Case(
        "resigned-currency",
        "currency_mismatch",
        paypal_resigned(lambda s, e: set_in(_unit(e)["amount"], "currency_code", "EUR")),
    ),
    Case(
        "resigned-other-payee",
        "merchant_mismatch",
        paypal_resigned(lambda s, e: set_in(_unit(e), "payee", {"merchant_id": "FOREIGN0001"})),
    ),
    Case(
        "resigned-unknown-trade",
        "unknown_trade",
        paypal_resigned(_both_ids(lambda s: UNKNOWN_TRADE)),
    ),
    Case(
        "resigned-other-order",
        "trade_mismatch",
        paypal_resigned(_both_ids(lambda s: s.other_out_trade_no)),
    ),
    Case(
        "resigned-invoice-custom-differ",
        "malformed",
        paypal_resigned(lambda s, e: set_in(_unit(e), "custom_id", UNKNOWN_TRADE)),
    ),
    Case(
        "resigned-not-approved",
        "not_success",
        paypal_resigned(lambda s, e: set_in(e["resource"], "status", "CREATED")),
    ),
    Case(
        "resigned-no-resource",
        "malformed",
        paypal_resigned(lambda s, e: e.pop("resource")),
    ),
    Case(
        "stale-transmission-time",
        "stale",
        lambda s: Forged(
            _paypal_signed(s, s.genuine.body, at=paypal_time(s.now - STALE)), s.genuine.body
        ),
    ),
    Case(
        "future-transmission-time",
        "stale",
        lambda s: Forged(
            _paypal_signed(s, s.genuine.body, at=paypal_time(s.now + FUTURE)), s.genuine.body
        ),
    ),
    Case(
        "transmission-time-without-zone",
        "malformed",
        lambda s: Forged(
            _paypal_signed(s, s.genuine.body, at=s.now.strftime("%Y-%m-%dT%H:%M:%S")),
            s.genuine.body,
        ),
    ),
    Case("body-not-json", "malformed", _paypal_body(lambda s: b"event_type=APPROVED")),
    Case(
        "duplicate-key",
        "malformed",
        _paypal_body(lambda s: b'{"id":"WH-FORGED",' + s.genuine.body[1:]),
    ),
    Case(
        "wrong-encoding",
        "malformed",
        _paypal_body(lambda s: s.genuine.body.decode().encode("utf-16")),
    ),
    Case(
        "huge-field-unsigned",
        "bad_signature",
        _paypal_tampered(lambda e: set_in(e, "summary", "x" * BIG_FIELD)),
    ),
    Case("huge-body", "too_large", lambda s: Forged(s.genuine.headers, b" " * HUGE)),
    Case(
        "posted-to-wechat",
        "unsigned",
        lambda s: Forged(s.genuine.headers, s.genuine.body, endpoint="wechat"),
    ),
]


# -- Boleto: JSON signed with HMAC-SHA256 over "<t>.<body>" -----------------------------------
