"""The notification matrix (I8): on every channel, forged, tampered, replayed and garbled
variants of a genuine notification change nothing, and each is refused and counted with why.

Each channel gets one server and one stage (tests/integration/notification_cases.py builds the
cases): a trade the shopper paid in the wallet whose notifications were all dropped, so payonce
has heard nothing, and another order's open trade. Every case is posted on its own and must be
refused, leave every record as it was, and add exactly one rejection with its expected reason to
``payonce_notification_rejections_total``. Then the genuine notification pays the order exactly
once, and its replay is acknowledged and changes nothing. A last test shows that a refused
notification naming one of our open trades makes its poll due now, and only that.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from payonce.adapters.clock import AdjustableClock
from payonce.bootstrap import bootstrap
from payonce.config import Settings
from payonce.domain.ids import OrderId, PaymentId
from payonce.entrypoints.web.app import create_app
from payonce.sandbox.faults import FaultSettings
from payonce.sandbox.keys import SandboxKeys
from payonce.service.polling import poll_due
from tests.conftest import START
from tests.integration.conftest import API_KEY, Live, NotifyOutage
from tests.integration.notification_cases import CASES, Case, Scene
from tests.integration.test_channels import CASES as CHANNELS

# One paying platform per channel; the second order's cart has another amount.
PLATFORMS = {
    "alipay": "alipay-pc",
    "wechat": "wechat-pc",
    "paypal": "paypal-pc",
    "boleto": "boleto-pc",
}
OTHER_CART = [{"sku": "SKU-2", "name": "Cup", "quantity": 1, "unit_amount": 1999}]
AMOUNT = 3998


@dataclass
class Stage:
    """A channel's server and its two orders: A paid in the wallet, unheard; B open."""

    live: Live
    channel: str
    order: dict[str, Any]
    payment: dict[str, Any]
    other_order: dict[str, Any]
    other_payment: dict[str, Any]
    notify_id: str
    keys: SandboxKeys

    def scene(self) -> Scene:
        return Scene(
            channel=self.channel,
            keys=self.keys,
            genuine=self.live.sandbox.notification(self.channel, self.notify_id),
            now=self.live.clock.now(),
            out_trade_no=self.payment["out_trade_no"],
            other_out_trade_no=self.other_payment["out_trade_no"],
        )

    async def state(self) -> tuple[Any, ...]:
        """Everything a notification could change: both orders and payments as stored, their
        notifications kept, their outbox events, and the provider's ledger."""
        orders = [OrderId(self.order["id"]), OrderId(self.other_order["id"])]
        payments = [PaymentId(self.payment["id"]), PaymentId(self.other_payment["id"])]
        async with self.live.container.deps.storage.transaction() as uow:
            stored = (
                [await uow.orders.get(order_id) for order_id in orders],
                [await uow.payments.get(payment_id) for payment_id in payments],
                await uow.notifications.for_payments(payments),
                [
                    len(await uow.outbox.search(undelivered_only=False, limit=500, order_id=o))
                    for o in orders
                ],
            )
        return (*stored, [(m.kind, m.out_trade_no) for m in self.live.sandbox.ledger()])


