"""Clocks: the system clock, and adjustable ones (one process, or a stack sharing a file) for demos
and tests to fast-forward."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path


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


class SharedClock:
    """An adjustable clock whose offset lives in a file, so that the processes of a local stack
    (API instances, workers, the sandbox) move forward together: any of them advances it (the
    sandbox's ``POST /clock``) and all of them read it. Like ``AdjustableClock``, it only moves
    forward: a reader never goes back below an offset it has seen.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = timedelta()
        self._seen: tuple[int, int, int] | None = None
        self._guard = threading.Lock()

    def _current(self) -> timedelta:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return self._offset
        # A write replaces the file (a new inode), so a change is seen even within one mtime tick.
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if version != self._seen:
            text = self._path.read_text().strip()
            if text:
                self._offset = max(self._offset, timedelta(seconds=float(text)))
            self._seen = version
        return self._offset

    def now(self) -> datetime:
        with self._guard:
            return datetime.now(UTC) + self._current()

    def advance(self, delta: timedelta) -> datetime:
        import fcntl  # POSIX only, and only where a clock is shared (demos, tests)

        if delta < timedelta():
            raise ValueError("the clock only moves forward")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._guard, open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time across processes
            self._seen = None  # read the file itself: a cached version could be stale
            offset = self._current() + delta
            staged = self._path.with_suffix(".new")
            staged.write_text(f"{offset.total_seconds()!r}\n")
            os.replace(staged, self._path)
        return self.now()
