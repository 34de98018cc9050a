"""The one place that turns Settings into running adapters and wires them to the service's ports."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.clock import AdjustableClock, SystemClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.providers.alipay import AlipayProvider, AlipaySettings
from payonce.adapters.providers.boleto import BoletoProvider, BoletoSettings
from payonce.adapters.providers.paypal import PaypalProvider, PaypalSettings
from payonce.adapters.providers.wechat import WechatProvider, WechatSettings
from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.sql import SqlStorage
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.ports.clock import Clock
from payonce.ports.locks import Locks
from payonce.ports.provider import PaymentProvider
from payonce.sandbox.app import Sandbox
from payonce.sandbox.keys import SandboxKeys
from payonce.service.context import Deps, Policy
from payonce.service.order_inbox import OrderInbox


@dataclass
class Container:
    """Everything a running payonce process holds."""

    settings: Settings
    deps: Deps
    api_keys: tuple[str, ...]
    public_url: str
    adjustable_clock: AdjustableClock | None
    sandbox: Sandbox | None
    storage: SqlStorage

    async def aclose(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.aclose()
        await self.storage.close()


@dataclass(frozen=True)
class SandboxLink:
    """Where payonce reaches its development sandbox, and the keys they share."""

    base: str
    keys: SandboxKeys


def _private_file(path: Path, make: str) -> str:
    """Read a generated secret, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def api_keys_of(settings: Settings) -> tuple[str, ...]:
    if settings.api_key is not None:
        return (settings.api_key.get_secret_value(),)
    return (_private_file(settings.data_dir / "api_key", f"sk_{secrets.token_urlsafe(32)}"),)


def _sandbox_keys(settings: Settings) -> SandboxKeys:
    """The keys payonce and its sandbox share in development (made on first start)."""
    return SandboxKeys.load_or_create(settings.data_dir / "sandbox")


def sandbox_providers(
    link: SandboxLink, *, public_url: str, clock: Clock, timeout_s: float
) -> dict[Channel, PaymentProvider]:
    """Every channel's adapter, as a merchant configures it, pointed at the sandbox."""
    keys = link.keys
    return {
        Channel.ALIPAY: AlipayProvider(
            AlipaySettings(
                app_id=keys.alipay.app_id,
                seller_id=keys.alipay.seller_id,
                app_private_key_pem=keys.alipay.app_private_key_pem,
                alipay_public_key_pem=keys.alipay.alipay_public_key_pem,
                gateway_url=f"{link.base}/alipay/gateway.do",
                notify_url=f"{public_url}/api/notify/alipay",
                timeout_s=timeout_s,
            ),
            clock,
        ),
        Channel.WECHAT: WechatProvider(
            WechatSettings(
                mchid=keys.wechat.mchid,
                appid=keys.wechat.appid,
                merchant_private_key_pem=keys.wechat.merchant_private_key_pem,
                merchant_serial_no=keys.wechat.merchant_serial_no,
                apiv3_key=keys.wechat.apiv3_key,
                platform_public_key_pem=keys.wechat.platform_public_key_pem,
                platform_public_key_id=keys.wechat.platform_public_key_id,
                gateway_url=f"{link.base}/wechat",
                notify_url=f"{public_url}/api/notify/wechat",
                timeout_s=timeout_s,
            ),
            clock,
        ),
        Channel.BOLETO: BoletoProvider(
            BoletoSettings(
                api_url=f"{link.base}/boleto/v1",
                api_key=keys.boleto.api_key,
                account_id=keys.boleto.account_id,
                webhook_secret=keys.boleto.webhook_secret,
                notify_url=f"{public_url}/api/notify/boleto",
                timeout_s=timeout_s,
            ),
            clock,
        ),
        Channel.PAYPAL: PaypalProvider(
            PaypalSettings(
                client_id=keys.paypal.client_id,
                client_secret=keys.paypal.client_secret,
                merchant_id=keys.paypal.merchant_id,
                webhook_id=keys.paypal.webhook_id,
                webhook_cert_pem=keys.paypal.webhook_cert_pem,
                api_base=f"{link.base}/paypal",
                # The sandbox learns where payonce listens from the adapter's webhook update.
                webhook_url=f"{public_url}/api/notify/paypal",
                timeout_s=timeout_s,
            ),
            clock,
        ),
    }


def _wechat_account(settings: Settings, *, public_url: str) -> WechatSettings | None:
    """The real WeChat Pay account in ``settings``, when all of it is there."""
    s = settings
    if not (
        s.wechat_mchid
        and s.wechat_appid
        and s.wechat_private_key
        and s.wechat_cert_serial_no
        and s.wechat_apiv3_key
        and s.wechat_public_key
        and s.wechat_public_key_id
    ):
        return None
    return WechatSettings(
        mchid=s.wechat_mchid,
        appid=s.wechat_appid,
        merchant_private_key_pem=s.wechat_private_key.get_secret_value(),
        merchant_serial_no=s.wechat_cert_serial_no,
        apiv3_key=s.wechat_apiv3_key.get_secret_value(),
        platform_public_key_pem=s.wechat_public_key,
        platform_public_key_id=s.wechat_public_key_id,
        gateway_url=s.wechat_gateway,
        notify_url=f"{public_url}/api/notify/wechat",
        timeout_s=s.provider_timeout_s,
    )