@dataclass
class Stages:
    """Each channel's stage, set up on first use and shared by that channel's cases."""

    root: Path
    keys_dir: Path
    started: dict[str, Stage] = field(default_factory=dict)
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], Live]] = field(default_factory=list)

    async def get(self, channel: str) -> Stage:
        if channel not in self.started:
            self.started[channel] = await self._stage(channel)
        return self.started[channel]

    async def _start(self, channel: str) -> Live:
        data_dir = self.root / channel
        data_dir.mkdir(parents=True)
        shutil.copytree(self.keys_dir, data_dir / "sandbox")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings(
            data_dir=data_dir,
            api_key=API_KEY,  # type: ignore[arg-type]
            clock="adjustable",
            mount_sandbox=True,
        )
        clock = AdjustableClock(start=START)
        container = await bootstrap(settings, public_url=url, clock=clock)
        outage = NotifyOutage(create_app(container, run_background=False))
        server = uvicorn.Server(uvicorn.Config(outage, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        live = Live(url, container, clock, httpx.AsyncClient(base_url=url, timeout=30), outage)
        self.servers.append((server, task, live))
        return live

    async def _stage(self, channel: str) -> Stage:
        live = await self._start(channel)
        row = CHANNELS[PLATFORMS[channel]]
        other_order = await live.create_order(OTHER_CART, currency=row.currency)
        other = await live.apply(other_order, row.channel, row.platform)
        assert other.status_code == 201, other.text
        order = await live.create_order(currency=row.currency)
        applied = await live.apply(order, row.channel, row.platform)
        assert applied.status_code == 201, applied.text
        payment = applied.json()
        live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
        await row.pay(live, payment["action"][row.code_field])
        await live.sandbox.deliver_due()
        sent = [
            d
            for d in live.sandbox.deliveries(payment["out_trade_no"])
            if d.fault == "dropped" and d.attempt == 1
        ]
        # PayPal: the approval (payonce captures on it); elsewhere the one payment notice.
        [first] = sent[:1]
        assert (await live.order(order))["status"] == "UNPAID"  # payonce has heard nothing
        return Stage(
            live=live,
            channel=channel,
            order=order,
            payment=payment,
            other_order=other_order,
            other_payment=other.json(),
            notify_id=first.notify_id,
            keys=SandboxKeys.load_or_create(self.keys_dir),
        )

    async def aclose(self) -> None:
        for server, task, live in self.servers:
            await live.http.aclose()
            server.should_exit = True
            await task
            await live.container.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stages(
    tmp_path_factory: pytest.TempPathFactory, sandbox_keys: Path
) -> AsyncIterator[Stages]:
    staged = Stages(tmp_path_factory.mktemp("matrix"), sandbox_keys)
    yield staged
    await staged.aclose()


def _rejections(live: Live, channel: str, reason: str) -> float:
    return live.container.metrics.value(
        "payonce_notification_rejections_total", channel=channel, reason=reason
    )


def _refused(live: Live, channel: str) -> float:
    return live.container.metrics.value(
        "payonce_notifications_total", channel=channel, result="rejected"
    )


MATRIX = [(channel, case) for channel, cases in CASES.items() for case in cases]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("channel", "case"), MATRIX, ids=[f"{channel}-{case.name}" for channel, case in MATRIX]
)
async def test_a_forged_notification_is_refused_counted_and_changes_nothing(
    stages: Stages, channel: str, case: Case
) -> None:
    stage = await stages.get(channel)
    live = stage.live
    forged = case.build(stage.scene())
    endpoint = forged.endpoint or channel
    before = await stage.state()
    counted = _rejections(live, endpoint, case.reason)
    refused = _refused(live, endpoint)

    answer = await live.http.post(
        f"/api/notify/{endpoint}", content=forged.body, headers=dict(forged.headers)
    )

    assert answer.status_code >= 400, (answer.status_code, answer.text)
    if endpoint == "alipay":
        assert answer.text == "fail"
    # Exactly one rejection, counted with the expected reason.
    assert (_rejections(live, endpoint, case.reason), _refused(live, endpoint)) == (
        counted + 1,
        refused + 1,
    ), answer.text
    assert await stage.state() == before


def test_every_channel_has_at_least_thirty_distinct_cases() -> None:
    for channel, cases in CASES.items():
        names = [case.name for case in cases]
        assert len(set(names)) == len(names) >= 30, channel


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("channel", list(CASES))
async def test_then_the_genuine_notification_pays_once_and_its_replay_changes_nothing(
    stages: Stages, channel: str
) -> None:
    stage = await stages.get(channel)
    live = stage.live
    genuine = live.sandbox.notification(channel, stage.notify_id)
    answer = await live.http.post(
        f"/api/notify/{channel}", content=genuine.body, headers=dict(genuine.headers)
    )
    assert 200 <= answer.status_code < 300, answer.text
    final = await live.order(stage.order)
    assert (final["status"], final["paid_payment_id"]) == (
        "READY_FOR_SHIPMENT",
        stage.payment["id"],
    )
    [paid] = await live.payments(stage.order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    ledger = [(m.kind, m.amount) for m in live.sandbox.ledger(stage.payment["out_trade_no"])]
    assert ledger == [("capture", AMOUNT)]
    assert (await live.order(stage.other_order))["status"] == "UNPAID"
    assert not live.sandbox.ledger(stage.other_payment["out_trade_no"])

    # The same notification again (freshly signed, as a provider retry): acknowledged, and
    # deduplicated by its id, not refused.
    applied = await stage.state()
    refused = _refused(live, channel)
    replay = live.sandbox.notification(channel, stage.notify_id)
    again = await live.http.post(
        f"/api/notify/{channel}", content=replay.body, headers=dict(replay.headers)
    )
    assert (again.status_code, again.content) == (answer.status_code, answer.content)
    assert await stage.state() == applied
    assert _refused(live, channel) == refused


async def _forge_for(live: Live, channel: str, out_trade_no: str) -> int:
    """Post the bad-signature forgery of the trade's first notification; its status code."""
    [(_, notify_id), *_] = live.sandbox.notifications(out_trade_no)
    forged = live.sandbox.notification(channel, notify_id, "bad_signature")
    answer = await live.http.post(
        f"/api/notify/{channel}", content=forged.body, headers=dict(forged.headers)
    )
    return answer.status_code


@pytest.mark.parametrize("case", ["alipay-pc", "wechat-pc", "paypal-pc"])
async def test_a_refused_notification_makes_payonce_ask_the_provider_soon_not_trust_it(
    live: Live, case: str
) -> None:
    row = CHANNELS[case]
    deps = live.container.deps
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order(currency=row.currency)
    applied = await live.apply(order, row.channel, row.platform)
    assert applied.status_code == 201, applied.text
    out_trade_no = applied.json()["out_trade_no"]
    await row.pay(live, applied.json()["action"][row.code_field])
    assert await poll_due(deps) == 0  # its first poll is not due yet
    calls = len(live.sandbox.calls(out_trade_no))

    assert await _forge_for(live, row.channel, out_trade_no) == 400

    # Not trusted, and the provider was not called from the notify request ...
    assert (await live.order(order))["status"] == "UNPAID"
    assert len(live.sandbox.calls(out_trade_no)) == calls
    # ... but the trade's poll is due now: the poller asks, and the provider's answer pays.
    assert await poll_due(deps) == 1
    final = await live.order(order)
    assert final["status"] == "READY_FOR_SHIPMENT"
    assert [m.kind for m in live.sandbox.ledger(out_trade_no)] == ["capture"]


async def test_refused_notifications_bring_a_trade_s_poll_forward_at_most_once_per_interval(
    live: Live,
) -> None:
    deps = live.container.deps
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order()
    applied = await live.apply(order, "wechat", "pc")
    assert applied.status_code == 201, applied.text
    out_trade_no, payment_id = applied.json()["out_trade_no"], applied.json()["id"]
    paid = await live.create_order()  # only to have a signed notification to forge from
    other = (await live.apply(paid, "wechat", "pc")).json()
    await CHANNELS["wechat-pc"].pay(live, other["action"]["qr_code"])
    [(_, notify_id)] = live.sandbox.notifications(other["out_trade_no"])
    stage = Scene(
        channel="wechat",
        keys=SandboxKeys.load_or_create(deps_data_dir(live)),
        genuine=live.sandbox.notification("wechat", notify_id),
        now=live.clock.now(),
        out_trade_no=other["out_trade_no"],
        other_out_trade_no=out_trade_no,
    )
    # Validly sealed, badly signed: it names the open trade, whose poll is not due.
    forged = next(c for c in CASES["wechat"] if c.name == "resigned-other-order").build(stage)
    headers = {**forged.headers, "Wechatpay-Signature": "AAAA"}

    async def post() -> None:
        answer = await live.http.post("/api/notify/wechat", content=forged.body, headers=headers)
        assert answer.status_code == 400

    async def due() -> bool:
        async with deps.storage.transaction() as uow:
            job = await uow.polls.get(PaymentId(payment_id))
        assert job is not None
        return job.due_at <= live.clock.now()

    assert not await due()
    await post()
    assert await due()
    assert await poll_due(deps) == 1  # still open: polled, and its next poll set later
    assert not await due()
    for _ in range(3):
        await post()  # within the interval: the poll stays where it is
    assert not await due()
    live.clock.advance(timedelta(seconds=deps.policy.read_repair_interval_s + 1))
    await post()
    assert await due()


def deps_data_dir(live: Live) -> Path:
    return live.container.settings.data_dir / "sandbox"
