"""Settings, read once from PAYONCE_* environment variables at the entrypoint and passed down."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payonce.domain.channels import Channel
from payonce.domain.events import Topic
from payonce.ports.failpoints import Failpoint


def _is_webhook_secret(value: str) -> bool:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 random bytes."""
    if not value.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return False
    return 24 <= len(key) <= 64


def _keys_in(value: SecretStr | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(key.strip() for key in value.get_secret_value().split(",") if key.strip())


# limits' notation: "60/minute", "10 per second", "1000/hour".
RATE_PATTERN = r"^\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?$"

# A key a person chose, or a placeholder, is guessable; a generated one has 32+ characters.
MIN_KEY_LENGTH = 32


class Settings(BaseSettings):
    # A refused setting's error names the setting, never its value (it may be a key).
    model_config = SettingsConfigDict(
        env_prefix="PAYONCE_", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".payonce")
    # Unset: SQLite in the data directory, migrated at start (the embedded default).
    database_url: str | None = None
    # Set: the per-order lock, result cache, push fan-out and event stream live in Redis, shared
    # by every instance. Unset: in-process (one instance only).
    redis_url: str | None = None
    # The shop backend's bearer key; several, separated by commas, while one is rotated out
    # ("new,old"): each is valid until it is removed.
    api_key: SecretStr | None = None
    # The operators' key (refunds, outbox replays, reconciliation, metrics), likewise several
    # during a rotation. Development generates one in the data directory; production without
    # it has no admin API.
    admin_key: SecretStr | None = None
    clock: Literal["system", "adjustable"] = "system"
    # The proxies (load balancers) whose X-Forwarded-For names the client (comma-separated
    # addresses, or "*" behind a proxy that always overwrites it): a shopper's rate limits
    # count the address it names. Default: only a proxy on this machine.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Other sites whose pages may open an order's WebSocket (JSON list of origins, e.g.
    # ["https://shop.example"]); payonce's own pages (PAYONCE_PUBLIC_URL) always may.
    allowed_origins: list[Annotated[str, Field(pattern=r"^https?://[^/\s]+$")]] = Field(
        default_factory=list
    )
    # Where payonce reaches a sandbox that it does not mount itself.
    sandbox_url: str | None = None
    # Mount the provider sandbox at /sandbox (development only); default: when no sandbox_url.
    mount_sandbox: bool | None = None
    # How shoppers' browsers and providers reach this server; default http://host:port.
    public_url: str | None = None
    provider_timeout_s: float = Field(default=15.0, gt=0)
    order_ttl_s: int = Field(default=1800, ge=60, le=7 * 86400)
    background_interval_s: float = Field(default=0.5, gt=0)
    # The per-order lock: how long a grant lives, and how long a request waits for one.
    lock_ttl_s: float = Field(default=30.0, gt=0)
    lock_wait_s: float = Field(default=15.0, ge=0)
    # An intent (a trade being opened) older than this lost its request: its outcome is unknown
    # and the next request asks the provider. Longer than the provider time-out.
    intent_grace_s: float = Field(default=60.0, gt=0)
    # A capture that comes after its order's deadline (or once it closed): "refund" it, or
    # "reopen" the order and apply it when the order can still be fulfilled.
    late_captures: Literal["refund", "reopen"] = "refund"
    # The waits between polls of an open trade, per channel, in seconds (JSON; the last wait
    # repeats), e.g. {"alipay": [10, 10, 30, 60]}; a channel not named keeps its default.
    poll_schedules: dict[Channel, list[Annotated[float, Field(gt=0)]]] = Field(default_factory=dict)
    # A live trade is reused (its QR or link shown again) only while it stays valid this long.
    reuse_margin_s: float = Field(default=60.0, ge=0, le=3600)
    # The sweeper takes a live trade unchanged this long whose poll job is missing or late.
    sweep_after_s: float = Field(default=600.0, gt=0)

    # An external order service: payment events are POSTed to this URL, signed per Standard
    # Webhooks with the secret ("whsec_" + base64 of 24 to 64 random bytes), until it answers
    # 2xx. One attempt may take the time-out (short: the first attempt runs right after the
    # commit, inside the request that caused it, under the order's lock: at most 10 s, well
    # inside the lock's lifetime); the relay retries with backoff.
    order_webhook_url: str | None = None
    order_webhook_secret: SecretStr | None = None
    order_webhook_timeout_s: float = Field(default=3.0, gt=0, le=10)
    # The topics it is sent (JSON), e.g. ["payment.succeeded", "payment.extra_captured"].
    order_webhook_topics: list[Topic] = Field(
        default_factory=lambda: [Topic.PAYMENT_SUCCEEDED], min_length=1
    )

    # A push gateway for shoppers' phones: a message per paid order (and per extra payment to
    # be refunded) is POSTed to this URL as JSON until it answers 2xx; unset, each message is
    # logged instead. Signed per Standard Webhooks with the secret (same format as above),
    # which production requires. One attempt may take the time-out (at most 10 s, so a relay's
    # claim outlasts its round of attempts; pushes go through the relay, never under a lock).
    push_gateway_url: str | None = None
    push_gateway_secret: SecretStr | None = None
    push_timeout_s: float = Field(default=5.0, gt=0, le=10)

    # Calls per window, per client and per order, of applies, status reads, event streams and
    # failed credentials, over the defaults (JSON), e.g. {"apply": {"order": "30/minute"}};
    # "off" counts nothing (a load test from one address).
    rate_limits: dict[
        Literal["apply", "status", "events", "credentials"],
        dict[Literal["client", "order"], Annotated[str, Field(pattern=RATE_PATTERN)]],
    ] = Field(default_factory=dict)
    rate_limiting: Literal["on", "off"] = "on"

    # Log lines: "json" (one object per line, for a log shipper) or "console" (readable);
    # default json in production, console in development.
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Test-only, for the chaos harness; production refuses every one of them.
    # With the adjustable clock: keep its offset in this file, shared by a local stack's processes.
    clock_file: Path | None = None
    # Crash (as kill -9) on reaching a failpoint, with its probability (JSON), e.g.
    # {"after_provider_call": 0.01}; the dice are seeded with the seed (per process start).
    failpoints: dict[Failpoint, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    failpoint_seed: str = "0"
    # "off": no lock, no reuse of open trades, no close-before-new, no refunds of extra captures,
    # no polls and no daily reconciliation; what the harness runs to prove that its checker
    # finds what they prevent.
    defences: Literal["on", "off"] = "on"

    # A real Alipay merchant account (production); the sandbox's generated keys are used otherwise.
    alipay_app_id: str | None = None
    alipay_seller_id: str | None = None
    alipay_private_key: SecretStr | None = None
    alipay_public_key: str | None = None
    alipay_gateway: str = "https://openapi.alipay.com/gateway.do"

    # A real WeChat Pay (v3) merchant account, in public-key mode: the merchant's API key and
    # its certificate serial, the APIv3 key (32 characters), the platform public key and its id.
    wechat_mchid: str | None = None
    wechat_appid: str | None = None
    wechat_private_key: SecretStr | None = None
    wechat_cert_serial_no: str | None = None
    wechat_apiv3_key: SecretStr | None = None
    wechat_public_key: str | None = None
    wechat_public_key_id: str | None = None
    wechat_gateway: str = "https://api.mch.weixin.qq.com"

    @property
    def wechat_account(self) -> tuple[object, ...]:
        """Every part of the WeChat Pay account; all or none must be set."""
        return (
            self.wechat_mchid,
            self.wechat_appid,
            self.wechat_private_key,
            self.wechat_cert_serial_no,
            self.wechat_apiv3_key,
            self.wechat_public_key,
            self.wechat_public_key_id,
        )

    # A real boleto PSP account (production): the API root, the secret key, the account id that
    # webhooks must name, and the webhook signing secret.
    boleto_api_url: str | None = None
    boleto_api_key: SecretStr | None = None
    boleto_account_id: str | None = None
    boleto_webhook_secret: SecretStr | None = None
    # A real PayPal REST app: its client credentials, our payee (merchant) id, the webhook
    # configured in PayPal's dashboard and the certificate its deliveries are signed with (PEM).
    paypal_client_id: str | None = None
    paypal_client_secret: SecretStr | None = None
    paypal_merchant_id: str | None = None
    paypal_webhook_id: str | None = None
    paypal_webhook_cert: str | None = None
    paypal_api_base: str = "https://api-m.paypal.com"

    @classmethod
    def load(cls) -> Settings:
        """The settings of this process: PAYONCE_* variables, and for secrets also files in
        the directory PAYONCE_SECRETS_DIR names (mounted secrets: one file per setting, named
        like its variable, e.g. payonce_api_key; a variable set wins over its file)."""
        secrets_dir = os.environ.get("PAYONCE_SECRETS_DIR")
        if secrets_dir is not None and not Path(secrets_dir).is_dir():
            raise ValueError(f"PAYONCE_SECRETS_DIR {secrets_dir} is not a directory")
        return cls(_secrets_dir=secrets_dir)

    @property
    def api_keys(self) -> tuple[str, ...]:
        return _keys_in(self.api_key)

    @property
    def admin_keys(self) -> tuple[str, ...]:
        return _keys_in(self.admin_key)

    @property
    def log_lines(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.env == "production" else "console"

    @property
    def sandbox_mounted(self) -> bool:
        if self.mount_sandbox is not None:
            return self.mount_sandbox
        return self.env == "development" and self.sandbox_url is None

    @property
    def embedded(self) -> bool:
        """One process on SQLite: migrate at start, run the background loop in-process."""
        return self.database_url is None

    @model_validator(mode="after")
    def _intent_outlives_the_call(self) -> Settings:
        if self.intent_grace_s <= self.provider_timeout_s:
            # Otherwise a slow but live create would be declared abandoned while it runs.
            raise ValueError("PAYONCE_INTENT_GRACE_S must exceed PAYONCE_PROVIDER_TIMEOUT_S")
        return self

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> Settings:
        if set(self.api_keys) & set(self.admin_keys):
            # One key for both would give every shop backend the operators' calls.
            raise ValueError("PAYONCE_ADMIN_KEY must differ from every PAYONCE_API_KEY")
        return self

    @model_validator(mode="after")
    def _order_webhook_is_signed(self) -> Settings:
        url, secret = self.order_webhook_url, self.order_webhook_secret
        if url is not None and secret is None:
            # Never sent unsigned: a receiver could not tell our calls from anyone's.
            raise ValueError("PAYONCE_ORDER_WEBHOOK_URL needs PAYONCE_ORDER_WEBHOOK_SECRET")
        if secret is not None and url is None:
            # Someone meant to notify an order service; saying nothing would lose that.
            raise ValueError("PAYONCE_ORDER_WEBHOOK_SECRET is set but not _URL")
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("PAYONCE_ORDER_WEBHOOK_URL must be an http:// or https:// URL")
        if secret is not None and not _is_webhook_secret(secret.get_secret_value()):
            raise ValueError(
                "PAYONCE_ORDER_WEBHOOK_SECRET must be whsec_ and the base64 of 24 to 64 bytes"
            )
        return self

    @model_validator(mode="after")
    def _push_gateway_is_reachable(self) -> Settings:
        url, secret = self.push_gateway_url, self.push_gateway_secret
        if secret is not None and url is None:
            # Someone meant to push to a gateway; logging instead would lose that silently.
            raise ValueError("PAYONCE_PUSH_GATEWAY_SECRET is set but not _URL")
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("PAYONCE_PUSH_GATEWAY_URL must be an http:// or https:// URL")
        if secret is not None and not _is_webhook_secret(secret.get_secret_value()):
            raise ValueError(
                "PAYONCE_PUSH_GATEWAY_SECRET must be whsec_ and the base64 of 24 to 64 bytes"
            )
        return self

    @model_validator(mode="after")
    def _production_refuses_defaults(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if not self.api_keys:
            problems.append("PAYONCE_API_KEY must be set")
        if any(len(key) < MIN_KEY_LENGTH for key in (*self.api_keys, *self.admin_keys)):
            problems.append(f"API and admin keys must be at least {MIN_KEY_LENGTH} characters")
        if self.clock != "system" or self.clock_file is not None:
            problems.append("PAYONCE_CLOCK=adjustable (and _CLOCK_FILE) are for demos and tests")
        if self.failpoints:
            problems.append("PAYONCE_FAILPOINTS crash the process: for the chaos harness only")
        if self.defences != "on":
            problems.append("PAYONCE_DEFENCES=off is for the chaos harness only")
        if self.mount_sandbox:
            problems.append("the sandbox is never mounted in production")
        if self.sandbox_url is not None:
            problems.append("PAYONCE_SANDBOX_URL is for development")
        if self.public_url is None:
            problems.append("PAYONCE_PUBLIC_URL must be set")
        alipay = (
            self.alipay_app_id,
            self.alipay_seller_id,
            self.alipay_private_key,
            self.alipay_public_key,
        )
        if any(alipay) and not all(alipay):
            # Without the seller id every genuine notification would be refused as foreign.
            problems.append(
                "Alipay needs PAYONCE_ALIPAY_APP_ID, _SELLER_ID, _PRIVATE_KEY and _PUBLIC_KEY"
            )
        wechat = self.wechat_account
        if any(wechat) and not all(wechat):
            # Without any one part, every call or every notification would be refused.
            problems.append(
                "WeChat Pay needs PAYONCE_WECHAT_MCHID, _APPID, _PRIVATE_KEY, _CERT_SERIAL_NO, "
                "_APIV3_KEY, _PUBLIC_KEY and _PUBLIC_KEY_ID"
            )
        apiv3 = self.wechat_apiv3_key
        if apiv3 is not None and len(apiv3.get_secret_value()) != 32:
            problems.append("PAYONCE_WECHAT_APIV3_KEY must be 32 characters (an AES-256 key)")
        boleto = (
            self.boleto_api_url,
            self.boleto_api_key,
            self.boleto_account_id,
            self.boleto_webhook_secret,
        )
        if any(boleto) and not all(boleto):
            # Without the account id or the secret every genuine webhook would be refused.
            problems.append(
                "Boleto needs PAYONCE_BOLETO_API_URL, _API_KEY, _ACCOUNT_ID and _WEBHOOK_SECRET"
            )
        paypal = (
            self.paypal_client_id,
            self.paypal_client_secret,
            self.paypal_merchant_id,
            self.paypal_webhook_id,
            self.paypal_webhook_cert,
        )
        if any(paypal) and not all(paypal):
            # Without the webhook id and certificate no webhook verifies; without the merchant
            # id every genuine one would be refused as foreign.
            problems.append(
                "PayPal needs PAYONCE_PAYPAL_CLIENT_ID, _CLIENT_SECRET, _MERCHANT_ID, "
                "_WEBHOOK_ID and _WEBHOOK_CERT"
            )
        if self.push_gateway_url is not None and self.push_gateway_secret is None:
            # Unsigned, a gateway could not tell our messages from anyone's.
            problems.append("PAYONCE_PUSH_GATEWAY_URL needs PAYONCE_PUSH_GATEWAY_SECRET")
        if problems:
            # Pydantic reports it as a ValidationError naming every problem at once.
            raise ValueError("production settings refused: " + "; ".join(problems))
        return self
