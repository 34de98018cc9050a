"""Clocks: the system clock, and an adjustable one for demos and tests to fast-forward."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class AdjustableClock:
    """Real time plus an offset that only grows, or a frozen instant when ``start`` is given.

    Moving forward is the only adjustment: time never runs backwards for anything that read it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._frozen_at = start
        self._offset = timedelta()
        self._guard = threading.Lock()

    def now(self) -> datetime:
        with self._guard:
            base = self._frozen_at if self._frozen_at is not None else datetime.now(UTC)
            return base + self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta():
            raise ValueError("the clock only moves forward")
        with self._guard:
            self._offset += delta
        return self.now()
