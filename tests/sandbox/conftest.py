"""Fixtures for the sandbox tests: RSA keys once, one server per session, a fresh sandbox each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from paypal_merchant import Hook, Merchant, hook_app
from sandbox_harness import (
    START,
    Env,
    Receiver,
    Stage,
    bound_socket,
    receiver_app,
    sandbox_on_stage,
    serve,
    staged,
)
from wechat_harness import WechatEnv, WechatReceiver, wechat_receiver_app

from payonce.adapters.clock import AdjustableClock
from payonce.sandbox import AlipayCredentials, SandboxKeys


@pytest.fixture(scope="session")
def keys() -> SandboxKeys:
    """Every channel's keys, made once: RSA key generation is slow."""
    return SandboxKeys.generate()


@pytest.fixture(scope="session")
def credentials(keys: SandboxKeys) -> AlipayCredentials:
    return keys.alipay


@pytest.fixture
def clock() -> AdjustableClock:
    return AdjustableClock(start=START)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stage() -> AsyncIterator[Stage]:
    async with staged() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def env(stage: Stage, keys: SandboxKeys, clock: AdjustableClock) -> AsyncIterator[Env]:
    async with sandbox_on_stage(stage, keys, clock) as running:
        yield running


class _ReceiverSlot:
    def __init__(self) -> None:
        self.current: Receiver | None = None

    def get(self) -> Receiver:
        assert self.current is not None, "no receiver in this test"
        return self.current


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def receiver_server(
    credentials: AlipayCredentials,
) -> AsyncIterator[tuple[str, _ReceiverSlot]]:
    sock, base = bound_socket()
    slot = _ReceiverSlot()
    async with serve(receiver_app(credentials, slot.get), sock):
        yield f"{base}/notify", slot


@pytest.fixture
def receiver(receiver_server: tuple[str, _ReceiverSlot]) -> Receiver:
    url, slot = receiver_server
    slot.current = Receiver(url=url)
    return slot.current


# WeChat Pay: the merchant's view of the sandbox, and a notify endpoint speaking its format.


@pytest.fixture
def wechat(env: Env, keys: SandboxKeys) -> WechatEnv:
    return WechatEnv(env=env, credentials=keys.wechat)


class _WechatReceiverSlot:
    def __init__(self) -> None:
        self.current: WechatReceiver | None = None

    def get(self) -> WechatReceiver:
        assert self.current is not None, "no WeChat receiver in this test"
        return self.current


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def wechat_receiver_server(
    keys: SandboxKeys,
) -> AsyncIterator[tuple[str, _WechatReceiverSlot]]:
    sock, base = bound_socket()
    slot = _WechatReceiverSlot()
    async with serve(wechat_receiver_app(keys.wechat, slot.get), sock):
        yield f"{base}/wechat/notify", slot


@pytest.fixture
def wechat_receiver(wechat_receiver_server: tuple[str, _WechatReceiverSlot]) -> WechatReceiver:
    url, slot = wechat_receiver_server
    slot.current = WechatReceiver(url=url)
    return slot.current


class _HookSlot:
    def __init__(self) -> None:
        self.current: Hook | None = None

    def get(self) -> Hook:
        assert self.current is not None, "no PayPal webhook endpoint in this test"
        return self.current


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hook_server() -> AsyncIterator[tuple[str, _HookSlot]]:
    sock, base = bound_socket()
    slot = _HookSlot()
    async with serve(hook_app(slot.get), sock):
        yield f"{base}/webhooks/paypal", slot


@pytest.fixture
def hook(hook_server: tuple[str, _HookSlot]) -> Hook:
    """A PayPal merchant's webhook endpoint (JSON bodies, answers 200 unless told otherwise)."""
    url, slot = hook_server
    slot.current = Hook(url=url)
    return slot.current


@pytest.fixture
def merchant(env: Env) -> Merchant:
    """The sandbox's PayPal merchant, calling its REST API by hand."""
    return Merchant(http=env.http, base=f"{env.url}/paypal", credentials=env.keys.paypal)
