"""Which provider adapters a process runs: the sandbox's accounts in development, real ones else.

Alipay and WeChat Pay adapters stand on their SDKs, which are optional extras
(``payonce[alipay]``, ``payonce[wechat]``): each is imported only when its channel is wired. In
development a missing extra leaves its channel out (with a warning); a real account configured
without its extra stops the process with a clear message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from payonce.adapters.providers.boleto import BoletoProvider, BoletoSettings
from payonce.adapters.providers.paypal import PaypalProvider, PaypalSettings
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.errors import PayonceError
from payonce.ports.clock import Clock
from payonce.ports.provider import PaymentProvider
from payonce.sandbox.keys import SandboxKeys

log = logging.getLogger(__name__)


class MissingExtra(PayonceError):
    """A channel's SDK is not installed."""

    code = "channel_sdk_missing"
    title = "A payment channel's SDK is not installed"
    http_status = 500


@dataclass(frozen=True)
class SandboxLink:
    """Where payonce reaches its development sandbox, and the keys they share."""

    base: str
    keys: SandboxKeys


@contextmanager
def _extra(name: str) -> Iterator[None]:
    """Turn a missing SDK into a message that says which extra installs it."""
    try:
        yield
    except ModuleNotFoundError as error:
        raise MissingExtra(
            f"the {name} channel needs `pip install 'payonce[{name}]'` ({error.name} is missing)"
        ) from error


def _notify_url(public_url: str, channel: Channel) -> str:
    return f"{public_url}/api/notify/{channel.value}"


def sandbox_providers(
    link: SandboxLink, *, public_url: str, clock: Clock, timeout_s: float
) -> dict[Channel, PaymentProvider]:
    """Every channel's adapter, as a merchant configures it, pointed at the sandbox."""
    keys = link.keys

    def alipay() -> PaymentProvider:
        with _extra("alipay"):
            from payonce.adapters.providers.alipay import AlipayProvider, AlipaySettings
        settings = AlipaySettings(
            app_id=keys.alipay.app_id,
            seller_id=keys.alipay.seller_id,
            app_private_key_pem=keys.alipay.app_private_key_pem,
            alipay_public_key_pem=keys.alipay.alipay_public_key_pem,
            gateway_url=f"{link.base}/alipay/gateway.do",
            notify_url=_notify_url(public_url, Channel.ALIPAY),
            timeout_s=timeout_s,
        )
        return AlipayProvider(settings, clock)

    def wechat() -> PaymentProvider:
        with _extra("wechat"):
            from payonce.adapters.providers.wechat import WechatProvider, WechatSettings
        settings = WechatSettings(
            mchid=keys.wechat.mchid,
            appid=keys.wechat.appid,
            merchant_private_key_pem=keys.wechat.merchant_private_key_pem,
            merchant_serial_no=keys.wechat.merchant_serial_no,
            apiv3_key=keys.wechat.apiv3_key,
            platform_public_key_pem=keys.wechat.platform_public_key_pem,
            platform_public_key_id=keys.wechat.platform_public_key_id,
            gateway_url=f"{link.base}/wechat",
            notify_url=_notify_url(public_url, Channel.WECHAT),
            timeout_s=timeout_s,
        )
        return WechatProvider(settings, clock)

    def paypal() -> PaymentProvider:
        settings = PaypalSettings(
            client_id=keys.paypal.client_id,
            client_secret=keys.paypal.client_secret,
            merchant_id=keys.paypal.merchant_id,
            webhook_id=keys.paypal.webhook_id,
            webhook_cert_pem=keys.paypal.webhook_cert_pem,
            api_base=f"{link.base}/paypal",
            # The sandbox learns where payonce listens from the adapter's webhook update.
            webhook_url=_notify_url(public_url, Channel.PAYPAL),
            timeout_s=timeout_s,
        )
        return PaypalProvider(settings, clock)

    def boleto() -> PaymentProvider:
        settings = BoletoSettings(
            api_url=f"{link.base}/boleto/v1",
            api_key=keys.boleto.api_key,
            account_id=keys.boleto.account_id,
            webhook_secret=keys.boleto.webhook_secret,
            notify_url=_notify_url(public_url, Channel.BOLETO),
            timeout_s=timeout_s,
        )
        return BoletoProvider(settings, clock)

    builders: dict[Channel, Callable[[], PaymentProvider]] = {
        Channel.ALIPAY: alipay,
        Channel.WECHAT: wechat,
        Channel.PAYPAL: paypal,
        Channel.BOLETO: boleto,
    }
    providers: dict[Channel, PaymentProvider] = {}
    for channel, build in builders.items():
        try:
            providers[channel] = build()
        except MissingExtra as missing:
            log.warning("%s: left out", missing.detail)
    return providers


