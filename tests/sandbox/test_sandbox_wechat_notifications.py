"""WeChat Pay's payment notifications: encrypted and signed, retried on its schedule, echoed."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import accumulate

import pytest
from sandbox_harness import START
from wechat_harness import WechatEnv, WechatReceiver, wechat_sdk

from payonce.sandbox import FaultSettings
from payonce.sandbox.faults import FORGERIES, FaultRates
from payonce.sandbox.wechat import WechatChannel

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The waits after each failed attempt, as WeChat publishes them.
WAITS = [
    timedelta(seconds=15),
    timedelta(seconds=15),
    timedelta(seconds=30),
    timedelta(minutes=3),
    timedelta(minutes=10),
    timedelta(minutes=20),
    timedelta(minutes=30),
    timedelta(minutes=30),
    timedelta(minutes=30),
    timedelta(minutes=60),
    timedelta(hours=3),
    timedelta(hours=3),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=6),
]


def _channel(wechat: WechatEnv) -> WechatChannel:
    channel = wechat.env.sandbox.channel("wechat")
    assert isinstance(channel, WechatChannel)
    return channel


@pytest.fixture
def quiet(wechat: WechatEnv) -> WechatEnv:
    """No echoed deliveries, so a test sees exactly the schedule's attempts."""
    _channel(wechat).echo_rate = 0.0
    return wechat


