"""Crashing failpoints: kill -9 of this process, at seeded random, where a failpoint is reached.

Test-only (``PAYONCE_FAILPOINTS``, refused by production settings): the chaos harness restarts
the process and checks that nothing acknowledged was lost and nothing was charged twice.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Mapping

from payonce.ports.failpoints import Failpoint

log = logging.getLogger(__name__)

# What a process killed by SIGKILL reports to its parent's shell (128 + 9).
CRASH_STATUS = 137


class CrashingFailpoints:
    """Each failpoint strikes with its own probability. The dice are seeded by the seed and the
    process id: processes started alike (two workers) do not crash in step, and a process
    started again does not crash again at the same place."""

    def __init__(self, rates: Mapping[Failpoint, float], seed: str) -> None:
        self._rates = dict(rates)
        # Simulation dice, not secrets.
        self._dice = {
            point: random.Random(f"{seed}/{os.getpid()}/{point}")  # noqa: S311
            for point in rates
        }

    def reach(self, point: Failpoint) -> None:
        dice = self._dice.get(point)
        if dice is None or dice.random() >= self._rates[point]:
            return
        log.critical("failpoint %s: crashing (pid %d)", point, os.getpid())
        sys.stderr.flush()
        # As kill -9: no finally blocks, no clean shutdown, no flushing of anything unsent.
        os._exit(CRASH_STATUS)
