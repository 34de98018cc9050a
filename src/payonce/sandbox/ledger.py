"""The provider's ledger of money movements (captures and refunds): the ground truth for tests."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

MovementKind = Literal["capture", "refund"]


@dataclass(frozen=True)
class Movement:
    """Money that moved at the provider: captured from a shopper, or refunded to one."""

    channel: str
    out_trade_no: str
    trade_no: str
    kind: MovementKind
    amount: int  # minor units, always positive
    currency: str
    at: datetime
    # What caused it: the refund request number for refunds, the trade number for captures.
    reference: str

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "out_trade_no": self.out_trade_no,
            "trade_no": self.trade_no,
            "kind": self.kind,
            "amount": self.amount,
            "currency": self.currency,
            "at": self.at.isoformat(),
            "reference": self.reference,
        }


class Ledger:
    """Append-only; callers hold the sandbox's state lock while recording."""

    def __init__(self) -> None:
        self._movements: list[Movement] = []

    def record(self, movement: Movement) -> None:
        if movement.amount <= 0:
            raise ValueError("a movement moves a positive amount")
        self._movements.append(movement)

    def movements(
        self, *, channel: str | None = None, out_trade_no: str | None = None
    ) -> list[Movement]:
        return [
            movement
            for movement in self._movements
            if (channel is None or movement.channel == channel)
            and (out_trade_no is None or movement.out_trade_no == out_trade_no)
        ]

    def net(self, *, channel: str, out_trade_no: str) -> int:
        """Captured minus refunded for one merchant trade number."""
        total = 0
        for movement in self.movements(channel=channel, out_trade_no=out_trade_no):
            total += movement.amount if movement.kind == "capture" else -movement.amount
        return total

    def on_day(self, *, channel: str, day: date, tz: tzinfo) -> list[Movement]:
        """One channel's movements of a day (its boundaries in ``tz``), in the order they moved."""
        return sorted(
            (m for m in self.movements(channel=channel) if m.at.astimezone(tz).date() == day),
            key=lambda movement: movement.at,
        )

    def statement_csv(self, *, channel: str, day: date, tz: tzinfo) -> str:
        """The day's statement of one channel (day boundaries in the channel's time zone)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["at", "channel", "out_trade_no", "trade_no", "kind", "amount", "currency", "reference"]
        )
        for movement in self.on_day(channel=channel, day=day, tz=tz):
            local = movement.at.astimezone(tz)
            writer.writerow(
                [
                    local.strftime("%Y-%m-%d %H:%M:%S"),
                    movement.channel,
                    movement.out_trade_no,
                    movement.trade_no,
                    movement.kind,
                    movement.amount,
                    movement.currency,
                    movement.reference,
                ]
            )
        return out.getvalue()


def day_ended(day: date, tz: tzinfo, now: datetime) -> bool:
    """Whether ``day`` (in ``tz``) is over at ``now``: a provider bills a day once it has ended."""
    return now >= datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
