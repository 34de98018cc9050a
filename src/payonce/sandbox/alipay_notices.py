"""Alipay's asynchronous notifications (trade_status_sync): their signed form and schedule."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from payonce.sandbox.alipay_trades import (
    BUYER_ID,
    CHANNEL,
    Order,
    Trade,
    TradeStatus,
    notify_id,
)
from payonce.sandbox.alipay_wire import china_time, yuan
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.faults import Forgery
from payonce.sandbox.notifier import ALIPAY_RETRIES, Notifier, Outgoing
from payonce.sandbox.signing import (
    NOTIFICATION_UNSIGNED_KEYS,
    sign_rsa2,
    tampered,
    unsigned_string,
)

FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
# Forgeries: a replay of a delivery this much older, and a merchant that is not the addressee.
STALE_BY = timedelta(hours=2)
FOREIGN_APP_ID = "2021000999999999"
FOREIGN_SELLER_ID = "2088999999999999"


class AlipayNotices:
    """Turns each notified status change into a notification on the notifier's schedule."""

    def __init__(
        self,
        *,
        apps: Mapping[str, AlipayCredentials],
        signer: rsa.RSAPrivateKey,
        notifier: Notifier,
    ) -> None:
        self._apps = apps
        self._signer = signer
        self._notifier = notifier
        self._seq = itertools.count(1)

    def on_status(self, order: Order, trade: Trade, at: datetime) -> None:
        """Alipay notifies TRADE_SUCCESS and TRADE_CLOSED, each change with its own notify_id."""
        url = order.terms.notify_url
        if not url or trade.status not in (TradeStatus.TRADE_SUCCESS, TradeStatus.TRADE_CLOSED):
            return
        # The fields are fixed now: a retry tells the same story even if the trade moved on.
        fields = self._fields(order, trade)
        identifier = notify_id(trade, next(self._seq))
        signer = self._signer

        def render(attempt_at: datetime, forgery: Forgery | None) -> Outgoing:
            form = {**fields, "notify_id": identifier, "notify_time": china_time(attempt_at)}
            if forgery == "changed_amount":
                form["total_amount"] = yuan(order.terms.amount + 100)
            elif forgery == "other_merchant":
                form["app_id"], form["seller_id"] = FOREIGN_APP_ID, FOREIGN_SELLER_ID
            elif forgery == "stale_timestamp":
                form["notify_time"] = china_time(attempt_at - STALE_BY)
            message = unsigned_string(form, exclude=NOTIFICATION_UNSIGNED_KEYS)
            form["sign"] = sign_rsa2(signer, message)
            if forgery == "bad_signature":
                form["sign"] = tampered(form["sign"])
            return Outgoing(FORM_HEADERS, urlencode(form).encode("utf-8"))

        self._notifier.schedule(
            channel=CHANNEL,
            notify_id=identifier,
            out_trade_no=order.out_trade_no,
            url=url,
            render=render,
            policy=ALIPAY_RETRIES,
        )

    def _fields(self, order: Order, trade: Trade) -> dict[str, str]:
        app = self._apps.get(order.terms.app_id)
        fields = {
            "notify_type": "trade_status_sync",
            "app_id": order.terms.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": trade.trade_no,
            "out_trade_no": order.out_trade_no,
            "trade_status": trade.status.value,
            "total_amount": yuan(order.terms.amount),
            "seller_id": app.seller_id if app is not None else "",
            "buyer_id": BUYER_ID,
            "gmt_create": china_time(trade.created_at),
            "subject": order.terms.subject,
        }
        if trade.paid_at is not None:
            fields["gmt_payment"] = china_time(trade.paid_at)
            fields["receipt_amount"] = yuan(trade.captured)
            fields["buyer_pay_amount"] = yuan(trade.captured)
            fields["invoice_amount"] = yuan(trade.captured)
            fields["point_amount"] = "0.00"
        if trade.closed_at is not None:
            fields["gmt_close"] = china_time(trade.closed_at)
        if trade.refunds:
            last = max(trade.refunds.values(), key=lambda refund: refund.at)
            fields["refund_fee"] = yuan(trade.refunded)
            fields["gmt_refund"] = china_time(last.at) + ".000"
            fields["out_biz_no"] = last.out_request_no
        # Empty values are neither signed nor sent (the SDK's verify would count them).
        return {key: value for key, value in fields.items() if value}
