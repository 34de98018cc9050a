"""WeChat Pay v3's wire format: RFC 3339 China time, JSON errors, signed calls, answers, AES-GCM."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payonce.sandbox.signing import sign_rsa2, verify_rsa2

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
SCHEME = "WECHATPAY2-SHA256-RSA2048"
AEAD = "AEAD_AES_256_GCM"
JSON_TYPE = "application/json; charset=utf-8"
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')
_AUTH_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


def china_time(moment: datetime) -> str:
    """RFC 3339 in China time, as every time on WeChat Pay's wire: ``2026-11-24T10:00:00+08:00``."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def parse_china_time(text: str) -> datetime:
    """An RFC 3339 time with its offset; ValueError if malformed or without an offset."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)", text):
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def derived_nonce(*parts: object, length: int = 32) -> str:
    """A nonce derived from its context: unique where the context is, the same on a replay."""
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()
    return digest[:length].upper()


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the bytes that are both signed and sent."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WechatError(Exception):
    """A refusal on WeChat Pay's wire: an HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def system_error() -> WechatError:
    return WechatError(500, "SYSTEM_ERROR", "系统错误 (system busy, try again)")


def sign_error(detail: str) -> WechatError:
    return WechatError(401, "SIGN_ERROR", f"签名错误 (signature check failed: {detail})")


def param_error(detail: str) -> WechatError:
    return WechatError(400, "PARAM_ERROR", f"参数错误 ({detail})")


@dataclass
class Reply:
    """The answer of one merchant call, before it is signed and put on the wire."""

    status: int
    body: dict[str, Any] | None = None
    # Set when a time-out fault strikes: the work is done, the answer is held back.
    hold: bool = field(default=False)

    @classmethod
    def failure(cls, error: WechatError) -> Reply:
        return cls(error.status, {"code": error.code, "message": error.message})

    @property
    def error_code(self) -> str | None:
        if self.status < 300 or self.body is None:
            return None
        return str(self.body.get("code", ""))

    def content(self) -> bytes:
        return b"" if self.body is None else dumps(self.body)


@dataclass(frozen=True)
class SignedRequest:
    """The merchant's ``Authorization`` header, parsed (not yet verified)."""

    mchid: str
    nonce_str: str
    signature: str
    timestamp: str
    serial_no: str

    @classmethod
    def parse(cls, header: str) -> SignedRequest:
        scheme, _, rest = header.strip().partition(" ")
        if scheme != SCHEME:
            raise sign_error(f"the scheme must be {SCHEME}")
        fields = dict(_AUTH_FIELD.findall(rest))
        missing = [name for name in _AUTH_FIELDS if not fields.get(name)]
        if missing:
            raise sign_error(f"Authorization lacks {', '.join(missing)}")
        return cls(**{name: fields[name] for name in _AUTH_FIELDS})

    def verify(self, key: rsa.RSAPublicKey, method: str, target: str, body: bytes) -> None:
        """``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n``, signed with the merchant's API key.

        The timestamp is not held to the sandbox clock: merchants' SDKs stamp their calls with
        the wall clock, while the sandbox runs on a clock that tests move.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise param_error("the body is not UTF-8") from error
        message = f"{method}\n{target}\n{self.timestamp}\n{self.nonce_str}\n{text}\n"
        if not verify_rsa2(key, message, self.signature):
            raise sign_error("the signature does not verify")


def signed_headers(
    signer: rsa.RSAPrivateKey, serial: str, body: bytes, *, at: datetime, nonce: str
) -> dict[str, str]:
    """The platform's signature of an answer or notification: ``TIMESTAMP\\nNONCE\\nBODY\\n``."""
    timestamp = str(int(at.timestamp()))
    message = f"{timestamp}\n{nonce}\n{body.decode('utf-8')}\n"
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign_rsa2(signer, message),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEME,
    }


def encrypt_resource(
    apiv3_key: str, plaintext: bytes, *, nonce: str, associated_data: str
) -> dict[str, str]:
    """A notification ``resource``: AES-256-GCM under the APIv3 key, ciphertext+tag base64."""
    cipher = AESGCM(apiv3_key.encode("utf-8"))
    sealed = cipher.encrypt(nonce.encode("utf-8"), plaintext, associated_data.encode("utf-8"))
    return {
        "algorithm": AEAD,
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def json_body(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or WeChat's PARAM_ERROR."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise param_error("the body is not JSON") from error
    if not isinstance(data, dict):
        raise param_error("the body is not a JSON object")
    return data


def text_field(data: Mapping[str, Any], key: str, *, limit: int, required: bool = True) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise param_error(f"缺少参数 {key} (missing {key})")
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise param_error(f"参数无效 {key} (a string of at most {limit} characters)")
    return value


def fen_field(data: Mapping[str, Any], key: str) -> int:
    """A positive integer amount in fen (WeChat refuses decimals and strings)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10**10:
        raise param_error(f"{key} must be a positive integer number of fen")
    return value
