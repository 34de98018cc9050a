"""Which adapters a process runs, and what a missing SDK extra does to it."""

from __future__ import annotations

import sys

import pytest

from payonce.adapters.clock import AdjustableClock
from payonce.bootstrap import SandboxLink, account_providers, sandbox_providers
from payonce.bootstrap.providers import MissingExtra
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.sandbox import SandboxKeys
from tests.conftest import START

PRODUCTION = {"env": "production", "api_key": "k" * 32, "public_url": "https://pay.example"}


@pytest.fixture(scope="module")
def link() -> SandboxLink:
    return SandboxLink("http://127.0.0.1:9/sandbox", SandboxKeys.generate())


def _without(monkeypatch: pytest.MonkeyPatch, sdk: str, adapter: str) -> None:
    """Import as if the SDK were not installed (and its adapter never imported)."""
    monkeypatch.setitem(sys.modules, sdk, None)  # `import sdk` now fails
    monkeypatch.delitem(sys.modules, f"payonce.adapters.providers.{adapter}", raising=False)


def test_development_wires_every_channel_to_the_sandbox(link: SandboxLink) -> None:
    providers = sandbox_providers(
        link, public_url="http://pay.test", clock=AdjustableClock(START), timeout_s=5
    )
    assert set(providers) == set(Channel)
    assert all(provider.channel is channel for channel, provider in providers.items())


def test_a_missing_sdk_leaves_its_channel_out_of_development(
    link: SandboxLink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _without(monkeypatch, "wechatpayv3", "wechat")
    providers = sandbox_providers(
        link, public_url="http://pay.test", clock=AdjustableClock(START), timeout_s=5
    )
    assert set(providers) == {Channel.ALIPAY, Channel.PAYPAL, Channel.BOLETO}
    assert "pip install 'payonce[wechat]'" in caplog.text


def test_a_real_account_without_its_sdk_stops_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        **{  # type: ignore[arg-type]
            **PRODUCTION,
            "alipay_app_id": "2021000000000001",
            "alipay_seller_id": "2088000000000001",
            "alipay_private_key": "-----BEGIN PRIVATE KEY-----...",
            "alipay_public_key": "-----BEGIN PUBLIC KEY-----...",
        }
    )
    _without(monkeypatch, "alipay", "alipay")
    with pytest.raises(MissingExtra, match=r"payonce\[alipay\]"):
        account_providers(settings, public_url="https://pay.example", clock=AdjustableClock(START))
