"""The key material one Alipay merchant app shares with the sandbox: ids and both RSA key pairs."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_FIELDS = (
    "app_id",
    "seller_id",
    "app_private_key_pem",
    "app_public_key_pem",
    "alipay_private_key_pem",
    "alipay_public_key_pem",
)


def digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def rsa_key_pair() -> tuple[str, str]:
    """An RSA-2048 pair as (PKCS#8 private PEM, SubjectPublicKeyInfo public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )
    return private_pem, public_pem


@dataclass(frozen=True)
class AlipayCredentials:
    """One merchant app as registered with (the sandbox's) Alipay.

    The merchant side signs with ``app_private_key_pem`` and verifies with
    ``alipay_public_key_pem``; the sandbox verifies with ``app_public_key_pem`` and signs with
    ``alipay_private_key_pem``.
    """

    app_id: str
    seller_id: str
    app_private_key_pem: str
    app_public_key_pem: str
    alipay_private_key_pem: str
    alipay_public_key_pem: str

    def __repr__(self) -> str:
        # Keep private keys out of logs and tracebacks.
        return f"AlipayCredentials(app_id={self.app_id!r}, seller_id={self.seller_id!r})"

    @classmethod
    def generate(cls, app_id: str | None = None) -> AlipayCredentials:
        """Fresh credentials: a 16-digit app id, a "2088…" seller id and two new key pairs."""
        app_private, app_public = rsa_key_pair()
        alipay_private, alipay_public = rsa_key_pair()
        return cls(
            app_id=app_id or "2021000" + digits(9),
            seller_id="2088" + digits(12),
            app_private_key_pem=app_private,
            app_public_key_pem=app_public,
            alipay_private_key_pem=alipay_private,
            alipay_public_key_pem=alipay_public,
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> AlipayCredentials:
        if not isinstance(data, dict):
            raise ValueError("Alipay credentials must be a JSON object")
        missing = [name for name in _FIELDS if not isinstance(data.get(name), str)]
        if missing:
            raise ValueError(f"Alipay credentials lack {', '.join(missing)}")
        return cls(**{name: data[name] for name in _FIELDS})

    @classmethod
    def load_or_create(cls, path: Path) -> AlipayCredentials:
        """The credentials stored at ``path``, generating and storing them (mode 0600) first."""
        return cls.from_dict(stored_json(path, lambda: cls.generate().to_dict()))


def stored_json(path: Path, make: Callable[[], dict[str, str]]) -> object:
    """The JSON object stored at ``path``; made, stored (mode 0600) and returned on first use.

    Written aside, then linked into place: a reader never sees a half-written file, and if
    another process stored one meanwhile, theirs wins and is read.
    """
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2)
            stream.write("\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            return json.loads(path.read_text(encoding="utf-8"))
    finally:
        draft.unlink(missing_ok=True)
    return data
