"""Production settings refuse what would be unsafe; development needs nothing at all."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from payonce.config import Settings

PRODUCTION = {"env": "production", "api_key": "k" * 32, "public_url": "https://pay.example"}


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
        ({"mount_sandbox": True}, "sandbox"),
        ({"sandbox_url": "http://127.0.0.1:8100/sandbox"}, "SANDBOX_URL"),
        ({"alipay_app_id": "2021000000000001"}, "SELLER_ID"),
    ],
)
def test_production_refuses(changes: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Settings(**{**PRODUCTION, **changes})  # type: ignore[arg-type]
