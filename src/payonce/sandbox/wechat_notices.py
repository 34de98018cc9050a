"""WeChat Pay's payment notifications: encrypted resource, signed headers, retries and echoes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from payonce.sandbox.faults import Forgery
from payonce.sandbox.notifier import Notifier, Outgoing, RetryPolicy, answered_2xx
from payonce.sandbox.signing import tampered
from payonce.sandbox.wechat_credentials import WechatCredentials
from payonce.sandbox.wechat_trades import CHANNEL, Trade, transaction_json
from payonce.sandbox.wechat_wire import (
    china_time,
    derived_nonce,
    dumps,
    encrypt_resource,
    signed_headers,
)

# The waits after each failed attempt (the first attempt goes at once): WeChat's published
# schedule, 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, until a 2xx answer.
WECHAT_INTERVALS: tuple[timedelta, ...] = (
    timedelta(seconds=15),
    timedelta(seconds=15),
    timedelta(seconds=30),
    timedelta(minutes=3),
    timedelta(minutes=10),
    timedelta(minutes=20),
    timedelta(minutes=30),
    timedelta(minutes=30),
    timedelta(minutes=30),
    timedelta(minutes=60),
    timedelta(hours=3),
    timedelta(hours=3),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=6),
)
# WeChat sometimes delivers one notification twice, about a second apart: the share of
# deliveries that get such an echo, unless the channel is built (or set) with another rate.
DEFAULT_ECHO_RATE = 0.1
ECHO_AFTER = timedelta(seconds=1)
# Forgeries: a replay of a delivery this much older, and a merchant that is not the addressee.
STALE_BY = timedelta(hours=2)
FOREIGN_MCHID = "1900009999"
FOREIGN_APPID = "wx0000000000000000"
ASSOCIATED_DATA = "transaction"


def wechat_retries(echo_rate: float) -> RetryPolicy:
    return RetryPolicy(
        intervals=WECHAT_INTERVALS,
        accepts=answered_2xx,
        echo_rate=echo_rate,
        echo_after=ECHO_AFTER,
    )


def notify_id(transaction_id: str) -> str:
    """The notification's ``id``: a UUID fixed by the transaction (unique across restarts)."""
    return str(uuid.UUID(bytes=hashlib.sha256(f"notify|{transaction_id}".encode()).digest()[:16]))


class WechatNotices:
    """Turns each payment into a TRANSACTION.SUCCESS notification on WeChat's schedule."""

    def __init__(
        self,
        *,
        credentials: WechatCredentials,
        signer: rsa.RSAPrivateKey,
        notifier: Notifier,
        echo_rate: float = DEFAULT_ECHO_RATE,
    ) -> None:
        self._credentials = credentials
        self._signer = signer
        self._notifier = notifier
        self.echo_rate = echo_rate

    def on_paid(self, trade: Trade) -> None:
        assert trade.transaction_id is not None
        assert trade.paid_at is not None
        # The story is fixed now: a retry tells the same one even if the trade moved on.
        resource = transaction_json(trade, trade.paid_at)
        identifier = notify_id(trade.transaction_id)
        created = china_time(trade.paid_at)
        genuine = self._body(identifier, created, resource, variant="genuine")

        def render(attempt_at: datetime, forgery: Forgery | None) -> Outgoing:
            body, at = genuine, attempt_at
            if forgery == "changed_amount":
                changed = {**resource, "amount": {**resource["amount"]}}
                changed["amount"]["total"] += 100
                changed["amount"]["payer_total"] += 100
                body = self._body(identifier, created, changed, variant=forgery)
            elif forgery == "other_merchant":
                foreign = {**resource, "mchid": FOREIGN_MCHID, "appid": FOREIGN_APPID}
                body = self._body(identifier, created, foreign, variant=forgery)
            elif forgery == "stale_timestamp":
                at = attempt_at - STALE_BY
            headers = self._headers(body, at, identifier)
            if forgery == "bad_signature":
                headers["Wechatpay-Signature"] = tampered(headers["Wechatpay-Signature"])
            return Outgoing(headers, body)

        self._notifier.schedule(
            channel=CHANNEL,
            notify_id=identifier,
            out_trade_no=trade.out_trade_no,
            url=trade.terms.notify_url,
            render=render,
            policy=wechat_retries(self.echo_rate),
        )

    def _body(
        self, identifier: str, created: str, resource: dict[str, Any], *, variant: str
    ) -> bytes:
        """The notification's JSON, its resource encrypted with the merchant's APIv3 key.

        The AES-GCM nonce is derived from the notification and variant: never reused for
        another plaintext under the key, and the same under a replay of the same seed.
        """
        sealed = encrypt_resource(
            self._credentials.apiv3_key,
            dumps(resource),
            nonce=derived_nonce("resource", identifier, variant, length=12),
            associated_data=ASSOCIATED_DATA,
        )
        return dumps(
            {
                "id": identifier,
                "create_time": created,
                "resource_type": "encrypt-resource",
                "event_type": "TRANSACTION.SUCCESS",
                "summary": "支付成功",
                "resource": {"original_type": "transaction", **sealed},
            }
        )

    def _headers(self, body: bytes, at: datetime, identifier: str) -> dict[str, str]:
        headers = signed_headers(
            self._signer,
            self._credentials.platform_public_key_id,
            body,
            at=at,
            nonce=derived_nonce("notify", identifier, at.timestamp()),
        )
        return {"Content-Type": "application/json", **headers}
