"""CPU seconds spent by groups of processes (read from /proc), to tell where a phase's time went."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def _seconds(pid: int, *, reaped_children: bool) -> float:
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # fields[0] is the state (field 3): utime, stime, cutime, cstime are fields 14..17.
    used = int(fields[11]) + int(fields[12])
    if reaped_children:
        used += int(fields[13]) + int(fields[14])
    return used * TICK_S


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def tree_seconds(root: int) -> float:
    """A server and the children it forks (PostgreSQL's backends), the exited ones included."""
    return _seconds(root, reaped_children=True) + sum(
        _seconds(child, reaped_children=False) for child in children_of(root)
    )


class CpuMeter:
    """Named groups of processes; ``take()`` answers each group's CPU seconds since the last."""

    def __init__(self, groups: Mapping[str, Sequence[int]], trees: Mapping[str, int]) -> None:
        self.groups = dict(groups)
        self.trees = dict(trees)
        self._last = self._read()

    def _read(self) -> dict[str, float]:
        read = {
            name: sum(_seconds(p, reaped_children=False) for p in pids)
            for name, pids in self.groups.items()
        }
        read.update({name: tree_seconds(root) for name, root in self.trees.items()})
        read["bench client (this process)"] = time.process_time()
        return read

    def take(self) -> dict[str, float]:
        now = self._read()
        spent = {name: round(now[name] - self._last.get(name, 0.0), 3) for name in now}
        self._last = now
        return spent
