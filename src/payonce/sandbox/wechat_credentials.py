"""The key material one WeChat Pay merchant shares with the sandbox: ids, key pairs, APIv3 key."""

from __future__ import annotations

import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from payonce.sandbox.credentials import digits, rsa_key_pair, stored_json

_FIELDS = (
    "mchid",
    "appid",
    "merchant_private_key_pem",
    "merchant_public_key_pem",
    "merchant_serial_no",
    "apiv3_key",
    "platform_private_key_pem",
    "platform_public_key_pem",
    "platform_public_key_id",
)
APIV3_KEY_LENGTH = 32  # AES-256: WeChat's APIv3 key is 32 ASCII characters, used as the key bytes


def _hex(count: int) -> str:
    return "".join(secrets.choice("0123456789ABCDEF") for _ in range(count))


@dataclass(frozen=True)
class WechatCredentials:
    """One merchant as registered with (the sandbox's) WeChat Pay, in public-key mode.

    The merchant signs its calls with ``merchant_private_key_pem`` (its API certificate, named
    by ``merchant_serial_no``) and checks answers and notifications with the platform public key
    named ``platform_public_key_id``; the sandbox does the reverse. Notification resources are
    encrypted with ``apiv3_key`` (AES-256-GCM).
    """

    mchid: str
    appid: str
    merchant_private_key_pem: str
    merchant_public_key_pem: str
    merchant_serial_no: str
    apiv3_key: str
    platform_private_key_pem: str
    platform_public_key_pem: str
    platform_public_key_id: str

    def __repr__(self) -> str:
        # Keep private keys and the APIv3 key out of logs and tracebacks.
        return f"WechatCredentials(mchid={self.mchid!r}, appid={self.appid!r})"

    @classmethod
    def generate(cls, mchid: str | None = None) -> WechatCredentials:
        """Fresh credentials: a 10-digit mchid, a ``wx…`` appid, two key pairs, an APIv3 key."""
        merchant_private, merchant_public = rsa_key_pair()
        platform_private, platform_public = rsa_key_pair()
        alphabet = string.ascii_letters + string.digits
        return cls(
            mchid=mchid or "19" + digits(8),
            appid="wx" + "".join(secrets.choice("0123456789abcdef") for _ in range(16)),
            merchant_private_key_pem=merchant_private,
            merchant_public_key_pem=merchant_public,
            merchant_serial_no=_hex(40),
            apiv3_key="".join(secrets.choice(alphabet) for _ in range(APIV3_KEY_LENGTH)),
            platform_private_key_pem=platform_private,
            platform_public_key_pem=platform_public,
            platform_public_key_id="PUB_KEY_ID_01" + digits(26),
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> WechatCredentials:
        if not isinstance(data, dict):
            raise ValueError("WeChat Pay credentials must be a JSON object")
        missing = [name for name in _FIELDS if not isinstance(data.get(name), str)]
        if missing:
            raise ValueError(f"WeChat Pay credentials lack {', '.join(missing)}")
        if len(data["apiv3_key"]) != APIV3_KEY_LENGTH:
            raise ValueError(f"the APIv3 key must be {APIV3_KEY_LENGTH} characters")
        return cls(**{name: data[name] for name in _FIELDS})

    @classmethod
    def load_or_create(cls, path: Path) -> WechatCredentials:
        """The credentials stored at ``path``, generating and storing them (mode 0600) first."""
        return cls.from_dict(stored_json(path, lambda: cls.generate().to_dict()))
