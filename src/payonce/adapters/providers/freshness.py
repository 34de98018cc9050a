"""How far a signed notification's own timestamp may be from our clock before it is a replay."""

from __future__ import annotations

from datetime import datetime, timedelta

from payonce.errors import NotificationRejected

# Every provider here stamps each delivery attempt anew, so a genuine one is always recent.
FRESHNESS = timedelta(minutes=5)


def require_fresh(sent: datetime, now: datetime, *, what: str) -> None:
    """Refuse (``stale``) a notification stamped more than ``FRESHNESS`` away from ``now``."""
    skew = abs(now - sent)
    if skew > FRESHNESS:
        raise NotificationRejected("stale", f"{what} is {skew} away from now")
