"""PayPal webhooks as payonce reads them: the signature, its freshness, and what an event says.

PayPal signs ``<PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<webhook id>|<CRC-32 of the
raw body, in decimal>`` with SHA256withRSA. The webhook id is not sent: we put in our own, so an
event signed for any other subscription (another merchant's, say) fails verification here. The
key is the configured PayPal certificate; production deployments configure the certificate PayPal
serves at PAYPAL-CERT-URL rather than fetch it per delivery (parsing stays synchronous).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payonce.adapters.providers.freshness import require_fresh
from payonce.adapters.providers.paypal_http import parse_paypal_time
from payonce.adapters.providers.strict_json import loads_strict
from payonce.domain.channels import Channel
from payonce.domain.money import InvalidMoney, Money
from payonce.errors import NotificationRejected
from payonce.ports.clock import Clock
from payonce.ports.provider import ProviderNotification, TradeState

AUTH_ALGO = "SHA256withRSA"
# The events payonce acts on; any other genuine event is acknowledged and ignored (reason
# "ignored"), so PayPal does not retry it for three days.
_STATES = {
    "PAYMENT.CAPTURE.COMPLETED": TradeState.PAID,
    "CHECKOUT.ORDER.APPROVED": TradeState.APPROVED,
}


# What the resource of each event must say it is.
_STATUS = {
    "PAYMENT.CAPTURE.COMPLETED": "COMPLETED",
    "CHECKOUT.ORDER.APPROVED": "APPROVED",
}
CERT_PATH = "/v1/notifications/certs/"


def _origin(api_base: str) -> tuple[str, str, str]:
    """(scheme, domain, path) under which PayPal serves its certificates: the API's scheme,
    its host's domain (api-m.paypal.com: paypal.com; an IP address or a short host: itself)
    and the API's path."""
    parts = urlsplit(api_base)
    host = (parts.hostname or "").lower()
    labels = host.split(".")
    domain = host if len(labels) <= 2 or host.replace(".", "").isdigit() else ".".join(labels[-2:])
    return parts.scheme, domain, parts.path.rstrip("/") + CERT_PATH


def _served_by(url: str, origin: tuple[str, str, str]) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    scheme, domain, path = origin
    return (
        parts.scheme == scheme
        and (host == domain or host.endswith("." + domain))
        and parts.path.startswith(path)
        and ".." not in parts.path
        and not parts.username
    )


def named_trade(body: bytes) -> str | None:
    """Our number in a refused event, read without trusting it (a hint to ask about)."""
    try:
        event = json.loads(body)
        resource = event["resource"]
        units = resource.get("purchase_units")
        holder = units[0] if isinstance(units, list) and units else resource
        named = holder.get("invoice_id") or holder.get("custom_id")
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None
    return named if isinstance(named, str) and 0 < len(named) <= 64 else None


@functools.cache
def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


