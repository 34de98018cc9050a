"""The poll schedule: per channel, configurable, and for vouchers on bank business days only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payonce.bootstrap import policy_of
from payonce.config import Settings
from payonce.domain.bank_days import SAO_PAULO
from payonce.domain.channels import Channel
from payonce.domain.outcomes import LateCaptures
from payonce.service.context import DEFAULT_POLL_SCHEDULES, Policy


def test_a_voucher_poll_that_would_fall_on_a_weekend_waits_for_monday() -> None:
    policy = Policy()
    friday_evening = datetime(2026, 11, 27, 20, 0, tzinfo=SAO_PAULO)
    at = policy.next_poll_at(Channel.BOLETO, 1, friday_evening)  # 4 h later: Saturday 00:00
    assert at == datetime(2026, 11, 30, 0, 0, tzinfo=SAO_PAULO)
    assert at.tzinfo is not None
    # A holiday too (Friday 20 November 2026, Consciência Negra) moves it to the next bank day.
    thursday = datetime(2026, 11, 19, 22, 0, tzinfo=SAO_PAULO)
    assert policy.next_poll_at(Channel.BOLETO, 1, thursday) == datetime(
        2026, 11, 23, 0, 0, tzinfo=SAO_PAULO
    )
    # A business day keeps the plain wait; other channels never wait for banks.
    tuesday = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert policy.next_poll_at(Channel.BOLETO, 0, tuesday) == tuesday + timedelta(hours=1)
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert policy.next_poll_at(Channel.ALIPAY, 0, saturday) == saturday + timedelta(seconds=15)


def test_schedules_and_the_late_capture_policy_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYONCE_POLL_SCHEDULES", '{"alipay": [5, 10], "boleto": []}')
    monkeypatch.setenv("PAYONCE_LATE_CAPTURES", "reopen")
    policy = policy_of(Settings())
    assert policy.poll_schedules[Channel.ALIPAY] == (timedelta(seconds=5), timedelta(seconds=10))
    # A channel not named, or named with no waits, keeps its default schedule.
    assert policy.poll_schedules[Channel.WECHAT] == DEFAULT_POLL_SCHEDULES[Channel.WECHAT]
    assert policy.poll_schedules[Channel.BOLETO] == DEFAULT_POLL_SCHEDULES[Channel.BOLETO]
    assert policy.late_captures is LateCaptures.REOPEN
    assert policy_of(Settings(late_captures="refund")).late_captures is LateCaptures.REFUND


def test_a_schedule_with_a_wait_of_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYONCE_POLL_SCHEDULES", '{"alipay": [0]}')
    with pytest.raises(ValueError, match="greater than 0"):
        Settings()
