"""Alipay's wire format: yuan amounts, China time, request parameters, errors and signed replies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request

from payonce.sandbox.signing import sign_rsa2

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
WIRE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_FEN = 100_000_000_00  # Alipay's per-trade ceiling: 100,000,000.00 yuan
_YUAN = re.compile(r"^\d{1,9}(\.\d{1,2})?$")

SUCCESS = ("10000", "Success")
SYSTEM_ERROR = ("20000", "Service Currently Unavailable")
MISSING_ARGUMENT = ("40001", "Missing Required Arguments")
INVALID_ARGUMENT = ("40002", "Invalid Arguments")
BUSINESS_FAILED = ("40004", "Business Failed")


def china_time(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in China time, as every time on Alipay's wire."""
    return moment.astimezone(CHINA_TZ).strftime(WIRE_TIME_FORMAT)


def parse_china_time(text: str) -> datetime:
    """The aware UTC instant of a China-time ``YYYY-MM-DD HH:MM:SS``; ValueError if malformed."""
    local = datetime.strptime(text.strip(), WIRE_TIME_FORMAT).replace(tzinfo=CHINA_TZ)
    return local.astimezone(UTC)


def parse_relative_timeout(text: str) -> timedelta:
    """Alipay's ``timeout_express``: ``90m``, ``2h``, ``1d`` (``1c`` means until midnight too)."""
    match = re.fullmatch(r"(\d{1,5})([mhdc])", text.strip())
    if match is None:
        raise ValueError(f"invalid timeout_express {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    if count <= 0:
        raise ValueError("timeout_express must be positive")
    if unit == "m":
        return timedelta(minutes=count)
    if unit == "h":
        return timedelta(hours=count)
    return timedelta(days=count)


def yuan(fen: int) -> str:
    """Integer fen as Alipay's yuan string: 3998 → ``"39.98"``."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """A yuan string as integer fen; ValueError unless it is 0.01 … 100000000.00."""
    if not _YUAN.fullmatch(text.strip()):
        raise ValueError(f"invalid amount {text!r}")
    try:
        fen = int(Decimal(text.strip()) * 100)
    except InvalidOperation as exc:
        raise ValueError(f"invalid amount {text!r}") from exc
    if not 0 < fen <= MAX_FEN:
        raise ValueError(f"amount out of range {text!r}")
    return fen


def response_key(method: str) -> str:
    """``alipay.trade.query`` → ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response" if method else "error_response"


def parse_params(query: str) -> dict[str, str]:
    """Form or query parameters; the last of repeated keys wins."""
    return dict(parse_qsl(query, keep_blank_values=True))


async def request_params(request: Request) -> dict[str, str]:
    """The gateway's parameters: the query string, then a form-urlencoded body on top."""
    params = parse_params(request.url.query)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded") or not content_type:
            body = (await request.body()).decode("utf-8", errors="replace")
            params.update(parse_params(body))
    return params


class AlipayError(Exception):
    """A refusal on Alipay's wire: ``code``/``msg`` plus ``sub_code``/``sub_msg``."""

    def __init__(
        self,
        sub_code: str,
        sub_msg: str,
        *,
        kind: tuple[str, str] = BUSINESS_FAILED,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.code, self.msg = kind
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.extra = dict(extra or {})

    def fields(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "msg": self.msg,
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
            **self.extra,
        }


@dataclass
class Reply:
    """The answer of one gateway call, before it is put on the wire."""

    key: str
    fields: dict[str, Any]
    signed: bool = True
    # Set when a time-out fault strikes: the work is done, the answer is held back.
    hold: bool = field(default=False)

    @classmethod
    def success(cls, method: str, **values: Any) -> Reply:
        code, msg = SUCCESS
        return cls(response_key(method), {"code": code, "msg": msg, **values})

    @classmethod
    def failure(cls, method: str, error: AlipayError, *, signed: bool = True) -> Reply:
        return cls(response_key(method), error.fields(), signed=signed)


def _json(value: Any) -> str:
    """Compact JSON in which ``{`` and ``}`` appear only as structure.

    The SDK finds the signed text by balancing braces, so braces inside strings are escaped
    as ``\\u007b``/``\\u007d`` (still the same JSON value).
    """
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text.replace("{", "\\u007b").replace("}", "\\u007d")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    return json.dumps(value)


def envelope(reply: Reply, signer: rsa.RSAPrivateKey | None) -> str:
    """``{"<method>_response":{...},"sign":"..."}``, signed over the inner text exactly as sent."""
    inner = _json(reply.fields)
    if not reply.signed or signer is None:
        return "{" + f"{_json(reply.key)}:{inner}" + "}"
    return (
        "{" + f"{_json(reply.key)}:{inner},{_json('sign')}:{_json(sign_rsa2(signer, inner))}" + "}"
    )
