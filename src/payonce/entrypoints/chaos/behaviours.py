"""The shoppers' behaviours: what each kind of shopper does on the pay page and in the wallet."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from payonce.entrypoints.chaos.journal import Reply
from payonce.entrypoints.chaos.scenario import Behaviour
from payonce.entrypoints.chaos.shopper_client import Shopper

# How long a shopper stays on the page after paying, waiting to be told (real seconds).
STAY_S = 10.0
CNY_CHANNELS = ("alipay", "wechat", "paypal")
# Closable channels, whose QR a shopper can scan on a second device.
QR_CHANNELS = ("alipay", "wechat")


def _ok(reply: Reply) -> bool:
    return reply.status in (200, 201)


async def _pay_and_stay(shopper: Shopper, reply: Reply) -> None:
    if await shopper.pay(reply):
        await shopper.look()  # back from the wallet
        await shopper.wait_until_paid(STAY_S)


async def pay_once(shopper: Shopper) -> None:
    await shopper.create_order()
    async with shopper.page():
        channel = shopper.dice.choice(CNY_CHANNELS)
        platform = shopper.dice.choice(("pc", "pc", "wap", "app"))
        await _pay_and_stay(shopper, await shopper.apply(channel, platform))


async def double_click(shopper: Shopper) -> None:
    """Two clicks land at once with the page's one key for the intention."""
    await shopper.create_order()
    async with shopper.page():
        channel = shopper.dice.choice(CNY_CHANNELS)
        key = shopper.key()
        first, second = await asyncio.gather(
            shopper.apply(channel, key=key), shopper.apply(channel, key=key)
        )
        await _pay_and_stay(shopper, first if _ok(first) else second)


async def refresh_and_pay_again(shopper: Shopper) -> None:
    """Pays, reloads before the page says paid (a new key), clicks the same channel again and
    pays what that click shows: the same trade, shown again, or a second one to refund."""
    await shopper.create_order()
    async with shopper.page():
        channel = shopper.dice.choice(QR_CHANNELS)
        first = await shopper.apply(channel)
        await shopper.pay(first)
        second = await shopper.apply(channel)
        await _pay_and_stay(shopper, second)


async def switch_channel(shopper: Shopper) -> None:
    """Scans one channel's code, switches to another and pays it; now and then the first
    code is paid too, from the phone that scanned it."""
    await shopper.create_order()
    async with shopper.page():
        first, then = shopper.dice.sample(CNY_CHANNELS, 2)
        old = await shopper.apply(first)
        await shopper.scan(old)
        new = await shopper.apply(then)
        if shopper.dice.random() < 0.3:
            await shopper.pay(old)
        await _pay_and_stay(shopper, new)


async def two_qr_pay_both(shopper: Shopper) -> None:
    """Two QR codes on two screens, both scanned, then both paid at once."""
    await shopper.create_order()
    async with shopper.page():
        one, other = shopper.dice.sample(QR_CHANNELS, 2)
        first = await shopper.apply(one)
        await shopper.scan(first)
        second = await shopper.apply(other)
        await shopper.scan(second)
        await asyncio.gather(shopper.pay(first), shopper.pay(second))
        await shopper.look()
        await shopper.wait_until_paid(STAY_S)


async def boleto_then_other(shopper: Shopper) -> None:
    """A voucher paid at the bank (confirmed days later), and PayPal paid meanwhile."""
    await shopper.create_order(currency="BRL")
    async with shopper.page():
        voucher = await shopper.apply("boleto")
        await shopper.pay(voucher)
        await _pay_and_stay(shopper, await shopper.apply("paypal"))


async def abandon(shopper: Shopper) -> None:
    await shopper.create_order()
    async with shopper.page():
        reply = await shopper.apply(shopper.dice.choice(CNY_CHANNELS))
        if shopper.dice.random() < 0.5:
            await shopper.scan(reply)


async def _until(shopper: Shopper, moment: float) -> None:
    """Wait (real time, as the shared clock runs) until the clock reads ``moment``."""
    while True:
        left = moment - shopper.site.now()
        if left <= 0:
            return
        await asyncio.sleep(min(left / 4, 2.0))


async def _pay_around_expiry(shopper: Shopper, past_s: float) -> None:
    await shopper.create_order()
    async with shopper.page():
        reply = await shopper.apply(shopper.dice.choice(QR_CHANNELS))
        expires_at = datetime.fromisoformat(shopper.order["expires_at"]).timestamp()
        await _until(shopper, expires_at + past_s)
        await _pay_and_stay(shopper, reply)


async def pay_at_expiry(shopper: Shopper) -> None:
    await _pay_around_expiry(shopper, past_s=-0.5)


async def pay_after_expiry(shopper: Shopper) -> None:
    await _pay_around_expiry(shopper, past_s=3.0)


async def cancel_and_retry(shopper: Shopper) -> None:
    await shopper.create_order()
    async with shopper.page():
        first = await shopper.apply(shopper.dice.choice(QR_CHANNELS))
        if _ok(first):
            await shopper.cancel(first.body["id"])
        await _pay_and_stay(shopper, await shopper.apply(shopper.dice.choice(CNY_CHANNELS)))


BEHAVE: dict[Behaviour, Callable[[Shopper], Awaitable[None]]] = {
    "pay_once": pay_once,
    "double_click": double_click,
    "refresh_and_pay_again": refresh_and_pay_again,
    "switch_channel": switch_channel,
    "two_qr_pay_both": two_qr_pay_both,
    "boleto_then_other": boleto_then_other,
    "abandon": abandon,
    "pay_at_expiry": pay_at_expiry,
    "pay_after_expiry": pay_after_expiry,
    "cancel_and_retry": cancel_and_retry,
}
