"""The notification matrix's Boleto cases: forged, tampered, replayed and garbled variants of
its genuine notification, each with the reason payonce must refuse it for."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from payonce.sandbox.boleto_wire import signature as boleto_signature
from tests.integration.notification_cases.common import (
    BIG_FIELD,
    FUTURE,
    HUGE,
    STALE,
    UNKNOWN_TRADE,
    Case,
    Forged,
    Scene,
    flip_hex,
    set_in,
)

BSIG = "X-Boleto-Signature"


def _boleto_event(scene: Scene) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(scene.genuine.body)
    return event


def _boleto_header(
    scene: Scene, body: bytes, *, at: datetime | None = None, secret: str | None = None
) -> dict[str, str]:
    stamp = int((at or scene.now).timestamp())
    digest = boleto_signature(secret or scene.keys.boleto.webhook_secret, stamp, body)
    return {"Content-Type": "application/json", BSIG: f"t={stamp},v1={digest}"}


def _genuine_parts(scene: Scene) -> tuple[str, str]:
    parts = dict(part.split("=", 1) for part in scene.genuine.headers[BSIG].split(","))
    return parts["t"], parts["v1"]


def _boleto_sig(make: Callable[[str, str], str]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        stamp, v1 = _genuine_parts(s)
        return Forged({**s.genuine.headers, BSIG: make(stamp, v1)}, s.genuine.body)

    return build


def boleto_resigned(change: Callable[[Scene, dict[str, Any]], None]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        event = _boleto_event(s)
        change(s, event)
        body = json.dumps(event).encode()
        return Forged(_boleto_header(s, body), body)

    return build


def _boleto_body(make: Callable[[Scene], bytes]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        body = make(s)
        return Forged(_boleto_header(s, body), body)

    return build


def _boleto_tampered(change: Callable[[dict[str, Any]], None]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        event = _boleto_event(s)
        change(event)
        return Forged(s.genuine.headers, json.dumps(event).encode())

    return build


def _charge(change: Callable[[Scene, dict[str, Any]], None]) -> Callable[[Scene], Forged]:
    return boleto_resigned(lambda s, e: change(s, e["data"]))


BOLETO: list[Case] = [
    Case("sig-flipped-char", "bad_signature", _boleto_sig(lambda t, v: f"t={t},v1={flip_hex(v)}")),
    Case("sig-truncated", "bad_signature", _boleto_sig(lambda t, v: f"t={t},v1={v[:32]}")),
    Case("sig-empty", "bad_signature", _boleto_sig(lambda t, v: f"t={t},v1=")),
    Case(
        "sig-missing",
        "unsigned",
        lambda s: Forged({"Content-Type": "application/json"}, s.genuine.body),
    ),
    Case(
        "sig-other-secret",
        "bad_signature",
        lambda s: Forged(_boleto_header(s, s.genuine.body, secret="whsec_other"), s.genuine.body),
    ),
    Case(
        "sig-of-another-body",
        "bad_signature",
        lambda s: Forged(_boleto_header(s, s.genuine.body + b" "), s.genuine.body),
    ),
    Case("scheme-v0-only", "unsupported_algorithm", _boleto_sig(lambda t, v: f"t={t},v0={v}")),
    Case("scheme-v2-only", "unsupported_algorithm", _boleto_sig(lambda t, v: f"t={t},v2={v}")),
    Case("timestamp-missing", "malformed", _boleto_sig(lambda t, v: f"v1={v}")),
    Case("timestamp-twice", "malformed", _boleto_sig(lambda t, v: f"t={t},t={t},v1={v}")),
    Case("timestamp-garbled", "malformed", _boleto_sig(lambda t, v: f"t=soon,v1={v}")),
    Case(
        "tampered-timestamp",
        "bad_signature",
        _boleto_sig(lambda t, v: f"t={int(t) - 1},v1={v}"),
    ),
    Case(
        "tampered-amount",
        "bad_signature",
        _boleto_tampered(lambda e: set_in(e["data"], "amount", 1)),
    ),
    Case(
        "tampered-currency",
        "bad_signature",
        _boleto_tampered(lambda e: set_in(e["data"], "currency", "USD")),
    ),
    Case(
        "tampered-code",
        "bad_signature",
        _boleto_tampered(lambda e: set_in(e["data"], "code", UNKNOWN_TRADE)),
    ),
    Case(
        "tampered-status",
        "bad_signature",
        _boleto_tampered(lambda e: set_in(e["data"], "status", "pending")),
    ),
    Case(
        "tampered-account",
        "bad_signature",
        _boleto_tampered(lambda e: set_in(e, "account", {"id": "acc_Foreign"})),
    ),
    Case(
        "tampered-event-id", "bad_signature", _boleto_tampered(lambda e: set_in(e, "id", "hook_x"))
    ),
    Case(
        "resigned-amount",
        "amount_mismatch",
        _charge(lambda s, c: c.update(amount=c["amount"] + 100, paid_amount=c["amount"] + 100)),
    ),
    Case(
        "resigned-paid-less",
        "amount_mismatch",
        _charge(lambda s, c: set_in(c, "paid_amount", c["amount"] - 1)),
    ),
    Case(
        "resigned-currency", "currency_mismatch", _charge(lambda s, c: set_in(c, "currency", "USD"))
    ),
    Case(
        "resigned-other-account",
        "merchant_mismatch",
        boleto_resigned(lambda s, e: set_in(e, "account", {"id": "acc_ForeignMerchant0"})),
    ),
    Case(
        "resigned-unknown-trade",
        "unknown_trade",
        _charge(lambda s, c: set_in(c, "code", UNKNOWN_TRADE)),
    ),
    Case(
        "resigned-other-order",
        "trade_mismatch",
        _charge(lambda s, c: set_in(c, "code", s.other_out_trade_no)),
    ),
    Case(
        "resigned-not-success", "not_success", _charge(lambda s, c: set_in(c, "status", "pending"))
    ),
    Case("resigned-unknown-status", "malformed", _charge(lambda s, c: set_in(c, "status", "lost"))),
    Case(
        "resigned-other-event",
        "unsupported_event",
        boleto_resigned(lambda s, e: set_in(e, "type", "transfer.created")),
    ),
    Case("resigned-no-id", "malformed", boleto_resigned(lambda s, e: e.pop("id"))),
    Case(
        "stale-timestamp",
        "stale",
        lambda s: Forged(_boleto_header(s, s.genuine.body, at=s.now - STALE), s.genuine.body),
    ),
    Case(
        "future-timestamp",
        "stale",
        lambda s: Forged(_boleto_header(s, s.genuine.body, at=s.now + FUTURE), s.genuine.body),
    ),
    Case("body-not-json", "malformed", _boleto_body(lambda s: b"type=charge.paid")),
    Case("body-array", "malformed", _boleto_body(lambda s: b"[" + s.genuine.body + b"]")),
    Case(
        "duplicate-key",
        "malformed",
        _boleto_body(lambda s: b'{"id":"hook_forged",' + s.genuine.body[1:]),
    ),
    Case(
        "wrong-encoding",
        "malformed",
        _boleto_body(lambda s: s.genuine.body.decode().encode("utf-16")),
    ),
    Case(
        "huge-field-unsigned",
        "bad_signature",
        _boleto_tampered(lambda e: set_in(e, "note", "x" * BIG_FIELD)),
    ),
    Case("huge-body", "too_large", lambda s: Forged(s.genuine.headers, b" " * HUGE)),
    Case(
        "posted-to-paypal",
        "unsigned",
        lambda s: Forged(s.genuine.headers, s.genuine.body, endpoint="paypal"),
    ),
]
