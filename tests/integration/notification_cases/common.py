"""What every channel's cases share: the scene a case is built in, the forged notification
it makes, and small ways of changing signatures and mappings."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from payonce.sandbox.keys import SandboxKeys
from payonce.sandbox.notifier import Outgoing

STALE = timedelta(hours=2)
FUTURE = timedelta(hours=1)
# Over the notify endpoint's 64 KiB limit, and a field that keeps a body just under it.
HUGE = 70 * 1024
BIG_FIELD = 40 * 1024
UNKNOWN_TRADE = "P" + "9" * 20


@dataclass(frozen=True)
class Scene:
    """One channel's stage: a genuine notification payonce has not heard, and a second order."""

    channel: str
    keys: SandboxKeys
    genuine: Outgoing  # rendered at ``now``
    now: datetime
    out_trade_no: str  # the paid trade's
    other_out_trade_no: str  # another order's open trade (another amount)


@dataclass(frozen=True)
class Forged:
    headers: Mapping[str, str]
    body: bytes
    endpoint: str | None = None  # another channel's endpoint; None: the scene's own


@dataclass(frozen=True)
class Case:
    name: str
    reason: str  # the rejection reason payonce must count
    build: Callable[[Scene], Forged] = field(repr=False)


def flip(signature: str) -> str:
    """One byte of a base64 signature flipped: well formed, and no longer valid."""
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def flip_hex(signature: str) -> str:
    last = signature[-1]
    return signature[:-1] + ("0" if last != "0" else "1")


# -- Alipay: an RSA2-signed form -------------------------------------------------------------


def without(form: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in form.items() if k not in names}


def set_in(mapping: dict[str, Any], name: str, value: Any) -> None:
    mapping[name] = value
