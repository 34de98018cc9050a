"""Production settings refuse what would be unsafe; development needs nothing at all."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from payonce.adapters.clock import AdjustableClock, SystemClock
from payonce.adapters.providers.paypal import PaypalProvider
from payonce.adapters.push.log import LogPush
from payonce.adapters.push.webhook import WebhookPush
from payonce.bootstrap import account_providers, push_of
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.sandbox.paypal_credentials import self_signed_certificate
from tests.conftest import START

PRODUCTION = {"env": "production", "api_key": "k" * 32, "public_url": "https://pay.example"}
WECHAT = {
    "wechat_mchid": "1900000109",
    "wechat_appid": "wxd678efh567hg6787",
    "wechat_private_key": "-----BEGIN PRIVATE KEY-----...",
    "wechat_cert_serial_no": "444F4864EA9B34415",
    "wechat_apiv3_key": "a" * 32,
    "wechat_public_key": "-----BEGIN PUBLIC KEY-----...",
    "wechat_public_key_id": "PUB_KEY_ID_0114232134912410000000000000",
}


def test_development_needs_no_settings() -> None:
    settings = Settings()
    assert settings.embedded
    assert settings.sandbox_mounted


def test_production_with_its_essentials_starts_without_the_sandbox() -> None:
    settings = Settings(**PRODUCTION)  # type: ignore[arg-type]
    assert not settings.sandbox_mounted


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"api_key": None}, "PAYONCE_API_KEY"),
        ({"public_url": None}, "PAYONCE_PUBLIC_URL"),
        ({"clock": "adjustable"}, "adjustable"),
        ({"clock_file": "stack/clock-offset"}, "_CLOCK_FILE"),
        ({"failpoints": {"after_provider_call": 0.01}}, "PAYONCE_FAILPOINTS"),
        ({"defences": "off"}, "PAYONCE_DEFENCES=off"),
        ({"mount_sandbox": True}, "sandbox"),
        ({"sandbox_url": "http://127.0.0.1:8100/sandbox"}, "SANDBOX_URL"),
        ({"alipay_app_id": "2021000000000001"}, "SELLER_ID"),
        ({"wechat_mchid": "1900000109"}, "PAYONCE_WECHAT_MCHID, _APPID"),
        ({k: v for k, v in WECHAT.items() if k != "wechat_public_key_id"}, "_PUBLIC_KEY_ID"),
        ({**WECHAT, "wechat_apiv3_key": "short"}, "PAYONCE_WECHAT_APIV3_KEY must be 32"),
        ({"boleto_api_key": "sk_live_x", "boleto_account_id": "acc_1"}, "_WEBHOOK_SECRET"),
        ({"paypal_client_id": "AbC", "paypal_client_secret": "s"}, "PAYONCE_PAYPAL_CLIENT_ID"),
    ],
)
def test_production_refuses(changes: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Settings(**{**PRODUCTION, **changes})  # type: ignore[arg-type]


def test_production_takes_a_whole_wechat_account() -> None:
    settings = Settings(**{**PRODUCTION, **WECHAT})  # type: ignore[arg-type]
    assert settings.wechat_apiv3_key is not None
    assert "a" * 32 not in repr(settings)  # secrets stay out of logs


def test_a_complete_boleto_account_is_wired_to_its_adapter() -> None:
    boleto = {
        "boleto_api_url": "https://psp.example/v1",
        "boleto_api_key": "sk_live_x",
        "boleto_account_id": "acc_live",
        "boleto_webhook_secret": "whsec_x",
    }
    settings = Settings(**{**PRODUCTION, **boleto})  # type: ignore[arg-type]
    providers = account_providers(settings, public_url="https://pay.example", clock=SystemClock())
    assert list(providers) == [Channel.BOLETO]
    assert providers[Channel.BOLETO].merchant_id == "acc_live"


def test_a_whole_paypal_account_is_wired_without_touching_its_webhook() -> None:
    _, cert_pem = self_signed_certificate("paypal.example")
    paypal = {
        "paypal_client_id": "AbC",
        "paypal_client_secret": "top-secret-value",
        "paypal_merchant_id": "WDK2FAIBPAUCL",
        "paypal_webhook_id": "8PT597110X687430L",
        "paypal_webhook_cert": cert_pem,
    }
    settings = Settings(**{**PRODUCTION, **paypal})  # type: ignore[arg-type]
    providers = account_providers(
        settings, public_url="https://pay.example", clock=AdjustableClock(START)
    )
    provider = providers[Channel.PAYPAL]
    assert isinstance(provider, PaypalProvider)
    assert provider.merchant_id == "WDK2FAIBPAUCL"
    assert provider.settings.api_base == "https://api-m.paypal.com"
    assert provider.settings.webhook_url is None  # configured in PayPal's dashboard
    assert "top-secret-value" not in repr(provider.settings)


# The shoppers' push gateway ----------------------------------------------------------------

PUSH_URL = "https://push.example/v1/messages"
PUSH_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_without_a_push_gateway_each_message_is_logged() -> None:
    settings = Settings()
    assert (settings.push_gateway_url, settings.push_gateway_secret) == (None, None)
    assert settings.push_timeout_s == 5.0
    assert isinstance(push_of(settings, SystemClock()), LogPush)


def test_the_push_gateway_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYONCE_PUSH_GATEWAY_URL", PUSH_URL)
    monkeypatch.setenv("PAYONCE_PUSH_GATEWAY_SECRET", PUSH_SECRET)
    monkeypatch.setenv("PAYONCE_PUSH_TIMEOUT_S", "2.5")
    settings = Settings(**PRODUCTION)  # type: ignore[arg-type]
    assert settings.push_gateway_url == PUSH_URL
    assert settings.push_gateway_secret is not None
    assert settings.push_gateway_secret.get_secret_value() == PUSH_SECRET
    assert PUSH_SECRET not in repr(settings)
    assert settings.push_timeout_s == 2.5
    assert isinstance(push_of(settings, SystemClock()), WebhookPush)


def test_development_may_push_unsigned() -> None:
    settings = Settings(push_gateway_url="http://127.0.0.1:9000/push")
    assert isinstance(push_of(settings, SystemClock()), WebhookPush)


def test_production_refuses_an_unsigned_push_gateway() -> None:
    with pytest.raises(ValidationError, match="PAYONCE_PUSH_GATEWAY_URL needs PAYONCE_PUSH_GATE"):
        Settings(**PRODUCTION, push_gateway_url=PUSH_URL)  # type: ignore[arg-type]


@pytest.mark.parametrize("env", ["production", "development"])
@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"push_gateway_secret": PUSH_SECRET}, "PUSH_GATEWAY_SECRET is set but not _URL"),
        ({"push_gateway_url": "push.example/v1", "push_gateway_secret": PUSH_SECRET}, "http"),
        ({"push_gateway_url": PUSH_URL, "push_gateway_secret": "hunter2"}, "whsec_"),
        ({"push_timeout_s": 0}, "greater than 0"),
        # The first attempt runs in the notification's request, under the order's lock.
        ({"push_timeout_s": 10.5}, "less than or equal to 10"),
    ],
)
def test_push_settings_are_refused(changes: dict[str, object], complaint: str, env: str) -> None:
    base = PRODUCTION if env == "production" else {}
    with pytest.raises(ValidationError, match=complaint):
        Settings(**{**base, **changes})  # type: ignore[arg-type]
