"""Settings, read once from PAYONCE_* environment variables at the entrypoint and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYONCE_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".payonce")
    # Unset: SQLite in the data directory, migrated at start (the embedded default).
    database_url: str | None = None
    redis_url: str | None = None
    api_key: SecretStr | None = None
    clock: Literal["system", "adjustable"] = "system"
    # Where payonce reaches a sandbox that it does not mount itself.
    sandbox_url: str | None = None
    # Mount the provider sandbox at /sandbox (development only); default: when no sandbox_url.
    mount_sandbox: bool | None = None
    # How shoppers' browsers and providers reach this server; default http://host:port.
    public_url: str | None = None
    provider_timeout_s: float = Field(default=15.0, gt=0)
    order_ttl_s: int = Field(default=1800, ge=60, le=7 * 86400)
    background_interval_s: float = Field(default=0.5, gt=0)

    # A real Alipay merchant account (production); the sandbox's generated keys are used otherwise.
    alipay_app_id: str | None = None
    alipay_seller_id: str | None = None
    alipay_private_key: SecretStr | None = None
    alipay_public_key: str | None = None
    alipay_gateway: str = "https://openapi.alipay.com/gateway.do"

    # A real PayPal REST app: its client credentials, our payee (merchant) id, the webhook
    # configured in PayPal's dashboard and the certificate its deliveries are signed with (PEM).
    paypal_client_id: str | None = None
    paypal_client_secret: SecretStr | None = None
    paypal_merchant_id: str | None = None
    paypal_webhook_id: str | None = None
    paypal_webhook_cert: str | None = None
    paypal_api_base: str = "https://api-m.paypal.com"

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
    def _production_refuses_defaults(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.api_key is None:
            problems.append("PAYONCE_API_KEY must be set")
        if self.clock != "system":
            problems.append("PAYONCE_CLOCK=adjustable is for demos and tests")
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
        if problems:
            # Pydantic reports it as a ValidationError naming every problem at once.
            raise ValueError("production settings refused: " + "; ".join(problems))
        return self
