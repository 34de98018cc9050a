"""The notification matrix's WeChat Pay cases: forged, tampered, replayed and garbled variants of
its genuine notification, each with the reason payonce must refuse it for."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payonce.sandbox.signing import (
    load_private_key,
    sign_rsa2,
)
from payonce.sandbox.wechat_wire import dumps, encrypt_resource, signed_headers
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


def _envelope(scene: Scene) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(scene.genuine.body)
    return envelope


def _transaction(scene: Scene) -> dict[str, Any]:
    resource = _envelope(scene)["resource"]
    plain = AESGCM(scene.keys.wechat.apiv3_key.encode()).decrypt(
        resource["nonce"].encode(),
        base64.b64decode(resource["ciphertext"]),
        resource["associated_data"].encode(),
    )
    transaction: dict[str, Any] = json.loads(plain)
    return transaction


def _seal(scene: Scene, plaintext: bytes, *, key: str | None = None) -> dict[str, str]:
    resource = _envelope(scene)["resource"]
    sealed = encrypt_resource(
        key or scene.keys.wechat.apiv3_key,
        plaintext,
        nonce="FORGEDNONCE0",
        associated_data=resource["associated_data"],
    )
    return {"original_type": "transaction", **sealed}


def _wechat_signed(
    scene: Scene, body: bytes, *, at: datetime | None = None, pem: str | None = None
) -> dict[str, str]:
    key = load_private_key(pem or scene.keys.wechat.platform_private_key_pem)
    headers = signed_headers(
        key, scene.keys.wechat.platform_public_key_id, body, at=at or scene.now, nonce="N" * 32
    )
    return {"Content-Type": "application/json", **headers}


def wechat_resigned(
    change: Callable[[Scene, dict[str, Any], dict[str, Any]], None],
) -> Callable[[Scene], Forged]:
    """The transaction and envelope changed, resealed with our APIv3 key and validly signed."""

    def build(s: Scene) -> Forged:
        envelope, transaction = _envelope(s), _transaction(s)
        change(s, envelope, transaction)
        envelope["resource"] = _seal(s, dumps(transaction))
        body = dumps(envelope)
        return Forged(_wechat_signed(s, body), body)

    return build


def _wechat_body(make: Callable[[Scene], bytes]) -> Callable[[Scene], Forged]:
    """A body of our own, validly signed as it is."""

    def build(s: Scene) -> Forged:
        body = make(s)
        return Forged(_wechat_signed(s, body), body)

    return build


def _wechat_headers(change: Callable[[dict[str, str]], None]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        headers = dict(s.genuine.headers)
        change(headers)
        return Forged(headers, s.genuine.body)

    return build


def _wechat_tampered(change: Callable[[dict[str, Any]], None]) -> Callable[[Scene], Forged]:
    """The envelope changed after signing (the genuine headers kept)."""

    def build(s: Scene) -> Forged:
        envelope = _envelope(s)
        change(envelope)
        return Forged(s.genuine.headers, dumps(envelope))

    return build


def _flip_ciphertext(envelope: dict[str, Any]) -> None:
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[0] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()


def _wechat_resigned_timestamp(stamp: Callable[[Scene], str]) -> Callable[[Scene], Forged]:
    def build(s: Scene) -> Forged:
        headers = _wechat_signed(s, s.genuine.body)
        key = load_private_key(s.keys.wechat.platform_private_key_pem)
        headers["Wechatpay-Timestamp"] = stamp(s)
        message = f"{stamp(s)}\n{headers['Wechatpay-Nonce']}\n{s.genuine.body.decode()}\n"
        headers["Wechatpay-Signature"] = sign_rsa2(key, message)
        return Forged(headers, s.genuine.body)

    return build


SIG = "Wechatpay-Signature"
WECHAT: list[Case] = [
    Case(
        "sig-flipped-byte", "bad_signature", _wechat_headers(lambda h: set_in(h, SIG, flip(h[SIG])))
    ),
    Case("sig-truncated", "bad_signature", _wechat_headers(lambda h: set_in(h, SIG, h[SIG][:40]))),
    Case("sig-empty", "unsigned", _wechat_headers(lambda h: set_in(h, SIG, ""))),
    Case("sig-missing", "unsigned", _wechat_headers(lambda h: h.pop(SIG))),
    Case("sig-not-base64", "bad_signature", _wechat_headers(lambda h: set_in(h, SIG, "%%%"))),
    Case(
        "sig-other-key",
        "bad_signature",
        lambda s: Forged(
            _wechat_signed(s, s.genuine.body, pem=s.keys.wechat.merchant_private_key_pem),
            s.genuine.body,
        ),
    ),
    Case(
        "sig-of-another-body",
        "bad_signature",
        lambda s: Forged(_wechat_signed(s, s.genuine.body + b" "), s.genuine.body),
    ),
    Case(
        "serial-unknown",
        "bad_signature",
        _wechat_headers(lambda h: set_in(h, "Wechatpay-Serial", "PUB_KEY_ID_0114232134912410")),
    ),
    Case("serial-missing", "bad_signature", _wechat_headers(lambda h: h.pop("Wechatpay-Serial"))),
    Case(
        "signature-type-sm2",
        "unsupported_algorithm",
        _wechat_headers(lambda h: set_in(h, "Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3")),
    ),
    Case(
        "signature-type-missing",
        "unsupported_algorithm",
        _wechat_headers(lambda h: h.pop("Wechatpay-Signature-Type")),
    ),
    Case(
        "tampered-timestamp",
        "bad_signature",
        _wechat_headers(
            lambda h: set_in(h, "Wechatpay-Timestamp", str(int(h["Wechatpay-Timestamp"]) - 1))
        ),
    ),
    Case(
        "tampered-nonce",
        "bad_signature",
        _wechat_headers(lambda h: set_in(h, "Wechatpay-Nonce", "X")),
    ),
    Case("tampered-id", "bad_signature", _wechat_tampered(lambda e: set_in(e, "id", "forged-id"))),
    Case(
        "tampered-event-type",
        "bad_signature",
        _wechat_tampered(lambda e: set_in(e, "event_type", "REFUND.SUCCESS")),
    ),
    Case("tampered-ciphertext", "bad_signature", _wechat_tampered(_flip_ciphertext)),
    Case(
        "tampered-resource-nonce",
        "bad_signature",
        _wechat_tampered(lambda e: set_in(e["resource"], "nonce", "AAAAAAAAAAAA")),
    ),
    Case(
        "resigned-amount",
        "amount_mismatch",
        wechat_resigned(lambda s, e, t: set_in(t["amount"], "total", t["amount"]["total"] + 100)),
    ),
    Case(
        "resigned-currency",
        "currency_mismatch",
        wechat_resigned(lambda s, e, t: set_in(t["amount"], "currency", "USD")),
    ),
    Case(
        "resigned-other-mchid",
        "merchant_mismatch",
        wechat_resigned(lambda s, e, t: set_in(t, "mchid", "1900009999")),
    ),
    Case(
        "resigned-other-appid",
        "merchant_mismatch",
        wechat_resigned(lambda s, e, t: set_in(t, "appid", "wx0000000000000000")),
    ),
    Case(
        "resigned-unknown-trade",
        "unknown_trade",
        wechat_resigned(lambda s, e, t: set_in(t, "out_trade_no", UNKNOWN_TRADE)),
    ),
    Case(
        "resigned-other-order",
        "amount_mismatch",
        wechat_resigned(lambda s, e, t: set_in(t, "out_trade_no", s.other_out_trade_no)),
    ),
    Case(
        "resigned-not-success",
        "malformed",
        wechat_resigned(lambda s, e, t: set_in(t, "trade_state", "NOTPAY")),
    ),
    Case(
        "resigned-other-event",
        "unsupported_event",
        wechat_resigned(lambda s, e, t: set_in(e, "event_type", "TRANSACTION.CLOSED")),
    ),
    Case(
        "resigned-no-id",
        "malformed",
        wechat_resigned(lambda s, e, t: e.pop("id")),
    ),
    Case(
        "sealed-with-another-key",
        "bad_signature",
        _wechat_body(
            lambda s: dumps(
                {**_envelope(s), "resource": _seal(s, dumps(_transaction(s)), key="k" * 32)}
            )
        ),
    ),
    Case(
        "resource-algorithm-unknown",
        "unsupported_algorithm",
        _wechat_body(
            lambda s: dumps(
                {
                    **_envelope(s),
                    "resource": {**_envelope(s)["resource"], "algorithm": "AEAD_AES_128_GCM"},
                }
            )
        ),
    ),
    Case(
        "stale-timestamp",
        "stale",
        lambda s: Forged(_wechat_signed(s, s.genuine.body, at=s.now - STALE), s.genuine.body),
    ),
    Case(
        "future-timestamp",
        "stale",
        lambda s: Forged(_wechat_signed(s, s.genuine.body, at=s.now + FUTURE), s.genuine.body),
    ),
    Case("garbled-timestamp", "malformed", _wechat_resigned_timestamp(lambda s: "soon")),
    Case("body-not-json", "malformed", _wechat_body(lambda s: b"id=1&resource=2")),
    Case(
        "body-no-resource",
        "malformed",
        _wechat_body(lambda s: dumps({k: v for k, v in _envelope(s).items() if k != "resource"})),
    ),
    Case(
        "duplicate-envelope-key",
        "malformed",
        _wechat_body(lambda s: b'{"id":"forged",' + s.genuine.body[1:]),
    ),
    Case(
        "duplicate-transaction-key",
        "malformed",
        _wechat_body(
            lambda s: dumps(
                {
                    **_envelope(s),
                    "resource": _seal(
                        s,
                        b'{"out_trade_no":"'
                        + UNKNOWN_TRADE.encode()
                        + b'",'
                        + dumps(_transaction(s))[1:],
                    ),
                }
            )
        ),
    ),
    Case(
        "wrong-encoding",
        "malformed",
        lambda s: Forged(s.genuine.headers, s.genuine.body.decode().encode("utf-16")),
    ),
    Case(
        "huge-field-unsigned",
        "bad_signature",
        _wechat_tampered(lambda e: set_in(e, "summary", "x" * BIG_FIELD)),
    ),
    Case("huge-body", "too_large", lambda s: Forged(s.genuine.headers, b" " * HUGE)),
    Case(
        "posted-to-boleto",
        "unsigned",
        lambda s: Forged(s.genuine.headers, s.genuine.body, endpoint="boleto"),
    ),
]


# -- PayPal: a JSON event signed over transmission id|time|webhook id|crc32 --------------------
