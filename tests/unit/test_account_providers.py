"""A real merchant account in the settings becomes its channel's adapter, aimed at the provider."""

from __future__ import annotations

from payonce.adapters.clock import SystemClock
from payonce.adapters.providers.wechat import WechatProvider
from payonce.bootstrap import account_providers
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.sandbox import WechatCredentials


def test_a_whole_wechat_account_becomes_the_wechat_adapter() -> None:
    account = WechatCredentials.generate()
    settings = Settings(
        wechat_mchid=account.mchid,
        wechat_appid=account.appid,
        wechat_private_key=account.merchant_private_key_pem,  # type: ignore[arg-type]
        wechat_cert_serial_no=account.merchant_serial_no,
        wechat_apiv3_key=account.apiv3_key,  # type: ignore[arg-type]
        wechat_public_key=account.platform_public_key_pem,
        wechat_public_key_id=account.platform_public_key_id,
    )
    providers = account_providers(settings, public_url="https://pay.example", clock=SystemClock())
    assert set(providers) == {Channel.WECHAT}
    wechat = providers[Channel.WECHAT]
    assert isinstance(wechat, WechatProvider)
    assert wechat.merchant_id == account.mchid
    assert wechat.settings.gateway_url == "https://api.mch.weixin.qq.com"
    assert wechat.settings.notify_url == "https://pay.example/api/notify/wechat"
    assert account.apiv3_key not in repr(wechat.settings)


def test_a_partial_wechat_account_is_no_adapter() -> None:
    settings = Settings(wechat_mchid="1900000109", wechat_appid="wxd678efh567hg6787")
    assert account_providers(settings, public_url="https://pay.example", clock=SystemClock()) == {}
