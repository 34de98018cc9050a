"""Which keys a process accepts: several during a rotation, an admin key apart from them, a
generated one only in development, and none of them ever printed when set."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from payonce.bootstrap import access_of
from payonce.config import Settings

PRODUCTION = {"env": "production", "public_url": "https://pay.example"}


def test_a_rotation_holds_every_listed_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key=" sk_new , sk_old,", admin_key="ak_1")  # type: ignore[arg-type]
    access = access_of(settings)
    assert (access.api, access.admin) == (("sk_new", "sk_old"), ("ak_1",))


def test_development_generates_an_admin_key_once_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    first = access_of(Settings(data_dir=tmp_path))
    again = access_of(Settings(data_dir=tmp_path))
    assert first == again
    [admin] = first.admin
    assert admin.startswith("ak_")
    assert len(admin) >= 40
    assert admin not in first.api
    mode = stat.S_IMODE((tmp_path / "admin_key").stat().st_mode)
    assert mode == 0o600


def test_production_has_no_admin_key_unless_one_is_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key="k" * 32, **PRODUCTION)  # type: ignore[arg-type]
    assert access_of(settings).admin == ()
    assert not (tmp_path / "admin_key").exists()


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"api_key": "k" * 32, "admin_key": "k" * 32}, "must differ"),
        ({"api_key": "short"}, "at least 32 characters"),
        ({"api_key": "k" * 32, "admin_key": "a" * 31}, "at least 32 characters"),
        ({"api_key": f"{'k' * 32},old"}, "at least 32 characters"),
    ],
)
def test_keys_that_are_shared_or_short_are_refused(
    tmp_path: Path, fields: dict[str, str], refusal: str
) -> None:
    with pytest.raises(ValidationError, match=refusal):
        Settings(data_dir=tmp_path, **PRODUCTION, **fields)  # type: ignore[arg-type]


def test_secrets_come_from_mounted_files_and_a_variable_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    (mounted / "payonce_api_key").write_text("sk_mounted_0123456789abcdef0123456789")
    (mounted / "payonce_admin_key").write_text("ak_mounted_0123456789abcdef0123456789")
    monkeypatch.setenv("PAYONCE_SECRETS_DIR", str(mounted))
    monkeypatch.setenv("PAYONCE_DATA_DIR", str(tmp_path))
    settings = Settings.load()
    assert settings.api_keys == ("sk_mounted_0123456789abcdef0123456789",)
    assert settings.admin_keys == ("ak_mounted_0123456789abcdef0123456789",)
    # Neither a repr nor a dump shows them (a settings object logged by mistake).
    assert "0123456789abcdef" not in repr(settings)
    assert "0123456789abcdef" not in str(settings.model_dump())
    monkeypatch.setenv("PAYONCE_API_KEY", "sk_variable")
    assert Settings.load().api_keys == ("sk_variable",)
    monkeypatch.setenv("PAYONCE_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="not a directory"):
        Settings.load()


def test_a_refused_setting_is_named_and_its_value_never_shown(tmp_path: Path) -> None:
    key = "sk_" + "Q7" * 20
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, api_key=key, admin_key=key)  # type: ignore[arg-type]
    assert "must differ" in str(refused.value)
    assert "Q7Q7" not in str(refused.value)
