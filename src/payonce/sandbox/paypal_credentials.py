"""The key material one PayPal REST app shares with the sandbox: client, merchant, webhook, cert."""

from __future__ import annotations

import secrets
import string
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from payonce.sandbox.credentials import stored_json

_FIELDS = (
    "client_id",
    "client_secret",
    "merchant_id",
    "webhook_id",
    "webhook_private_key_pem",
    "webhook_cert_pem",
)
_UPPER_ALNUM = string.ascii_uppercase + string.digits
# A fixed, wide validity: the sandbox reads no wall clock, and its certificate never lapses
# mid-test. Verifiers still check the window against their own (injected) clock.
_VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
_VALID_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)


def _upper_alnum(count: int) -> str:
    return "".join(secrets.choice(_UPPER_ALNUM) for _ in range(count))


def self_signed_certificate(common_name: str) -> tuple[str, str]:
    """A new RSA-2048 key and a self-signed X.509 certificate for it: (key PEM, cert PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payonce sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_VALID_FROM)
        .not_valid_after(_VALID_UNTIL)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return key_pem, cert_pem


@dataclass(frozen=True)
class PaypalCredentials:
    """One merchant's REST app as registered with (the sandbox's) PayPal.

    The merchant authenticates with ``client_id``/``client_secret`` (OAuth client credentials)
    and is the payee ``merchant_id`` of its orders; its webhook subscription is ``webhook_id``.
    PayPal signs webhooks with ``webhook_private_key_pem``; merchants verify them with the
    self-signed ``webhook_cert_pem``, which the sandbox also serves at the PAYPAL-CERT-URL.
    """

    client_id: str
    client_secret: str
    merchant_id: str
    webhook_id: str
    webhook_private_key_pem: str
    webhook_cert_pem: str

    def __repr__(self) -> str:
        # Keep the secret and the private key out of logs and tracebacks.
        return (
            f"PaypalCredentials(client_id={self.client_id!r}, merchant_id={self.merchant_id!r}, "
            f"webhook_id={self.webhook_id!r})"
        )

    @classmethod
    def generate(cls) -> PaypalCredentials:
        """Fresh credentials shaped like PayPal's: an 80-character client id, a 13-character
        merchant (payer) id, a 17-character webhook id, and a new signing key and certificate."""
        key_pem, cert_pem = self_signed_certificate("messageverificationcerts.sandbox.payonce")
        return cls(
            client_id="A" + secrets.token_urlsafe(60)[:79],
            client_secret="E" + secrets.token_urlsafe(60)[:79],
            merchant_id=_upper_alnum(13),
            webhook_id=_upper_alnum(17),
            webhook_private_key_pem=key_pem,
            webhook_cert_pem=cert_pem,
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> PaypalCredentials:
        if not isinstance(data, dict):
            raise ValueError("PayPal credentials must be a JSON object")
        missing = [name for name in _FIELDS if not isinstance(data.get(name), str)]
        if missing:
            raise ValueError(f"PayPal credentials lack {', '.join(missing)}")
        return cls(**{name: data[name] for name in _FIELDS})

    @classmethod
    def load_or_create(cls, path: Path) -> PaypalCredentials:
        """The credentials stored at ``path``, generating and storing them (mode 0600) first."""
        return cls.from_dict(stored_json(path, lambda: cls.generate().to_dict()))
