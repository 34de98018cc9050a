"""The one place that turns Settings into running adapters and wires them to the service's ports."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from payonce.adapters.clock import AdjustableClock, SharedClock, SystemClock
from payonce.adapters.failpoints import CrashingFailpoints
from payonce.adapters.locks.metered import MeteredLocks
from payonce.adapters.locks.unlocked import NoLocks
from payonce.adapters.metrics.prometheus import PrometheusMetrics
from payonce.adapters.order_service.signing import WebhookSigner
from payonce.adapters.order_service.webhook import OrderWebhook
from payonce.adapters.providers.metered import MeteredProvider
from payonce.adapters.push.log import LogPush
from payonce.adapters.push.webhook import WebhookPush
from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.sql import SqlStorage
from payonce.bootstrap.coordination import Coordination, coordination
from payonce.bootstrap.providers import (
    SandboxLink,
    account_providers,
    sandbox_providers,
)
from payonce.config import Settings
from payonce.domain.outcomes import LateCaptures
from payonce.ports.clock import Clock
from payonce.ports.failpoints import Failpoints, NoFailpoints
from payonce.ports.locks import Locks
from payonce.ports.push import ShopperPush
from payonce.ports.rate_limits import RateLimits
from payonce.sandbox.app import Sandbox
from payonce.sandbox.keys import SandboxKeys
from payonce.service.access import AccessKeys
from payonce.service.context import DEFAULT_POLL_SCHEDULES, Deps, Policy
from payonce.service.order_inbox import OrderInbox
from payonce.service.refunds import Refunder
from payonce.service.shopper_news import ShopperNews

__all__ = [
    "Container",
    "SandboxLink",
    "account_providers",
    "bootstrap",
    "clock_of",
    "sandbox_providers",
]


@dataclass
class Container:
    """Everything a running payonce process holds."""

    settings: Settings
    deps: Deps
    access: AccessKeys
    public_url: str
    adjustable_clock: AdjustableClock | SharedClock | None
    sandbox: Sandbox | None
    storage: SqlStorage
    coordination: Coordination
    metrics: PrometheusMetrics
    rate_limits: RateLimits | None
    order_webhook: OrderWebhook | None = None
    push: ShopperPush | None = None

    @property
    def api_keys(self) -> tuple[str, ...]:
        return self.access.api

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The sites whose pages may open an order's WebSocket: this server's, and the shop's."""
        own = urlsplit(self.public_url)
        return frozenset({f"{own.scheme}://{own.netloc}", *self.settings.allowed_origins})

    async def aclose(self) -> None:
        if self.order_webhook is not None:
            await self.order_webhook.aclose()
        if isinstance(self.push, WebhookPush):
            await self.push.aclose()
        for provider in self.deps.providers.values():
            await provider.aclose()
        if self.sandbox is not None:
            await self.sandbox.aclose()
        await self.coordination.aclose()
        await self.storage.close()


def _private_file(path: Path, make: str) -> str:
    """Read a generated secret, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def access_of(settings: Settings) -> AccessKeys:
    """The keys set (several during a rotation), else ones generated once in the data
    directory (development only: production settings require them set)."""
    api = settings.api_keys or (
        _private_file(settings.data_dir / "api_key", f"sk_{secrets.token_urlsafe(32)}"),
    )
    admin = settings.admin_keys
    if not admin and settings.env == "development":
        admin = (_private_file(settings.data_dir / "admin_key", f"ak_{secrets.token_urlsafe(32)}"),)
    return AccessKeys(api=api, admin=admin)


def order_webhook(settings: Settings, clock: Clock) -> OrderWebhook | None:
    """The external order service's webhook, when its URL (and so its secret) is set."""
    if settings.order_webhook_url is None or settings.order_webhook_secret is None:
        return None
    return OrderWebhook(
        settings.order_webhook_url,
        WebhookSigner(settings.order_webhook_secret.get_secret_value()),
        clock=clock,
        timeout_s=settings.order_webhook_timeout_s,
        topics=settings.order_webhook_topics,
    )


