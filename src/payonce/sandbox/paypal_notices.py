"""PayPal's webhooks: the subscription, the events, their RSA signatures and retry schedule.

PayPal signs each delivery over ``<transmission id>|<transmission time>|<webhook id>|<crc32>``,
where the CRC-32 of the raw body is written in decimal, with SHA256withRSA; the receiver checks
it with the certificate at PAYPAL-CERT-URL (here a self-signed one the sandbox serves). The
webhook id is not sent: the receiver puts in its own, so an event signed for another
subscription fails verification.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from payonce.sandbox.faults import Forgery
from payonce.sandbox.notifier import Notifier, Outgoing, RetryPolicy, answered_2xx
from payonce.sandbox.paypal_credentials import PaypalCredentials
from payonce.sandbox.paypal_records import CHANNEL, FOREIGN_MERCHANT_ID, Order, Refund
from payonce.sandbox.paypal_wire import capture_json, paypal_time, refund_json, value_of
from payonce.sandbox.signing import sign_rsa2, tampered

# PayPal retries a delivery that was not answered 2xx "up to 25 times over 3 days". The
# concrete schedule simulated here (the waits after each failed attempt; 26 attempts in all):
#   15 s, 1 min, 5 min, 15 min, 30 min, 1 h, 2 h, 2 h, 3 h, 3 h, then every 4 h (15 times),
# so the last attempt comes 71 h 51 min 15 s after the first.
PAYPAL_RETRIES = RetryPolicy(
    intervals=(
        timedelta(seconds=15),
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=3),
        timedelta(hours=3),
        *(timedelta(hours=4),) * 15,
    ),
    accepts=answered_2xx,
)
AUTH_ALGO = "SHA256withRSA"
# Forgeries: a delivery replayed this much later.
STALE_BY = timedelta(hours=2)
ALL_EVENTS = "*"


def crc32_decimal(body: bytes) -> str:
    return str(zlib.crc32(body) & 0xFFFFFFFF)


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> str:
    """The string PayPal signs for one delivery of ``body`` to subscription ``webhook_id``."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{crc32_decimal(body)}"


def cert_name(cert_pem: str) -> str:
    return "CERT-360caa42-fca2a594-" + hashlib.sha256(cert_pem.encode()).hexdigest()[:8]


@dataclass
class Subscription:
    """A merchant's webhook: where PayPal posts events, and which (``*``: all of them)."""

    webhook_id: str
    url: str | None = None
    event_types: list[str] = field(default_factory=lambda: [ALL_EVENTS])

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types


