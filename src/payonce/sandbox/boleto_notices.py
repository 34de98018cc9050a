"""The boleto PSP's webhooks (``charge.paid``, ``charge.refunded``): signed JSON, retry schedule."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from payonce.sandbox.boleto_charges import CHANNEL, Charge, Refund, charge_json, iso
from payonce.sandbox.boleto_wire import (
    SIGNATURE_HEADER,
    BoletoCredentials,
    json_body,
    signature,
    tampered,
)
from payonce.sandbox.faults import Forgery
from payonce.sandbox.notifier import Notifier, Outgoing, RetryPolicy, answered_2xx

# The first attempt at once, then these waits after each failed attempt (any 2xx stops them):
# nine attempts over about three and a half days.
BOLETO_RETRIES = RetryPolicy(
    intervals=(
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=6),
        timedelta(hours=24),
        timedelta(hours=24),
        timedelta(hours=24),
    ),
    accepts=answered_2xx,
)
# Forgeries: a replay of a delivery this much older, and an account that is not the addressee.
STALE_BY = timedelta(hours=2)
FOREIGN_ACCOUNT_ID = "acc_ForeignMerchant0"
ACCOUNT_NAME = "payonce sandbox merchant"


class BoletoNotices:
    """Turns a confirmed payment or a refund into a webhook event on the notifier's schedule."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, BoletoCredentials],
        notifier: Notifier,
        voucher_url: Callable[[Charge], str],
    ) -> None:
        self._accounts = accounts
        self._notifier = notifier
        self._voucher_url = voucher_url
        self._seq = itertools.count(1)

    def on_paid(self, charge: Charge, at: datetime) -> None:
        self._notify(charge, "charge.paid", at)

    def on_refunded(self, charge: Charge, refund: Refund) -> None:
        self._notify(charge, "charge.refunded", refund.created_at)

    def _notify(self, charge: Charge, event_type: str, at: datetime) -> None:
        url = charge.terms.notification_url
        account = self._accounts.get(charge.terms.account_id)
        if not url or account is None:
            return
        event_id = "hook_" + _digest(f"{charge.id}|{event_type}|{next(self._seq)}")
        # The event is fixed now: every retry tells the same story even if the charge moves on.
        event: dict[str, Any] = {
            "id": event_id,
            "type": event_type,
            "created_at": iso(at),
            "account": {"id": account.account_id, "name": ACCOUNT_NAME},
            "data": charge_json(charge, self._voucher_url(charge)),
        }
        secret = account.webhook_secret

        def render(attempt_at: datetime, forgery: Forgery | None) -> Outgoing:
            body = _forged_event(event, forgery) if forgery else event
            raw = json_body(body)
            stamp = int(attempt_at.timestamp())
            if forgery == "stale_timestamp":
                stamp = int((attempt_at - STALE_BY).timestamp())
            digest = signature(secret, stamp, raw)
            if forgery == "bad_signature":
                digest = tampered(digest)
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: f"t={stamp},v1={digest}",
            }
            return Outgoing(headers, raw)

        self._notifier.schedule(
            channel=CHANNEL,
            notify_id=event_id,
            out_trade_no=charge.code,
            url=url,
            render=render,
            policy=BOLETO_RETRIES,
        )


def _forged_event(event: dict[str, Any], forgery: Forgery) -> dict[str, Any]:
    """A copy of the event with the lie the forgery tells (signature and time are the
    renderer's business)."""
    if forgery == "changed_amount":
        data = dict(event["data"])
        data["amount"] += 100
        if data["paid_amount"]:
            data["paid_amount"] += 100
        return {**event, "data": data}
    if forgery == "other_merchant":
        return {**event, "account": {"id": FOREIGN_ACCOUNT_ID, "name": "Another merchant"}}
    return event


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]
