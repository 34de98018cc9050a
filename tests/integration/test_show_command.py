"""`payonce show ORDER_ID` prints the whole history of an order: a two-channel order whose extra
capture was refunded, every transition with from, to, why and cause, and never its secret."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from payonce.sandbox.faults import FaultSettings
from payonce.service import outbox
from payonce.service.provenance import caused_by
from tests.integration.conftest import Live


async def _payonce(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run the real command line, as an operator would, against the server's data directory."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PAYONCE_")  # only what this test says
    }
    env["PAYONCE_DATA_DIR"] = str(data_dir)
    env["COLUMNS"] = "80"  # a narrow terminal: lines must still come whole
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payonce",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _two_channel_order(live: Live) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alipay scanned, then WeChat Pay chosen (Alipay's trade closed first, but the payment
    under way lands anyway); WeChat Pay pays the order and the Alipay capture is refunded.
    A second passes between steps, so the timeline's order is the order things happened."""

    async def then() -> None:
        await live.sandbox.advance_clock(1)

    order = await live.create_order()
    await then()
    alipay = (await live.apply(order, "alipay", "pc")).json()
    assert (await live.wallet("scan", alipay["action"]["qr_code"])).status_code == 200
    await then()
    applied = await live.apply(order, "wechat", "pc")
    assert applied.status_code == 201, applied.text
    wechat = applied.json()
    await then()
    await live.sandbox.deliver_due()  # Alipay tells of the close, too
    await then()
    live.sandbox.set_faults(FaultSettings(pay_after_close_rate=1.0))
    assert (await live.wallet("scan", wechat["action"]["qr_code"])).status_code == 200
    assert (await live.wallet("pay", wechat["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    assert (await live.order(order))["paid_payment_id"] == wechat["id"]
    await then()
    assert (await live.wallet("pay", alipay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    await then()
    with caused_by("job relay"):  # what the background loop's relay pass names itself
        await outbox.deliver_due(live.container.deps)
    return order, alipay, wechat


def _event_id(rows: list[tuple[str | None, ...]], topic: str) -> str:
    """The id of the event of ``topic`` in the timeline (there is one of each here)."""
    [found] = {row[2] for row in rows if row[1] == "event" and (row[3] or "").startswith(topic)}
    return str(found)


def _line_with(lines: list[str], *parts: str) -> str:
    found = [line for line in lines if all(part in line for part in parts)]
    assert len(found) == 1, (parts, found)
    return found[0]


async def test_show_prints_the_complete_timeline_of_a_two_channel_order_with_its_refund(
    live: Live,
) -> None:
    order, alipay, wechat = await _two_channel_order(live)
    by_channel = {p["channel"]: p for p in await live.payments(order)}
    assert (by_channel["wechat"]["status"], by_channel["wechat"]["applied"]) == ("PAID", True)
    assert by_channel["alipay"]["status"] == "REFUNDED"
    refund_no = by_channel["alipay"]["refund"]["refund_no"]
    secret = order["client_secret"]
    data_dir = live.container.settings.data_dir

    code, out, err = await _payonce(data_dir, "show", order["id"])

    assert code == 0, err
    assert secret not in out
    lines = out.splitlines()
    final = await live.order(order)
    assert lines[:6] == [
        f"order {order['id']}",
        "  amount          39.98 CNY",
        "  status          READY_FOR_SHIPMENT",
        f"  status_version  {final['status_version']}",
        f"  expires_at      {order['expires_at'][:19].replace('T', ' ')}.000Z",
        f"  paid by         {wechat['id']}",
    ]
    assert lines[6] == "payments"
    assert lines[7:9] == [
        f"  {alipay['id']}  alipay  pc   {alipay['out_trade_no']}  REFUNDED",
        f"  {wechat['id']}  wechat  pc   {wechat['out_trade_no']}  PAID  applied",
    ]
    assert lines[9:11] == [
        "refunds",
        f"  {refund_no}  of {alipay['id']}  39.98 CNY  duplicate  SUCCEEDED",
    ]
    assert lines[11] == "timeline"
    timeline = lines[12:]
    # Each line: when, what it is about (kind, id), what happened, "— why", "[cause]".
    parsed = [
        re.fullmatch(r"  (\S+ \S+)  (\S+) +(\S+)  (.*?)(?:  — (.*?))?(?:  \[(.*)\])?", line)
        for line in timeline
    ]
    assert all(parsed), timeline
    rows = [match.groups() for match in parsed if match]
    seen = [(kind, subject, what) for _, kind, subject, what, _, _ in rows]
    n_alipay = _line_with(timeline, "alipay notification", "capture of a closing trade: PAID")
    n_wechat = _line_with(timeline, "wechat notification")
    [n_closed] = [
        line for line in timeline if "alipay notification" in line and line not in (n_alipay,)
    ]
    assert seen == [
        ("order", order["id"], "∅ → UNPAID"),
        ("payment", alipay["id"], "∅ → UNPAID"),
        ("payment", alipay["id"], "UNPAID → PAYING"),
        ("payment", alipay["id"], "PAYING → CLOSING"),
        ("payment", alipay["id"], "CLOSING → CLOSED"),
        ("payment", wechat["id"], "∅ → UNPAID"),
        ("payment", wechat["id"], "UNPAID → PAYING"),
        ("notification", n_closed.split()[3], f"alipay notification about {alipay['id']}"),
        ("notification", n_wechat.split()[3], f"wechat notification about {wechat['id']}"),
        ("payment", wechat["id"], "PAYING → PAID"),
        ("order", order["id"], "UNPAID → READY_FOR_SHIPMENT"),
        (
            "event",
            _event_id(rows, "payment.succeeded"),
            f"payment.succeeded about {wechat['id']}",
        ),
        ("delivery", _event_id(rows, "payment.succeeded"), "delivered to orders (1 attempt)"),
        ("notification", n_alipay.split()[3], f"alipay notification about {alipay['id']}"),
        ("payment", alipay["id"], "CLOSED → PAID"),
        (
            "event",
            _event_id(rows, "payment.extra_captured"),
            f"payment.extra_captured about {alipay['id']}",
        ),
        ("refund", refund_no, "∅ → REQUESTED"),
        ("payment", alipay["id"], "PAID → REFUNDING"),
        ("payment", alipay["id"], "REFUNDING → REFUNDED"),
        ("refund", refund_no, "REQUESTED → SUCCEEDED"),
        # The shopper's push is relay-only: it waited for the relay's pass.
        ("delivery", _event_id(rows, "payment.succeeded"), "delivered to shopper (1 attempt)"),
        (
            "delivery",
            _event_id(rows, "payment.extra_captured"),
            "delivered to refunds (1 attempt)",
        ),
        (
            "delivery",
            _event_id(rows, "payment.extra_captured"),
            "delivered to shopper (1 attempt)",
        ),
    ], "\n".join(timeline)
    # Why each moved, and who moved it where this test knows (the relay it ran itself).
    why = {(subject, what): (reason, cause) for _, _, subject, what, reason, cause in rows}
    assert why[(order["id"], "∅ → UNPAID")][0] == "order created"
    assert why[(wechat["id"], "∅ → UNPAID")][0] == "intent written: wechat pc"
    assert why[(alipay["id"], "PAYING → CLOSING")][0] == (
        "close requested: close before a new trade: wechat pc"
    )
    assert why[(alipay["id"], "CLOSING → CLOSED")][0] == "close at the provider: CLOSED"
    assert why[(wechat["id"], "PAYING → PAID")][0] == (
        f"notification wechat {n_wechat.split()[3]}: paid, applied to the order"
    )
    assert why[(order["id"], "UNPAID → READY_FOR_SHIPMENT")][0] == (
        f"payment.succeeded {_event_id(rows, 'payment.succeeded')}: paid by {wechat['id']}"
    )
    # Alipay's notification of a trade we closed makes payonce ask Alipay what holds now.
    assert why[(alipay["id"], "CLOSED → PAID")][0] == "query: PAID, an extra capture to refund"
    assert why[(refund_no, "∅ → REQUESTED")] == (
        f"extra capture (duplicate) of {alipay['id']}",
        "job relay",
    )
    assert why[(alipay["id"], "REFUNDING → REFUNDED")] == (
        f"refund {refund_no} confirmed by the provider",
        "job relay",
    )
    assert why[(refund_no, "REQUESTED → SUCCEEDED")] == ("confirmed by the provider", "job relay")
    # Requests name themselves: the method, the path and the request's id.
    assert re.fullmatch(r"POST /api/orders req_[0-9a-f]{16}", why[(order["id"], "∅ → UNPAID")][1])
    assert re.fullmatch(
        rf"POST /api/orders/{order['id']}/payments req_[0-9a-f]{{16}}",
        why[(wechat["id"], "∅ → UNPAID")][1],
    )
    assert why[(wechat["id"], "PAYING → PAID")][1].startswith("POST /api/notify/wechat req_")
    assert all(cause for kind, _, _, _, _, cause in rows if kind in ("order", "payment", "refund"))

    code, out, err = await _payonce(data_dir, "show", order["id"], "--json")
    assert code == 0, err
    assert secret not in out
    shown = json.loads(out)
    assert shown["order"]["status"] == "READY_FOR_SHIPMENT"
    assert [(p["channel"], p["status"]) for p in shown["payments"]] == [
        ("alipay", "REFUNDED"),
        ("wechat", "PAID"),
    ]
    assert [(r["refund_no"], r["status"]) for r in shown["refunds"]] == [(refund_no, "SUCCEEDED")]
    json_changes = [
        (m["kind"], m["subject"], m["what"])
        for m in shown["timeline"]
        if m["kind"] in ("order", "payment", "refund")
    ]
    assert json_changes == [row for row in seen if row[0] in ("order", "payment", "refund")]


async def test_show_of_an_unknown_order_exits_2_and_says_so(live: Live) -> None:
    await live.create_order()  # the database exists, the order does not
    code, out, _ = await _payonce(live.container.settings.data_dir, "show", "ord_nosuchorder")
    assert code == 2
    assert "no order ord_nosuchorder" in out