def account_providers(
    settings: Settings, *, public_url: str, clock: Clock
) -> dict[Channel, PaymentProvider]:
    """The adapters of the real merchant accounts configured in ``settings``."""
    providers: dict[Channel, PaymentProvider] = {}
    if (
        settings.alipay_app_id
        and settings.alipay_seller_id
        and settings.alipay_private_key
        and settings.alipay_public_key
    ):
        providers[Channel.ALIPAY] = AlipayProvider(
            AlipaySettings(
                app_id=settings.alipay_app_id,
                seller_id=settings.alipay_seller_id,
                app_private_key_pem=settings.alipay_private_key.get_secret_value(),
                alipay_public_key_pem=settings.alipay_public_key,
                gateway_url=settings.alipay_gateway,
                notify_url=f"{public_url}/api/notify/alipay",
                timeout_s=settings.provider_timeout_s,
            ),
            clock,
        )
    wechat = _wechat_account(settings, public_url=public_url)
    if wechat is not None:
        providers[Channel.WECHAT] = WechatProvider(wechat, clock)
    if (
        settings.boleto_api_url
        and settings.boleto_api_key
        and settings.boleto_account_id
        and settings.boleto_webhook_secret
    ):
        providers[Channel.BOLETO] = BoletoProvider(
            BoletoSettings(
                api_url=settings.boleto_api_url,
                api_key=settings.boleto_api_key.get_secret_value(),
                account_id=settings.boleto_account_id,
                webhook_secret=settings.boleto_webhook_secret.get_secret_value(),
                notify_url=f"{public_url}/api/notify/boleto",
                timeout_s=settings.provider_timeout_s,
            ),
            clock,
        )
    if (
        settings.paypal_client_id
        and settings.paypal_client_secret
        and settings.paypal_merchant_id
        and settings.paypal_webhook_id
        and settings.paypal_webhook_cert
    ):
        providers[Channel.PAYPAL] = PaypalProvider(
            PaypalSettings(
                client_id=settings.paypal_client_id,
                client_secret=settings.paypal_client_secret.get_secret_value(),
                merchant_id=settings.paypal_merchant_id,
                webhook_id=settings.paypal_webhook_id,
                webhook_cert_pem=settings.paypal_webhook_cert,
                api_base=settings.paypal_api_base,
                timeout_s=settings.provider_timeout_s,
            ),
            clock,
        )
    return providers


async def bootstrap(
    settings: Settings,
    *,
    public_url: str,
    clock: Clock | None = None,
    locks: Locks | None = None,
    policy: Policy | None = None,
) -> Container:
    """Build a process's container; ``clock``, ``locks`` and ``policy`` let tests pick adapters."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    public_url = (settings.public_url or public_url).rstrip("/")
    adjustable: AdjustableClock | None = None
    if clock is None:
        if settings.clock == "adjustable":
            clock = adjustable = AdjustableClock()
        else:
            clock = SystemClock()
    elif isinstance(clock, AdjustableClock):
        adjustable = clock

    engine = open_engine(settings.database_url or sqlite_url(settings.data_dir / "payonce.db"))
    if settings.embedded:
        await upgrade(engine)
    storage = SqlStorage(engine)

    # Where the (development) sandbox is, and the keys payonce shares with it.
    sandbox_base = f"{public_url}/sandbox" if settings.sandbox_mounted else settings.sandbox_url
    link = SandboxLink(sandbox_base.rstrip("/"), _sandbox_keys(settings)) if sandbox_base else None
    sandbox: Sandbox | None = None
    if settings.sandbox_mounted and link is not None:
        sandbox = Sandbox(
            clock=clock, keys=link.keys, public_url=link.base, adjustable_clock=adjustable
        )

    if link is not None:
        providers = sandbox_providers(
            link, public_url=public_url, clock=clock, timeout_s=settings.provider_timeout_s
        )
    else:
        providers = account_providers(settings, public_url=public_url, clock=clock)

    deps = Deps(
        storage=storage,
        clock=clock,
        locks=locks or InProcessLocks(clock),
        cache=InProcessCache(clock),
        feed=InProcessFeed(),
        providers=providers,
        policy=policy or Policy(order_ttl=timedelta(seconds=settings.order_ttl_s)),
        return_url_template=f"{public_url}/pay/{{order_id}}",
    )
    deps.consumers = (OrderInbox(deps),)
    return Container(
        settings=settings,
        deps=deps,
        api_keys=api_keys_of(settings),
        public_url=public_url,
        adjustable_clock=adjustable,
        sandbox=sandbox,
        storage=storage,
    )
