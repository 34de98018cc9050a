"""The log of every call a merchant made to a provider's gateway, with the answer it got."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class GatewayCall:
    """One server-to-server call (or signed pay string opened by a shopper) and its outcome."""

    channel: str
    method: str
    app_id: str
    out_trade_no: str | None
    trade_no: str | None
    at: datetime
    code: str  # the provider's answer code, e.g. Alipay's "10000" or "40004"
    sub_code: str | None
    held: bool  # a time-out fault held the answer back

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "method": self.method,
            "app_id": self.app_id,
            "out_trade_no": self.out_trade_no,
            "trade_no": self.trade_no,
            "at": self.at.isoformat(),
            "code": self.code,
            "sub_code": self.sub_code,
            "held": self.held,
        }


class CallLog:
    """Append-only, in call order (the order answers were decided in)."""

    def __init__(self) -> None:
        self._calls: list[GatewayCall] = []

    def record(self, call: GatewayCall) -> None:
        self._calls.append(call)

    def calls(self, out_trade_no: str | None = None) -> list[GatewayCall]:
        return [c for c in self._calls if out_trade_no is None or c.out_trade_no == out_trade_no]