def push_of(settings: Settings, clock: Clock) -> ShopperPush:
    """The shoppers' push: the configured gateway's webhook, else a log line per message."""
    if settings.push_gateway_url is None:
        return LogPush()
    secret = settings.push_gateway_secret
    return WebhookPush(
        settings.push_gateway_url,
        secret=secret.get_secret_value() if secret is not None else None,
        clock=clock,
        timeout_s=settings.push_timeout_s,
    )


def clock_of(settings: Settings) -> tuple[Clock, AdjustableClock | SharedClock | None]:
    """The process's clock, and the same clock when it may be moved forward (else None)."""
    if settings.clock == "system":
        return SystemClock(), None
    if settings.clock_file is not None:
        shared = SharedClock(settings.clock_file)
        return shared, shared
    own = AdjustableClock()
    return own, own


def failpoints_of(settings: Settings) -> Failpoints:
    if not settings.failpoints:
        return NoFailpoints()
    return CrashingFailpoints(settings.failpoints, seed=settings.failpoint_seed)


def policy_of(settings: Settings) -> Policy:
    """The timings and choices of the defences that settings may change; the rest default."""
    defended = settings.defences == "on"
    return Policy(
        reuse_open_trades=defended,
        close_before_new=defended,
        poll_trades=defended,
        reconcile_daily=defended,
        order_ttl=timedelta(seconds=settings.order_ttl_s),
        lock_ttl_s=settings.lock_ttl_s,
        lock_wait_s=settings.lock_wait_s,
        intent_grace=timedelta(seconds=settings.intent_grace_s),
        reuse_margin=timedelta(seconds=settings.reuse_margin_s),
        late_captures=LateCaptures(settings.late_captures),
        poll_schedules={
            **DEFAULT_POLL_SCHEDULES,
            **{
                channel: tuple(timedelta(seconds=wait) for wait in waits)
                for channel, waits in settings.poll_schedules.items()
                if waits
            },
        },
        sweep_after=timedelta(seconds=settings.sweep_after_s),
    )


def _sandbox_keys(settings: Settings) -> SandboxKeys:
    """The keys payonce and its sandbox share in development (made on first start)."""
    return SandboxKeys.load_or_create(settings.data_dir / "sandbox")


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
    adjustable: AdjustableClock | SharedClock | None = None
    if clock is None:
        clock, adjustable = clock_of(settings)
    elif isinstance(clock, AdjustableClock | SharedClock):
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

    if locks is None and settings.defences == "off":
        locks = NoLocks()
    shared = coordination(settings, clock, locks=locks)
    metrics = PrometheusMetrics()
    deps = Deps(
        storage=storage,
        clock=clock,
        locks=MeteredLocks(shared.locks, metrics),
        cache=shared.cache,
        feed=shared.feed,
        providers={
            channel: MeteredProvider(provider, metrics) for channel, provider in providers.items()
        },
        policy=policy or policy_of(settings),
        return_url_template=f"{public_url}/pay/{{order_id}}",
        failpoints=failpoints_of(settings),
        metrics=metrics,
    )
    webhook = order_webhook(settings, clock)
    push = push_of(settings, clock)
    deps.consumers = (
        OrderInbox(deps),
        *((Refunder(deps),) if settings.defences == "on" else ()),
        *shared.streams,
        *((webhook,) if webhook is not None else ()),
        # Last: it reads the order after the inbox applied the event in the same pass, and a
        # slow gateway must not hold up the order service's own notification.
        ShopperNews(deps, push),
    )
    return Container(
        settings=settings,
        deps=deps,
        access=access_of(settings),
        public_url=public_url,
        adjustable_clock=adjustable,
        sandbox=sandbox,
        storage=storage,
        coordination=shared,
        metrics=metrics,
        rate_limits=shared.rate_limits,
        order_webhook=webhook,
        push=push,
    )