class WebhookVerifier:
    """Verifies and reads the webhooks of one subscription (``webhook_id``) of one merchant."""

    def __init__(
        self,
        *,
        webhook_id: str,
        merchant_id: str,
        cert_pem: str,
        clock: Clock,
        api_base: str | None = None,
    ) -> None:
        """``api_base``: PayPal's REST base; PAYPAL-CERT-URL must then name a certificate
        PayPal serves from its domain (else the delivery names a key we do not trust)."""
        self._cert_origin = _origin(api_base) if api_base else None
        self._webhook_id = webhook_id
        self._merchant_id = merchant_id
        self._certificate = load_certificate(cert_pem)
        key = self._certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the PayPal webhook certificate must hold an RSA key")
        self._key = key
        self._clock = clock

    def parse(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        self._verify({name.lower(): value for name, value in headers.items()}, body)
        try:
            event = loads_strict(body)
        except ValueError as error:  # not UTF-8, not JSON, a key twice
            raise NotificationRejected("malformed", f"not JSON: {error}") from error
        if not isinstance(event, dict) or not isinstance(event.get("resource"), dict):
            raise NotificationRejected("malformed", "no event resource")
        event_id, event_type = event.get("id"), event.get("event_type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise NotificationRejected("malformed", "no event id or type")
        state = _STATES.get(event_type)
        if state is None:
            raise NotificationRejected("ignored", f"{event_type} changes nothing payonce holds")
        resource: Mapping[str, Any] = event["resource"]
        holder: Mapping[str, Any]
        paid_at = None
        if state is TradeState.PAID:
            holder, trade_no = resource, _related_order(resource)
            try:
                paid_at = parse_paypal_time(resource.get("create_time"))
            except ValueError as error:
                raise NotificationRejected("malformed", "a capture without its time") from error
        else:
            holder, trade_no = _first_unit(resource), resource.get("id")
        out_trade_no, amount = _out_trade_no(holder), _amount(holder)
        if resource.get("status") != _STATUS[event_type]:
            # The event's name and the resource it carries must tell the same story.
            raise NotificationRejected(
                "not_success",
                f"{event_type} of a {resource.get('status')!r} resource",
                out_trade_no=out_trade_no,
            )
        return ProviderNotification(
            channel=Channel.PAYPAL,
            notify_id=event_id,
            out_trade_no=out_trade_no,
            provider_trade_no=trade_no if isinstance(trade_no, str) else None,
            state=state,
            amount=amount,
            merchant_id=self._payee(holder),
            paid_at=paid_at,
        )

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        transmission_id = headers.get("paypal-transmission-id", "")
        transmission_time = headers.get("paypal-transmission-time", "")
        signature = headers.get("paypal-transmission-sig", "")
        if not (transmission_id and transmission_time and signature):
            raise NotificationRejected("unsigned", "no PAYPAL-TRANSMISSION-* headers")
        algorithm = headers.get("paypal-auth-algo", "")
        if algorithm != AUTH_ALGO:
            raise NotificationRejected("unsupported_algorithm", f"PAYPAL-AUTH-ALGO {algorithm!r}")
        # The configured certificate verifies, whatever the header names (nothing is fetched);
        # but one naming a certificate PayPal does not serve is not PayPal's delivery.
        cert_url = headers.get("paypal-cert-url")
        if (
            cert_url is not None
            and self._cert_origin is not None
            and not _served_by(cert_url, self._cert_origin)
        ):
            raise NotificationRejected("bad_signature", f"PAYPAL-CERT-URL {cert_url[:200]!r}")
        crc = zlib.crc32(body) & 0xFFFFFFFF
        message = f"{transmission_id}|{transmission_time}|{self._webhook_id}|{crc}"
        try:
            raw = base64.b64decode(signature, validate=True)
            self._key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        except (binascii.Error, ValueError, InvalidSignature) as error:
            raise NotificationRejected("bad_signature", "signature does not verify") from error
        now = self._clock.now()
        certificate = self._certificate
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise NotificationRejected("bad_signature", "the PayPal certificate is not valid now")
        self._check_fresh(transmission_time, now)

    @staticmethod
    def _check_fresh(transmission_time: str, now: datetime) -> None:
        try:
            sent = datetime.fromisoformat(transmission_time)
        except ValueError as error:
            raise NotificationRejected("malformed", f"time {transmission_time!r}") from error
        if sent.tzinfo is None:
            raise NotificationRejected("malformed", f"time {transmission_time!r} has no zone")
        require_fresh(sent, now, what=f"transmission time {transmission_time}")

    def _payee(self, holder: Mapping[str, Any]) -> str:
        """Whose payment this is. A delivery signed for our webhook id is ours, so a resource
        naming no payee is ours; one naming another merchant is refused."""
        payee = holder.get("payee")
        merchant = payee.get("merchant_id") if isinstance(payee, dict) else None
        if merchant is None:
            return self._merchant_id
        if merchant != self._merchant_id:
            raise NotificationRejected("merchant_mismatch", f"payee {merchant}")
        return str(merchant)


def _first_unit(order: Mapping[str, Any]) -> Mapping[str, Any]:
    units = order.get("purchase_units")
    if not isinstance(units, list) or not units or not isinstance(units[0], dict):
        raise NotificationRejected("malformed", "an order without a purchase unit")
    unit: Mapping[str, Any] = units[0]
    return unit


def _related_order(capture: Mapping[str, Any]) -> str | None:
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    order_id = related.get("order_id") if isinstance(related, dict) else None
    return order_id if isinstance(order_id, str) else None


def _out_trade_no(holder: Mapping[str, Any]) -> str:
    """Our number: payonce sends it as both invoice_id and custom_id."""
    numbers = {holder.get("invoice_id"), holder.get("custom_id")} - {None}
    if len(numbers) != 1:
        raise NotificationRejected("malformed", f"invoice_id/custom_id {sorted(map(str, numbers))}")
    (number,) = numbers
    if not isinstance(number, str) or not number:
        raise NotificationRejected("malformed", "no invoice_id")
    return number


def _amount(holder: Mapping[str, Any]) -> Money:
    amount = holder.get("amount")
    if not isinstance(amount, dict):
        raise NotificationRejected("malformed", "no amount")
    try:
        return Money.from_decimal_string(str(amount["value"]), str(amount["currency_code"]))
    except (KeyError, InvalidMoney) as error:
        raise NotificationRejected("amount_mismatch", f"amount {amount}") from error
