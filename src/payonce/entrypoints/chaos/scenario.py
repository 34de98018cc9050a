"""What a chaos run does: how many shoppers behave how, which faults strike, and on what system.

A scenario is flags on ``payonce chaos`` or a file (JSON, or TOML by its ``.toml`` suffix) with
the same fields; everything random in a run is drawn from its ``seed``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from payonce.ports.failpoints import FAILPOINTS, Failpoint
from payonce.sandbox.faults import FaultSettings

Behaviour = Literal[
    "pay_once",
    "double_click",
    "refresh_and_pay_again",
    "switch_channel",
    "two_qr_pay_both",
    "boleto_then_other",
    "abandon",
    "pay_at_expiry",
    "pay_after_expiry",
    "cancel_and_retry",
]
BEHAVIOURS: tuple[Behaviour, ...] = get_args(Behaviour)
Target = Literal["embedded", "stack"]

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


def every_sandbox_fault(seed: int) -> FaultSettings:
    """Every fault the sandbox can inject, at rates that leave most payments on the happy path."""
    return FaultSettings(
        seed=seed,
        notify_drop_rate=0.2,
        notify_duplicate_rate=0.2,
        notify_reorder_rate=0.1,
        notify_forge_rate=0.1,
        notify_delay_s=(0.0, 2.0),
        notify_reorder_s=20.0,
        create_timeout_rate=0.03,
        create_error_rate=0.03,
        query_timeout_rate=0.03,
        query_error_rate=0.05,
        close_timeout_rate=0.05,
        close_error_rate=0.05,
        refund_timeout_rate=0.1,
        refund_error_rate=0.1,
        capture_timeout_rate=0.05,
        capture_error_rate=0.05,
        pay_before_close_rate=0.1,
        pay_before_cancel_rate=0.1,
        pay_after_close_rate=0.1,
        # A "timed out" call holds its answer this long: past payonce's provider time-out.
        timeout_hold_s=1.5,
        pay_late_by_s=5.0,
    )


class ProcessFaults(BaseModel):
    """What strikes payonce's own processes and its order service. Only the order service's
    outages apply to the embedded server: it holds the sandbox's books, so it is never
    crashed, and it has no Redis and no second instance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Crash (kill -9) at each failpoint with this probability per reach; the harness restarts
    # the process at once.
    failpoints: dict[Failpoint, Rate] = Field(default_factory=dict)
    # Redis stopped for ``redis_down_s`` and started again, this many times (stack only).
    redis_restarts: int = Field(default=0, ge=0)
    redis_down_s: float = Field(default=2.0, ge=0.1, le=60)
    # An API instance paused (SIGSTOP) past its locks' lifetime, then resumed (stack only).
    lock_holder_pauses: int = Field(default=0, ge=0)
    # The order service answers 503 to everything for ``order_service_down_s``, this many times.
    order_service_outages: int = Field(default=0, ge=0)
    order_service_down_s: float = Field(default=5.0, ge=0.1, le=600)


def every_process_fault(target: Target) -> ProcessFaults:
    """Every process fault the target can take: the embedded server holds the sandbox's books
    in memory, so it is never crashed; its order service still goes down."""
    if target == "embedded":
        return ProcessFaults(order_service_outages=1)
    return ProcessFaults(
        failpoints=dict.fromkeys(FAILPOINTS, 0.01),
        redis_restarts=1,
        lock_holder_pauses=1,
        order_service_outages=1,
    )


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 1
    shoppers: int = Field(default=300, ge=1, le=1_000_000)
    # Shoppers on the site at once.
    concurrency: int = Field(default=32, ge=1, le=2000)
    target: Target = "embedded"
    api_instances: int = Field(default=2, ge=1, le=16)
    workers: int = Field(default=2, ge=1, le=16)
    # Relative weights; a behaviour left out is not drawn.
    behaviours: dict[Behaviour, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict.fromkeys(BEHAVIOURS, 1.0)
    )
    sandbox_faults: FaultSettings = Field(default_factory=FaultSettings)
    process_faults: ProcessFaults = Field(default_factory=ProcessFaults)
    # "off": payonce runs without its lock, reuse, close-before-new, refunds and polls; the
    # checker must then find violations.
    defences: Literal["on", "off"] = "on"
    # How much faster than real time the shared clock runs while shoppers shop, so that an
    # order's lifetime (60 s at the least) and notification retries pass within the run.
    time_dilation: float = Field(default=4.0, ge=1.0, le=20.0)

    @model_validator(mode="before")
    @classmethod
    def _every(cls, data: Any) -> Any:
        """``sandbox_faults = "every"`` / ``process_faults = "every"``: every fault of the kind,
        at the rates ``payonce chaos`` uses by default (seeded with the scenario's seed)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("sandbox_faults") == "every":
            data["sandbox_faults"] = every_sandbox_fault(int(data.get("seed", 1)))
        if data.get("process_faults") == "every":
            data["process_faults"] = every_process_fault(data.get("target", "embedded"))
        return data

    @model_validator(mode="after")
    def _embedded_is_never_crashed(self) -> Scenario:
        faults = self.process_faults
        if self.target == "embedded" and (
            faults.failpoints or faults.redis_restarts or faults.lock_holder_pauses
        ):
            raise ValueError(
                "the embedded target takes no failpoints, Redis restarts or pauses (use stack)"
            )
        return self

    @classmethod
    def load(cls, path: Path) -> Scenario:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return cls.model_validate(data)
