"""Alipay's trade bill file (a zip of GBK CSVs) read into statement lines.

The zip holds the day's detail (``…_业务明细.csv``) and a summary; the detail has ``#`` comment
lines around a header row and one row per money movement, each value padded with a tab.
Business type 交易 is a capture, 退款 a refund; 商家实收 is what the merchant received
(negative for a refund); 完成时间 is when the money moved, in China time.
"""

# ruff: noqa: RUF001 (Alipay's bill speaks Chinese, with full-width punctuation)
from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from payonce.domain.money import InvalidMoney, Money
from payonce.errors import ProviderUnavailable
from payonce.ports.provider import StatementLine

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
DETAIL_SUFFIX = "_业务明细.csv"
_KINDS = {"交易": "capture", "退款": "refund"}
_NEEDED = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "完成时间",
    "商家实收（元）",
    "退款批次号/请求号",
)


def _detail_text(content: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = [name for name in archive.namelist() if name.endswith(DETAIL_SUFFIX)]
            if len(names) != 1:
                raise ProviderUnavailable(f"alipay bill: no single detail file in {names}")
            raw = archive.read(names[0])
    except (zipfile.BadZipFile, KeyError) as error:
        raise ProviderUnavailable(f"alipay bill: not a bill zip: {error}") from error
    try:
        return raw.decode("gbk")
    except UnicodeDecodeError as error:
        raise ProviderUnavailable("alipay bill: the detail is not GBK text") from error


def parse_bill(content: bytes, day: date) -> list[StatementLine]:
    """The movements of ``day`` (China time) in Alipay's bill zip; ProviderUnavailable if the
    file is not such a bill, or holds a movement of another day."""
    rows = [row for row in csv.reader(io.StringIO(_detail_text(content))) if row]
    rows = [[value.strip() for value in row] for row in rows if not row[0].startswith("#")]
    if not rows:
        raise ProviderUnavailable("alipay bill: no header row")
    header, *data = rows
    try:
        column = {name: header.index(name) for name in _NEEDED}
    except ValueError as error:
        raise ProviderUnavailable(f"alipay bill: unexpected header {header}") from error
    lines = []
    for row in data:
        if len(row) != len(header):
            raise ProviderUnavailable(f"alipay bill: a row of {len(row)} values: {row}")
        values = {name: row[index] for name, index in column.items()}
        lines.append(_line(values, day))
    return lines


def _line(values: dict[str, str], day: date) -> StatementLine:
    kind = _KINDS.get(values["业务类型"])
    if kind is None:
        raise ProviderUnavailable(f"alipay bill: business type {values['业务类型']!r}")
    try:
        local = datetime.strptime(values["完成时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
        received = Decimal(values["商家实收（元）"])
        amount = Money.from_decimal_string(str(abs(received)), "CNY")
    except (ValueError, InvalidOperation, InvalidMoney) as error:
        raise ProviderUnavailable(f"alipay bill: unreadable row {values}") from error
    if local.date() != day:
        raise ProviderUnavailable(f"alipay bill of {day}: a movement on {local.date()}")
    # What the merchant received is positive for a payment, negative for a refund.
    if amount.amount == 0 or (received < 0) != (kind == "refund"):
        raise ProviderUnavailable(f"alipay bill: amount {received} for a {kind}")
    trade_no, out_trade_no = values["支付宝交易号"], values["商户订单号"]
    reference = values["退款批次号/请求号"] if kind == "refund" else trade_no
    if not (trade_no and out_trade_no and reference):
        raise ProviderUnavailable(f"alipay bill: a row without its numbers: {values}")
    return StatementLine(
        kind="capture" if kind == "capture" else "refund",
        out_trade_no=out_trade_no,
        provider_trade_no=trade_no,
        amount=amount,
        at=local.astimezone(UTC),
        reference=reference,
    )