async def test_a_payment_is_notified_encrypted_and_the_sdk_verifies_it(
    quiet: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    wechat = quiet
    transaction_id = await wechat.paid("n_wx_1", 3998, notify_url=wechat_receiver.url)
    assert wechat_receiver.bodies == []  # nothing leaves before the dispatcher runs
    assert await wechat.env.sandbox.deliver_due() == 1
    [verified] = wechat_receiver.verified
    assert verified is not None
    creds = wechat.credentials
    assert verified["resource"] == {
        "appid": creds.appid,
        "mchid": creds.mchid,
        "out_trade_no": "n_wx_1",
        "transaction_id": transaction_id,
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2026-11-24T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {
            "total": 3998,
            "currency": "CNY",
            "payer_total": 3998,
            "payer_currency": "CNY",
        },
    }
    envelope = json.loads(wechat_receiver.bodies[0])
    resource = envelope.pop("resource")
    notify_id = envelope.pop("id")
    assert envelope == {
        "create_time": "2026-11-24T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
    }
    assert set(resource) == {"original_type", "algorithm", "ciphertext", "associated_data", "nonce"}
    assert (resource["algorithm"], resource["associated_data"]) == (
        "AEAD_AES_256_GCM",
        "transaction",
    )
    headers = wechat_receiver.headers[0]
    assert headers["content-type"] == "application/json"
    assert headers["wechatpay-timestamp"] == str(int(START.timestamp()))
    assert headers["wechatpay-serial"] == creds.platform_public_key_id
    assert headers["wechatpay-signature-type"] == "WECHATPAY2-SHA256-RSA2048"
    [delivery] = wechat.env.sandbox.deliveries("n_wx_1")
    assert (delivery.notify_id, delivery.attempt, delivery.ok, delivery.status_code) == (
        notify_id,
        1,
        True,
        200,
    )
    wechat.env.clock.advance(timedelta(days=2))
    assert await wechat.env.sandbox.deliver_due() == 0
    assert len(wechat_receiver.bodies) == 1


async def test_retries_follow_wechats_schedule_until_the_last_attempt(
    quiet: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    wechat = quiet
    wechat_receiver.default = 500
    await wechat.paid("n_wx_2", notify_url=wechat_receiver.url)
    assert await wechat.env.sandbox.deliver_due() == 1
    for wait in WAITS:
        wechat.env.clock.advance(wait - timedelta(seconds=1))
        assert await wechat.env.sandbox.deliver_due() == 0  # not due a second early
        wechat.env.clock.advance(timedelta(seconds=1))
        assert await wechat.env.sandbox.deliver_due() == 1
    wechat.env.clock.advance(timedelta(days=7))
    assert await wechat.env.sandbox.deliver_due() == 0
    deliveries = wechat.env.sandbox.deliveries("n_wx_2")
    assert [d.at - START for d in deliveries] == [timedelta(0), *accumulate(WAITS)]
    assert [d.attempt for d in deliveries] == list(range(1, 17))
    assert [d.status_code for d in deliveries] == [500] * 16
    assert not any(d.ok for d in deliveries)
    assert len({d.notify_id for d in deliveries}) == 1
    # The same body every time; headers signed afresh with each attempt's time.
    assert len(set(wechat_receiver.bodies)) == 1
    stamps = [
        int(h["wechatpay-timestamp"]) - int(START.timestamp()) for h in wechat_receiver.headers
    ]
    assert stamps == [0, *(int(wait.total_seconds()) for wait in accumulate(WAITS))]
    assert all(v is not None for v in wechat_receiver.verified)


async def test_any_2xx_stops_the_retries(quiet: WechatEnv, wechat_receiver: WechatReceiver) -> None:
    wechat = quiet
    wechat_receiver.answers = [500, 503, 204]
    await wechat.paid("n_wx_3", notify_url=wechat_receiver.url)
    await wechat.env.sandbox.deliver_due()
    for wait in WAITS[:2]:
        wechat.env.clock.advance(wait)
        await wechat.env.sandbox.deliver_due()
    wechat.env.clock.advance(timedelta(days=3))
    assert await wechat.env.sandbox.deliver_due() == 0
    deliveries = wechat.env.sandbox.deliveries("n_wx_3")
    assert [(d.at - START, d.status_code, d.ok) for d in deliveries] == [
        (timedelta(0), 500, False),
        (timedelta(seconds=15), 503, False),
        (timedelta(seconds=30), 204, True),
    ]


async def test_an_echo_is_the_identical_delivery_a_second_later(
    wechat: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    assert _channel(wechat).echo_rate == 0.1  # the default
    put = await wechat.env.http.put(f"{wechat.env.url}/wechat/echo", json={"echo_rate": 1.0})
    assert put.json() == {"echo_rate": 1.0}
    assert (await wechat.env.http.get(f"{wechat.env.url}/wechat/echo")).json() == put.json()
    bad = await wechat.env.http.put(f"{wechat.env.url}/wechat/echo", json={"echo_rate": 2})
    assert bad.status_code == 422

    await wechat.paid("n_wx_4", notify_url=wechat_receiver.url)
    assert await wechat.env.sandbox.deliver_due() == 1
    wechat.env.clock.advance(timedelta(milliseconds=999))
    assert await wechat.env.sandbox.deliver_due() == 0
    wechat.env.clock.advance(timedelta(milliseconds=1))
    assert await wechat.env.sandbox.deliver_due() == 1
    first, echo = wechat.env.sandbox.deliveries("n_wx_4")
    assert (first.fault, echo.fault) == (None, "echo")
    assert echo.at - first.at == timedelta(seconds=1)
    assert (echo.body, echo.headers) == (first.body, first.headers)
    assert wechat_receiver.bodies[0] == wechat_receiver.bodies[1]
    assert (
        wechat_receiver.headers[0]["wechatpay-signature"]
        == (wechat_receiver.headers[1]["wechatpay-signature"])
    )
    wechat.env.clock.advance(timedelta(days=1))
    assert await wechat.env.sandbox.deliver_due() == 0  # an echo is never retried


async def test_echoes_replay_under_the_same_seed(
    wechat: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    _channel(wechat).echo_rate = 0.5

    async def pattern(prefix: str) -> list[bool]:
        wechat.env.sandbox.set_faults(FaultSettings(seed=11))
        for index in range(8):
            await wechat.paid(f"{prefix}{index:03d}", notify_url=wechat_receiver.url)
            await wechat.env.sandbox.deliver_due()
        wechat.env.clock.advance(timedelta(seconds=1))
        await wechat.env.sandbox.deliver_due()
        return [
            any(d.fault == "echo" for d in wechat.env.sandbox.deliveries(f"{prefix}{index:03d}"))
            for index in range(8)
        ]

    first = await pattern("n_ea_")
    second = await pattern("n_eb_")
    assert first == second
    assert True in first
    assert False in first


async def test_each_forgery_fails_the_sdk_or_tells_a_different_story(
    quiet: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    wechat = quiet
    await wechat.paid("n_wx_5", 3998, notify_url=wechat_receiver.url)
    await wechat.env.sandbox.deliver_due()
    [delivery] = wechat.env.sandbox.deliveries("n_wx_5")
    verifier = wechat_sdk(wechat.credentials, "http://unused.invalid")
    genuine = wechat.env.sandbox.notification("wechat", delivery.notify_id)
    seen = {}
    for forgery in FORGERIES:
        forged = wechat.env.sandbox.notification("wechat", delivery.notify_id, forgery)
        assert (forged.body, dict(forged.headers)) != (genuine.body, dict(genuine.headers))
        seen[forgery] = (forged, verifier.callback(dict(forged.headers), forged.body))
    assert seen["bad_signature"][1] is None
    changed = seen["changed_amount"][1]
    assert changed["resource"]["amount"]["total"] == 4098
    other = seen["other_merchant"][1]
    assert (other["resource"]["mchid"], other["resource"]["appid"]) == (
        "1900009999",
        "wx0000000000000000",
    )
    stale_headers, stale = seen["stale_timestamp"][0].headers, seen["stale_timestamp"][1]
    assert stale["resource"] == verifier.callback(dict(genuine.headers), genuine.body)["resource"]
    assert int(stale_headers["Wechatpay-Timestamp"]) == int(START.timestamp()) - 7200


async def test_notification_faults_on_the_wechat_channel_only(
    quiet: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    wechat = quiet
    wechat.env.sandbox.set_faults(
        FaultSettings(seed=2, channels={"wechat": FaultRates(notify_drop_rate=1.0)})
    )
    await wechat.paid("n_wx_6", notify_url=wechat_receiver.url)
    assert await wechat.env.sandbox.deliver_due() == 1
    [dropped] = wechat.env.sandbox.deliveries("n_wx_6")
    assert (dropped.fault, dropped.ok, dropped.status_code) == ("dropped", False, None)
    assert wechat_receiver.bodies == []

    wechat.env.sandbox.set_faults(
        FaultSettings(channels={"wechat": FaultRates(notify_duplicate_rate=1.0)})
    )
    wechat.env.clock.advance(timedelta(seconds=15))
    assert await wechat.env.sandbox.deliver_due() == 1
    assert [(d.attempt, d.fault) for d in wechat.env.sandbox.deliveries("n_wx_6")] == [
        (1, "dropped"),
        (2, None),
        (2, "duplicate"),
    ]
    assert wechat_receiver.bodies[0] == wechat_receiver.bodies[1]


async def test_a_delayed_or_reordered_notification_is_overtaken(
    quiet: WechatEnv, wechat_receiver: WechatReceiver
) -> None:
    wechat = quiet
    wechat.env.sandbox.set_faults(
        FaultSettings(
            notify_reorder_s=60,
            notify_delay_s=(5, 5),
            channels={"wechat": FaultRates(notify_reorder_rate=1.0)},
        )
    )
    await wechat.paid("n_wx_late", notify_url=wechat_receiver.url)
    wechat.env.sandbox.set_faults(FaultSettings())
    await wechat.paid("n_wx_next", notify_url=wechat_receiver.url)
    assert await wechat.env.sandbox.deliver_due() == 1
    wechat.env.clock.advance(timedelta(seconds=64))
    assert await wechat.env.sandbox.deliver_due() == 0
    wechat.env.clock.advance(timedelta(seconds=1))
    assert await wechat.env.sandbox.deliver_due() == 1
    assert len(wechat_receiver.bodies) == 2
    assert [v["resource"]["out_trade_no"] for v in wechat_receiver.verified if v] == [
        "n_wx_next",
        "n_wx_late",
    ]
    [late] = wechat.env.sandbox.deliveries("n_wx_late")
    assert (late.at - START, late.ok) == (timedelta(seconds=65), True)
