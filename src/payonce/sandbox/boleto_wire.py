"""The boleto PSP's wire: the merchant's credentials, Basic auth, error answers, webhook signatures.

The API is modelled on Pagar.me's v5 charge resources (JSON, amounts in centavos, the merchant's
reference as ``code``, Basic auth with the secret key as user name); its webhooks are signed the
way the issue asks: ``X-Boleto-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from payonce.sandbox.credentials import stored_json

SIGNATURE_HEADER = "X-Boleto-Signature"
_FIELDS = ("api_key", "account_id", "webhook_secret")
_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def token(count: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(count))


@dataclass(frozen=True)
class BoletoCredentials:
    """One merchant account at the boleto PSP: its secret API key, account id, webhook secret."""

    api_key: str
    account_id: str
    webhook_secret: str

    def __repr__(self) -> str:
        # Keep the secrets out of logs and tracebacks.
        return f"BoletoCredentials(account_id={self.account_id!r})"

    @classmethod
    def generate(cls) -> BoletoCredentials:
        return cls(
            api_key="sk_test_" + token(32),
            account_id="acc_" + token(16),
            webhook_secret="whsec_" + token(32),
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> BoletoCredentials:
        if not isinstance(data, dict):
            raise ValueError("boleto credentials must be a JSON object")
        missing = [name for name in _FIELDS if not isinstance(data.get(name), str)]
        if missing:
            raise ValueError(f"boleto credentials lack {', '.join(missing)}")
        return cls(**{name: data[name] for name in _FIELDS})

    @classmethod
    def load_or_create(cls, path: Path) -> BoletoCredentials:
        """The credentials stored at ``path``, generating and storing them (mode 0600) first."""
        return cls.from_dict(stored_json(path, lambda: cls.generate().to_dict()))


class BoletoError(Exception):
    """A refusal on the PSP's own wire: an HTTP status and a JSON ``{message, code}`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return JSONResponse({"message": self.message, "code": self.code}, status_code=self.status)


def system_error() -> BoletoError:
    """What the PSP answers when it is having a bad moment; nothing was done."""
    return BoletoError(500, "internal_error", "An internal error occurred. Try again later.")


def basic_user(authorization: str | None) -> str | None:
    """The user name of ``Authorization: Basic base64(user:password)``, or None."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user


def authenticate(authorization: str | None, accounts: dict[str, BoletoCredentials]) -> str:
    """The account whose secret key signs the request in; 401 otherwise (Pagar.me's words)."""
    user = basic_user(authorization)
    for account in accounts.values():
        if user is not None and hmac.compare_digest(user, account.api_key):
            return account.account_id
    raise BoletoError(401, "unauthorized", "Authorization has been denied for this request.")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<raw body>``, hex."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def tampered(hex_signature: str) -> str:
    """The same length of hex with every digit changed: well formed, and it no longer verifies."""
    return "".join(f"{(int(char, 16) + 1) % 16:x}" for char in hex_signature)


def json_body(value: Any) -> bytes:
    """Compact JSON, the way the PSP puts it on the wire (the signature covers these bytes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
