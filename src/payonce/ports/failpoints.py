"""The failpoints port: named places where a test-only crash may strike a running process."""

from __future__ import annotations

from typing import Literal, Protocol, get_args

# The places a crash loses the most if payonce were careless, in the order a payment meets them.
Failpoint = Literal[
    # A provider answered (a trade opened, queried, captured or refunded) and nothing recorded it.
    "after_provider_call",
    # A change committed, and the outbox's first attempt to deliver its events has not run.
    "after_commit_before_relay",
    # A provider's notification was committed, and its acknowledgement was not sent.
    "notify_after_commit_before_ack",
]
FAILPOINTS: tuple[Failpoint, ...] = get_args(Failpoint)


class Failpoints(Protocol):
    def reach(self, point: Failpoint) -> None:
        """Called on reaching ``point``; may end the process there and then (never returns)."""
        ...


class NoFailpoints:
    """Production: reaching a failpoint does nothing."""

    def reach(self, point: Failpoint) -> None:
        return None
