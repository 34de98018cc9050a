"""The sandbox's pure parts: credentials on disk, RSA2 strings, wire formats, fault dice, ledger."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alipay import AliPay
from Cryptodome.PublicKey import RSA

from payonce.sandbox import AlipayCredentials, FaultSettings
from payonce.sandbox.alipay_wire import (
    CHINA_TZ,
    AlipayError,
    Reply,
    china_time,
    envelope,
    parse_china_time,
    parse_yuan,
    yuan,
)
from payonce.sandbox.faults import Faults
from payonce.sandbox.ledger import Ledger, Movement
from payonce.sandbox.signing import (
    NOTIFICATION_UNSIGNED_KEYS,
    load_private_key,
    load_public_key,
    sign_rsa2,
    unsigned_string,
    verify_rsa2,
)


def test_credentials_are_created_once_with_mode_0600(
    tmp_path: Path, credentials: AlipayCredentials
) -> None:
    path = tmp_path / "deep" / "dir" / "alipay.json"
    created = AlipayCredentials.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert AlipayCredentials.load_or_create(path) == created
    assert json.loads(path.read_text())["app_id"] == created.app_id
    assert len(created.app_id) == 16
    assert created.seller_id.startswith("2088")
    assert len(created.seller_id) == 16
    assert created.seller_id.isdigit()
    assert "PRIVATE" not in repr(created)
    assert list(tmp_path.joinpath("deep", "dir").iterdir()) == [path]
    # The SDK loads them with pycryptodomex.
    for pem in (created.app_private_key_pem, created.alipay_public_key_pem):
        assert RSA.importKey(pem).size_in_bits() == 2048
    AliPay(
        appid=created.app_id,
        app_private_key_string=created.app_private_key_pem,
        alipay_public_key_string=created.alipay_public_key_pem,
    )


def test_broken_credentials_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "alipay.json"
    path.write_text(json.dumps({"app_id": "1"}))
    with pytest.raises(ValueError, match="lack seller_id"):
        AlipayCredentials.load_or_create(path)


def test_unsigned_string_and_rsa2_match_the_sdk(credentials: AlipayCredentials) -> None:
    params = {"b": "2", "a": "x y&z", "sign": "s", "sign_type": "RSA2", "empty": ""}
    assert unsigned_string(params) == "a=x y&z&b=2&sign_type=RSA2"
    assert unsigned_string(params, exclude=NOTIFICATION_UNSIGNED_KEYS) == "a=x y&z&b=2"
    sdk = AliPay(
        appid=credentials.app_id,
        app_private_key_string=credentials.app_private_key_pem,
        alipay_public_key_string=credentials.alipay_public_key_pem,
    )
    message = "a=中文&b={}"
    signature = sdk._sign(message)
    public = load_public_key(credentials.app_public_key_pem)
    assert verify_rsa2(public, message, signature)
    assert not verify_rsa2(public, message + "x", signature)
    assert not verify_rsa2(public, message, "not base64!")
    ours = sign_rsa2(load_private_key(credentials.alipay_private_key_pem), message)
    assert sdk._verify(message, ours)


def test_wire_formats() -> None:
    assert [yuan(f) for f in (0, 1, 10, 3998, 100_000_000_00)] == [
        "0.00",
        "0.01",
        "0.10",
        "39.98",
        "100000000.00",
    ]
    assert [parse_yuan(t) for t in ("39.98", "39.9", "39", "0.01")] == [3998, 3990, 3900, 1]
    for bad in ("0", "0.00", "-1", "1.001", "1e3", " ", "100000000.01"):
        with pytest.raises(ValueError, match="amount"):
            parse_yuan(bad)
    moment = datetime(2026, 11, 24, 16, 30, 5, tzinfo=UTC)
    assert china_time(moment) == "2026-11-25 00:30:05"
    assert parse_china_time("2026-11-25 00:30:05") == moment


def test_envelope_is_signed_over_the_exact_inner_text(credentials: AlipayCredentials) -> None:
    reply = Reply.failure("alipay.trade.query", AlipayError("ACQ.X", "a{b}c", extra={"k": "}"}))
    text = envelope(reply, load_private_key(credentials.alipay_private_key_pem))
    sdk = AliPay(
        appid=credentials.app_id,
        app_private_key_string=credentials.app_private_key_pem,
        alipay_public_key_string=credentials.alipay_public_key_pem,
    )
    inner = sdk._get_string_to_be_signed(text, "alipay_trade_query_response")
    assert json.loads(inner) == {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.X",
        "sub_msg": "a{b}c",
        "k": "}",
    }
    assert sdk._verify_and_return_sync_response(text, "alipay_trade_query_response")["k"] == "}"


def test_fault_streams_are_independent_per_kind() -> None:
    settings = FaultSettings(seed=11, notify_drop_rate=0.5, query_error_rate=0.5)
    alone, mixed = Faults(settings), Faults(settings)
    drops_alone = [alone.strikes("notify_drop") for _ in range(20)]
    drops_mixed = []
    for _ in range(20):
        mixed.strikes("query_error")
        drops_mixed.append(mixed.strikes("notify_drop"))
    assert drops_alone == drops_mixed
    assert set(drops_alone) == {True, False}
    delays = [Faults(FaultSettings(seed=1, notify_delay_s=(2, 4))).notify_delay() for _ in "ab"]
    assert delays[0] == delays[1]
    assert timedelta(seconds=2) <= delays[0] <= timedelta(seconds=4)
    never, always = Faults(FaultSettings()), Faults(FaultSettings(close_timeout_rate=1.0))
    assert not any(never.strikes("close_timeout") for _ in range(50))
    assert all(always.strikes("close_timeout") for _ in range(50))


def test_ledger_net_and_statement() -> None:
    ledger = Ledger()
    at = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 01:00 on the 25th in China
    ledger.record(Movement("alipay", "o1", "t1", "capture", 500, "CNY", at, "t1"))
    ledger.record(Movement("alipay", "o1", "t1", "refund", 200, "CNY", at, "r1"))
    with pytest.raises(ValueError, match="positive"):
        ledger.record(Movement("alipay", "o1", "t1", "refund", 0, "CNY", at, "r2"))
    assert ledger.net(channel="alipay", out_trade_no="o1") == 300
    csv = ledger.statement_csv(channel="alipay", day=date(2026, 11, 25), tz=CHINA_TZ)
    assert csv.splitlines() == [
        "at,channel,out_trade_no,trade_no,kind,amount,currency,reference",
        "2026-11-25 01:00:00,alipay,o1,t1,capture,500,CNY,t1",
        "2026-11-25 01:00:00,alipay,o1,t1,refund,200,CNY,r1",
    ]
    assert (
        ledger.statement_csv(channel="alipay", day=date(2026, 11, 24), tz=CHINA_TZ).count("\n") == 1
    )
