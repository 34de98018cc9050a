"""WeChat Pay's trade bill file, checked against its announced hash and read into statement lines.

The file (gzipped when asked with ``tar_type=GZIP``) is a CSV: a header row, one row per money
movement with every value prefixed by a backquote, then a summary header (总交易单数, …) and
row. 交易状态 SUCCESS is a capture of 应结订单金额, REFUND a refund of 退款金额 under the
merchant's refund number 商户退款单号; 交易时间 is China time. The hash (SHA1 of the uncompressed
file) comes in the signed apply answer: a file that does not match it is not the bill.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta, timezone

from payonce.domain.money import InvalidMoney, Money
from payonce.errors import ProviderUnavailable
from payonce.ports.provider import StatementLine

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
SUMMARY_FIRST = "总交易单数"
_NEEDED = (
    "交易时间",
    "商户号",
    "微信订单号",
    "商户订单号",
    "交易状态",
    "货币种类",
    "应结订单金额",
    "商户退款单号",
    "退款金额",
)
# Rows that moved no money: a payment cancelled (revoked) before it was taken.
_SKIPPED = frozenset({"REVOKED"})


def verified_bill(content: bytes, hash_type: object, hash_value: object) -> str:
    """The bill's text, once its SHA1 matches the signed answer's; ProviderUnavailable if not."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as error:
            raise ProviderUnavailable("wechat bill: a broken gzip file") from error
    if hash_type != "SHA1" or not isinstance(hash_value, str):
        raise ProviderUnavailable(f"wechat bill: unexpected hash {hash_type!r}")
    digest = hashlib.sha1(content, usedforsecurity=False).hexdigest()
    if not hmac.compare_digest(digest, hash_value.lower()):
        raise ProviderUnavailable("wechat bill: the file does not match its hash")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ProviderUnavailable("wechat bill: not UTF-8 text") from error


def parse_bill(text: str, day: date, mchid: str) -> list[StatementLine]:
    """The movements of ``day`` (China time) of merchant ``mchid`` in a bill's text."""
    rows = [
        [value.strip().removeprefix("`") for value in row]
        for row in csv.reader(text.splitlines())
        if row
    ]
    if not rows:
        raise ProviderUnavailable("wechat bill: empty")
    header, *rest = rows
    try:
        column = {name: header.index(name) for name in _NEEDED}
        end = next(i for i, row in enumerate(rest) if row[0] == SUMMARY_FIRST)
    except (ValueError, StopIteration) as error:
        # No summary: the file was cut short (its hash was of a cut file too).
        raise ProviderUnavailable("wechat bill: no header or no summary") from error
    lines = []
    for row in rest[:end]:
        if len(row) != len(header):
            raise ProviderUnavailable(f"wechat bill: a row of {len(row)} values")
        values = {name: row[index] for name, index in column.items()}
        if values["交易状态"] in _SKIPPED:
            continue
        lines.append(_line(values, day, mchid))
    return lines


def _line(values: dict[str, str], day: date, mchid: str) -> StatementLine:
    if values["商户号"] != mchid:
        raise ProviderUnavailable(f"wechat bill: a row of merchant {values['商户号']}")
    status = values["交易状态"]
    if status not in ("SUCCESS", "REFUND"):
        raise ProviderUnavailable(f"wechat bill: trade status {status!r}")
    refund = status == "REFUND"
    try:
        local = datetime.strptime(values["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
        amount = Money.from_decimal_string(
            values["退款金额" if refund else "应结订单金额"], values["货币种类"]
        )
    except (ValueError, InvalidMoney) as error:
        raise ProviderUnavailable(f"wechat bill: unreadable row {values}") from error
    if local.date() != day:
        raise ProviderUnavailable(f"wechat bill of {day}: a movement on {local.date()}")
    transaction_id, out_trade_no = values["微信订单号"], values["商户订单号"]
    reference = values["商户退款单号"] if refund else transaction_id
    if amount.amount == 0 or not (transaction_id and out_trade_no and reference):
        raise ProviderUnavailable(f"wechat bill: an incomplete row {values}")
    return StatementLine(
        kind="refund" if refund else "capture",
        out_trade_no=out_trade_no,
        provider_trade_no=transaction_id,
        amount=amount,
        at=local.astimezone(UTC),
        reference=reference,
    )