class PaypalNotices:
    """Turns each approval, capture and refund into a signed webhook event on PayPal's schedule."""

    def __init__(
        self,
        *,
        credentials: PaypalCredentials,
        signer: rsa.RSAPrivateKey,
        notifier: Notifier,
        api: str,
        order_resource: Callable[[Order], dict[str, Any]],
        epoch: int,
    ) -> None:
        self._credentials = credentials
        self._signer = signer
        self._notifier = notifier
        self._api = api
        self._order_resource = order_resource
        self._epoch = epoch
        self._seq = itertools.count(1)
        self.subscription = Subscription(webhook_id=credentials.webhook_id)
        self.cert_url = f"{api}/v1/notifications/certs/{cert_name(credentials.webhook_cert_pem)}"

    # -- what PayPal notifies --------------------------------------------------------------

    def approved(self, order: Order) -> None:
        assert order.approved_at is not None
        self._publish(
            order,
            order.approved_at,
            "CHECKOUT.ORDER.APPROVED",
            "checkout-order",
            "An order has been approved by buyer",
            self._order_resource(order),
        )

    def captured(self, order: Order) -> None:
        capture = order.capture
        assert capture is not None
        self._publish(
            order,
            capture.at,
            "PAYMENT.CAPTURE.COMPLETED",
            "capture",
            f"Payment completed for {value_of(capture.amount, capture.currency)} "
            f"{capture.currency}",
            capture_json(order, capture, self._api),
        )

    def refunded(self, order: Order, refund: Refund) -> None:
        self._publish(
            order,
            refund.at,
            "PAYMENT.CAPTURE.REFUNDED",
            "refund",
            f"A {value_of(refund.amount, refund.currency)} {refund.currency} capture payment "
            "was refunded",
            refund_json(order, refund, self._api),
        )

    def _publish(
        self,
        order: Order,
        at: datetime,
        event_type: str,
        resource_type: str,
        summary: str,
        resource: dict[str, Any],
    ) -> None:
        subscription = self.subscription
        if subscription.url is None or not subscription.wants(event_type):
            return  # nobody subscribed: PayPal sends nothing
        # The event is fixed now: every retry carries the same body (and CRC), freshly signed.
        event_id = self._event_id()
        event = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": paypal_time(at),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [
                {
                    "href": f"{self._api}/v1/notifications/webhooks-events/{event_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"{self._api}/v1/notifications/webhooks-events/{event_id}/resend",
                    "rel": "resend",
                    "method": "POST",
                },
            ],
        }
        self._notifier.schedule(
            channel=CHANNEL,
            notify_id=event_id,
            out_trade_no=order.out_trade_no,
            url=subscription.url,
            render=self._renderer(event, subscription.webhook_id),
            policy=PAYPAL_RETRIES,
        )

    def _event_id(self) -> str:
        digest = hashlib.sha256(f"event|{self._epoch}|{next(self._seq)}".encode()).hexdigest()
        return f"WH-{digest[:17].upper()}-{digest[17:34].upper()}"

    # -- the wire --------------------------------------------------------------------------

    def _renderer(
        self, event: dict[str, Any], webhook_id: str
    ) -> Callable[[datetime, Forgery | None], Outgoing]:
        signer, cert_url = self._signer, self.cert_url

        def render(attempt_at: datetime, forgery: Forgery | None) -> Outgoing:
            body = json.dumps(_forged(event, forgery), separators=(",", ":")).encode("utf-8")
            sent_at = attempt_at - STALE_BY if forgery == "stale_timestamp" else attempt_at
            transmission_time = paypal_time(sent_at)
            transmission_id = _transmission_id(event["id"], transmission_time, forgery)
            signature = sign_rsa2(
                signer, signed_message(transmission_id, transmission_time, webhook_id, body)
            )
            if forgery == "bad_signature":
                signature = tampered(signature)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "PayPal/AUHD-214.0-58843140",
                "PAYPAL-TRANSMISSION-ID": transmission_id,
                "PAYPAL-TRANSMISSION-TIME": transmission_time,
                "PAYPAL-TRANSMISSION-SIG": signature,
                "PAYPAL-CERT-URL": cert_url,
                "PAYPAL-AUTH-ALGO": AUTH_ALGO,
                "PAYPAL-AUTH-VERSION": "v2",
            }
            return Outgoing(headers, body)

        return render


def _transmission_id(event_id: str, transmission_time: str, forgery: Forgery | None) -> str:
    """A UUID-shaped id, fresh per delivery (and deterministic under the sandbox's clock)."""
    digest = hashlib.sha256(f"{event_id}|{transmission_time}|{forgery}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _forged(event: dict[str, Any], forgery: Forgery | None) -> dict[str, Any]:
    """The event as sent: unchanged, or with its amount or payee changed (then validly signed).

    ``other_merchant`` names another payee merchant id in a delivery signed for our own webhook
    id: it reaches, and must be stopped by, the receiver's check of whose payment this is.
    """
    if forgery not in ("changed_amount", "other_merchant"):
        return event
    forged = copy.deepcopy(event)
    resource = forged["resource"]
    units = resource.get("purchase_units")
    holder = units[0] if units else resource
    if forgery == "changed_amount":
        amount = holder["amount"]
        amount["value"] = str(Decimal(amount["value"]) + 1)
    else:
        party = "payer" if forged["resource_type"] == "refund" else "payee"
        holder[party] = {"merchant_id": FOREIGN_MERCHANT_ID}
    return forged