def account_providers(
    settings: Settings, *, public_url: str, clock: Clock
) -> dict[Channel, PaymentProvider]:
    """The adapters of the real merchant accounts configured in ``settings`` (all or none of
    each account's settings; ``Settings`` refuses a partial one in production)."""
    s = settings
    timeout_s = s.provider_timeout_s
    providers: dict[Channel, PaymentProvider] = {}
    if s.alipay_app_id and s.alipay_seller_id and s.alipay_private_key and s.alipay_public_key:
        with _extra("alipay"):
            from payonce.adapters.providers.alipay import AlipayProvider, AlipaySettings
        providers[Channel.ALIPAY] = AlipayProvider(
            AlipaySettings(
                app_id=s.alipay_app_id,
                seller_id=s.alipay_seller_id,
                app_private_key_pem=s.alipay_private_key.get_secret_value(),
                alipay_public_key_pem=s.alipay_public_key,
                gateway_url=s.alipay_gateway,
                notify_url=_notify_url(public_url, Channel.ALIPAY),
                timeout_s=timeout_s,
            ),
            clock,
        )
    if (
        s.wechat_mchid
        and s.wechat_appid
        and s.wechat_private_key
        and s.wechat_cert_serial_no
        and s.wechat_apiv3_key
        and s.wechat_public_key
        and s.wechat_public_key_id
    ):
        with _extra("wechat"):
            from payonce.adapters.providers.wechat import WechatProvider, WechatSettings
        providers[Channel.WECHAT] = WechatProvider(
            WechatSettings(
                mchid=s.wechat_mchid,
                appid=s.wechat_appid,
                merchant_private_key_pem=s.wechat_private_key.get_secret_value(),
                merchant_serial_no=s.wechat_cert_serial_no,
                apiv3_key=s.wechat_apiv3_key.get_secret_value(),
                platform_public_key_pem=s.wechat_public_key,
                platform_public_key_id=s.wechat_public_key_id,
                gateway_url=s.wechat_gateway,
                notify_url=_notify_url(public_url, Channel.WECHAT),
                timeout_s=timeout_s,
            ),
            clock,
        )
    if (
        s.paypal_client_id
        and s.paypal_client_secret
        and s.paypal_merchant_id
        and s.paypal_webhook_id
        and s.paypal_webhook_cert
    ):
        providers[Channel.PAYPAL] = PaypalProvider(
            PaypalSettings(
                client_id=s.paypal_client_id,
                client_secret=s.paypal_client_secret.get_secret_value(),
                merchant_id=s.paypal_merchant_id,
                webhook_id=s.paypal_webhook_id,
                webhook_cert_pem=s.paypal_webhook_cert,
                api_base=s.paypal_api_base,
                timeout_s=timeout_s,
            ),
            clock,
        )
    if s.boleto_api_url and s.boleto_api_key and s.boleto_account_id and s.boleto_webhook_secret:
        providers[Channel.BOLETO] = BoletoProvider(
            BoletoSettings(
                api_url=s.boleto_api_url,
                api_key=s.boleto_api_key.get_secret_value(),
                account_id=s.boleto_account_id,
                webhook_secret=s.boleto_webhook_secret.get_secret_value(),
                notify_url=_notify_url(public_url, Channel.BOLETO),
                timeout_s=timeout_s,
            ),
            clock,
        )
    return providers
