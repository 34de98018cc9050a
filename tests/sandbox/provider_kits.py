"""One kit per channel for the provider contract suite: how its shopper pays, what it answers.

A kit says what is specific to a channel (its currency, the action each platform gets, what a
query says before the shopper opens the trade, how the shopper pays) so that one suite can hold
every adapter to the same contract against the sandbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from payonce.adapters.clock import AdjustableClock
from payonce.bootstrap import SandboxLink, sandbox_providers
from payonce.domain.channels import Channel, Platform
from payonce.domain.payment import Action, ActionType
from payonce.ports.provider import PaymentProvider, TradeState
from payonce.sandbox import Sandbox, SandboxKeys

# Notifications in these tests go nowhere (nothing listens on the discard port); the suite
# reads what was sent from the sandbox's delivery log.
NOWHERE = "http://127.0.0.1:9"


@dataclass
class KitEnv:
    """What a kit may use: the sandbox under test, its URL, its clock and an HTTP client."""

    sandbox: Sandbox
    url: str  # the sandbox app, mount path included
    clock: AdjustableClock
    keys: SandboxKeys
    http: httpx.AsyncClient
    # The provider's own number of each trade, as payonce records it and passes it back.
    numbers: dict[str, str | None] = field(default_factory=dict)

    def provider(
        self, channel: Channel, *, timeout_s: float = 10.0, base: str | None = None
    ) -> PaymentProvider:
        link = SandboxLink(base or self.url, self.keys)
        providers = sandbox_providers(
            link, public_url=NOWHERE, clock=self.clock, timeout_s=timeout_s
        )
        return providers[channel]

    async def wallet(self, action: str, code: str) -> httpx.Response:
        response = await self.http.post(f"{self.url}/wallet/{action}", json={"code": code})
        assert response.status_code == 200, response.text
        return response


@dataclass(frozen=True)
class Kit:
    channel: Channel
    currency: str
    # The action each platform's create answers, and the field the shopper's wallet reads.
    actions: dict[Platform, tuple[ActionType, str]]
    # What a query answers right after create, before the shopper opens the trade.
    before_scan: TradeState
    # What the shopper's payment leaves before the merchant captures (PAID: nothing to do).
    after_pay: TradeState
    closable: bool
    # The shopper pays for the action, and the provider settles it (business days and all).
    pay: Callable[[KitEnv, Action], Awaitable[None]]
    # How old a trade must be before the provider lets it be closed (WeChat: five minutes).
    close_after: timedelta = timedelta(0)
    # Whether a closed trade refuses the shopper. PayPal's cannot: an order is never cancelled
    # at PayPal, "closed" means the merchant will never capture it, so no money can move.
    close_blocks_the_shopper: bool = True

    def code(self, action: Action) -> str:
        for action_type, name in self.actions.values():
            if action.type is action_type:
                return action.fields[name]
        raise AssertionError(f"{self.channel} answered an unexpected action {action.type}")


async def _alipay_pay(env: KitEnv, action: Action) -> None:
    await env.wallet("pay", ALIPAY.code(action))


ALIPAY = Kit(
    channel=Channel.ALIPAY,
    currency="CNY",
    actions={
        Platform.PC: (ActionType.QR_CODE, "qr_code"),
        Platform.WAP: (ActionType.LAUNCH_URL, "launch_url"),
        Platform.APP: (ActionType.APP_ORDER, "order_string"),
    },
    before_scan=TradeState.NOT_FOUND,
    after_pay=TradeState.PAID,
    closable=True,
    pay=_alipay_pay,
)


async def _wechat_pay(env: KitEnv, action: Action) -> None:
    await env.wallet("pay", WECHAT.code(action))


# WeChat Pay's trade exists from the merchant's create, so a query finds it open at once. It
# refuses to close an order in its first five minutes: the suite waits them out before closing.
WECHAT = Kit(
    channel=Channel.WECHAT,
    currency="CNY",
    actions={
        Platform.PC: (ActionType.QR_CODE, "qr_code"),
        Platform.WAP: (ActionType.LAUNCH_URL, "launch_url"),
        Platform.APP: (ActionType.APP_ORDER, "prepay_id"),
    },
    before_scan=TradeState.OPEN,
    after_pay=TradeState.PAID,
    closable=True,
    close_after=timedelta(minutes=5),
    pay=_wechat_pay,
)


async def _boleto_pay(env: KitEnv, action: Action) -> None:
    """Pay at the bank, then wait out the clearing (1 to 3 business days) a day at a time."""
    paid = await env.wallet("pay", BOLETO.code(action))
    out_trade_no = paid.json()["out_trade_no"]
    for _ in range(10):
        await env.sandbox.advance_clock(86400)
        if [m.kind for m in env.sandbox.ledger(out_trade_no)] == ["capture"]:
            return
    raise AssertionError(f"boleto {out_trade_no} was not confirmed within ten days")


BOLETO = Kit(
    channel=Channel.BOLETO,
    currency="BRL",
    actions={
        Platform.PC: (ActionType.VOUCHER, "digitable_line"),
        Platform.WAP: (ActionType.VOUCHER, "digitable_line"),
        Platform.APP: (ActionType.VOUCHER, "digitable_line"),
    },
    # The charge exists from its creation: a voucher is issued, not opened by the shopper.
    before_scan=TradeState.OPEN,
    after_pay=TradeState.PAID,
    closable=False,
    pay=_boleto_pay,
)


async def _paypal_approve(env: KitEnv, action: Action) -> None:
    """The buyer approves at the approve link; the merchant still has to capture."""
    await env.wallet("pay", PAYPAL.code(action))


# Every platform gets the same redirect to PayPal's approval page.
_PAYPAL_REDIRECT = (ActionType.REDIRECT_URL, "redirect_url")
PAYPAL = Kit(
    channel=Channel.PAYPAL,
    currency="USD",
    actions={platform: _PAYPAL_REDIRECT for platform in Platform},
    # The order exists from create on, waiting for the buyer.
    before_scan=TradeState.OPEN,
    after_pay=TradeState.APPROVED,
    closable=True,
    pay=_paypal_approve,
    close_blocks_the_shopper=False,
)


KITS: dict[str, Kit] = {kit.channel.value: kit for kit in (ALIPAY, WECHAT, PAYPAL, BOLETO)}
