"""The system under test, started by the harness: the embedded server or the multi-instance
stack; its processes restarted when they crash, and the process faults of the scenario."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from payonce.adapters.clock import SharedClock
from payonce.adapters.failpoints import CRASH_STATUS
from payonce.adapters.storage.engine import sqlite_url
from payonce.entrypoints.chaos.order_service import OrderService
from payonce.entrypoints.chaos.scenario import Scenario
from payonce.entrypoints.processes import PAYONCE, Child, NotReady, clean_env, free_port
from payonce.entrypoints.stack import Stack, StackPlan

log = logging.getLogger(__name__)

CLOCK_FILE = "clock-offset"
# What a process logs as a failpoint crashes it (adapters/failpoints.py).
_FAILPOINT_LINE = re.compile(r"failpoint (\w+): crashing")
# The stack's locks live this long (real seconds) and a paused holder outlives them.
STACK_LOCK_TTL_S = 5.0


def settings_for(scenario: Scenario, orders: OrderService, data_dir: Path) -> dict[str, str]:
    """The PAYONCE_* settings of every payonce process in a chaos run."""
    settings = {
        "PAYONCE_CLOCK": "adjustable",
        "PAYONCE_CLOCK_FILE": str(data_dir / CLOCK_FILE),
        # Short enough that a trade opened for a 60-second order is shown again when asked.
        "PAYONCE_REUSE_MARGIN_S": "10",
        "PAYONCE_ORDER_WEBHOOK_URL": orders.url,
        "PAYONCE_ORDER_WEBHOOK_SECRET": orders.secret,
        "PAYONCE_ORDER_TTL_S": "60",
        # Calls the sandbox holds ("timed out") answer after 1.5 s: past this time-out.
        "PAYONCE_PROVIDER_TIMEOUT_S": "1.0",
        "PAYONCE_BACKGROUND_INTERVAL_S": "0.2",
        "PAYONCE_DEFENCES": scenario.defences,
        # Every shopper of the run comes from this machine's one address.
        "PAYONCE_RATE_LIMITING": "off",
    }
    if scenario.target == "stack":
        settings["PAYONCE_LOCK_TTL_S"] = str(STACK_LOCK_TTL_S)
        settings["PAYONCE_LOCK_WAIT_S"] = "10"
    return settings


@dataclass
class System:
    """What the shoppers and the checks reach, and the processes the faults strike."""

    api_urls: list[str]
    sandbox_url: str
    api_key: str
    database_url: str
    clock: SharedClock  # the clock every process of the system reads
    payonce: list[Child]  # the processes a failpoint may crash (restarted at once)
    redis: Child | None = None
    crashes: Counter[str] = field(default_factory=Counter)
    # Exits no failpoint explains: crashes payonce did not mean (the run fails on any).
    unexpected_exits: list[str] = field(default_factory=list)
    restarts: int = 0
    # The supervisor and the end of the storm never restart the same process at once.
    _restarting: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def supervise(self) -> None:
        """Restart every payonce process that exited (a failpoint's kill -9), until cancelled."""
        while True:
            async with self._restarting:
                for child in self.payonce:
                    if child.process is not None and child.process.poll() is not None:
                        self._note_exit(child)
                        await self._restart(child)
            await asyncio.sleep(0.1)

    def _note_exit(self, child: Child) -> None:
        assert child.process is not None
        status = child.process.returncode
        struck = _FAILPOINT_LINE.search(child.log_tail(5))
        self.restarts += 1
        if struck and status == CRASH_STATUS:
            self.crashes[f"{child.name.rstrip('0123456789')} crashed at {struck[1]}"] += 1
        else:
            self.unexpected_exits.append(f"{child.name} exited {status}: {child.log_tail(5)}")

    async def _restart(self, child: Child) -> None:
        """Start ``child`` again until it is ready: it may crash again before it is."""
        for _ in range(10):
            await asyncio.to_thread(child.stop)
            child.start()
            try:
                await asyncio.to_thread(child.wait_ready, 60.0)
                return
            except NotReady:
                if child.process is None or child.process.poll() is None:
                    raise  # alive but never ready: not a crash to count and retry
                self._note_exit(child)
        raise NotReady(f"{child.name} kept crashing before it was ready")

    async def without_failpoints(self) -> None:
        """Restart the crashing processes without failpoints: the storm is over."""
        async with self._restarting:
            for child in self.payonce:
                if child.env.pop("PAYONCE_FAILPOINTS", None) is not None:
                    await self._restart(child)

    async def restart_redis(self, down_s: float) -> None:
        if self.redis is None:
            return
        await asyncio.to_thread(self.redis.stop)
        await asyncio.sleep(down_s)
        self.redis.start()
        await asyncio.to_thread(self.redis.wait_ready, 30.0)

    async def pause_a_lock_holder(self, index: int) -> None:
        """SIGSTOP an API instance past its locks' lifetime, then let it go on (stack only)."""
        apis = [c for c in self.payonce if c.name.startswith("api")]
        if not apis:
            return
        child = apis[index % len(apis)]
        child.pause()
        try:
            await asyncio.sleep(STACK_LOCK_TTL_S + 1.0)
        finally:
            child.resume()


@contextlib.asynccontextmanager
async def started(
    scenario: Scenario, orders: OrderService, data_dir: Path, database_url: str | None = None
) -> AsyncIterator[System]:
    """Start the scenario's target in ``data_dir``; stop it all on leaving."""
    settings = settings_for(scenario, orders, data_dir)
    failpoints = scenario.process_faults.failpoints
    if failpoints and scenario.target == "stack":
        settings["PAYONCE_FAILPOINTS"] = json.dumps(failpoints)
        settings["PAYONCE_FAILPOINT_SEED"] = str(scenario.seed)
    if scenario.target == "embedded":
        async with _embedded(settings, data_dir) as system:
            yield system
        return
    plan = StackPlan(
        data_dir=data_dir,
        database_url=database_url,
        api_instances=scenario.api_instances,
        workers=scenario.workers,
        settings=settings,
    )
    stack = Stack(plan)
    await asyncio.to_thread(stack.start)
    try:
        redis = next((c for c in stack.servers if c.name == "redis"), None)
        yield System(
            api_urls=stack.api_urls,
            sandbox_url=stack.sandbox_url,
            api_key=stack.api_key,
            database_url=stack.database_url,
            clock=SharedClock(data_dir / CLOCK_FILE),
            payonce=[*stack.apis, *stack.workers],
            redis=redis,
        )
    finally:
        await asyncio.to_thread(stack.stop)


@contextlib.asynccontextmanager
async def _embedded(settings: dict[str, str], data_dir: Path) -> AsyncIterator[System]:
    """One `payonce serve` with the sandbox mounted (the sandbox's books live in it, so the
    embedded server is never crashed)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_key = f"sk_{secrets.token_urlsafe(24)}"
    home = data_dir / "payonce"
    child = Child(
        name="embedded",
        argv=[*PAYONCE, "serve", "--port", str(port)],
        env=clean_env(
            **settings,
            PAYONCE_DATA_DIR=str(home),
            PAYONCE_API_KEY=api_key,
            PAYONCE_PUBLIC_URL=url,
        ),
        log_path=data_dir / "logs" / "embedded.log",
        ready_url=f"{url}/readyz",
    )
    child.start()
    try:
        await asyncio.to_thread(child.wait_ready, 60.0)
        yield System(
            api_urls=[url],
            sandbox_url=f"{url}/sandbox",
            api_key=api_key,
            database_url=sqlite_url(home / "payonce.db"),
            clock=SharedClock(data_dir / CLOCK_FILE),
            payonce=[],
        )
    finally:
        await asyncio.to_thread(child.stop)
