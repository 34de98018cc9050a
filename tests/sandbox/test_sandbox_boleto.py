"""The boleto PSP: its API, paying at a bank, clearing days, payable window, refunds, books.

Also the ledger, the trade list, the statement and the faults of its calls.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest
from boleto_harness import Psp, boleto_channel, pay_at_bank, walk_to
from sandbox_harness import START, Env

from payonce.domain.bank_days import SAO_PAULO
from payonce.sandbox.boleto_codes import barcode_of, check_line, digits_of
from payonce.sandbox.faults import FaultSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def local(text: str) -> datetime:
    """A São Paulo wall-clock time, as an aware instant."""
    return datetime.fromisoformat(text).replace(tzinfo=SAO_PAULO)


async def test_create_answers_a_pending_charge_with_its_voucher(env: Env) -> None:
    psp = Psp(env)
    response = await psp.create("b_1", 3998, due="2026-11-24", customer={"name": "Ana"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    charge = response.json()
    voucher = charge.pop("boleto")
    assert re.fullmatch(r"ch_[0-9a-f]{16}", charge.pop("id"))
    assert charge == {
        "code": "b_1",
        "amount": 3998,
        "currency": "BRL",
        "payment_method": "boleto",
        "status": "pending",
        "description": "Tea",
        "paid_amount": 0,
        "refunded_amount": 0,
        "created_at": "2026-11-24T02:00:00Z",
        "paid_at": None,
        "confirmed_at": None,
        "customer": {"name": "Ana", "document": None},
        "refunds": [],
    }
    line = digits_of(voucher["digitable_line"])
    check_line(line)
    assert barcode_of(line) == voucher["barcode"]
    code = voucher["barcode"]
    # Bradesco (237), reais (9), due 2026-11-24 (factor 1640), R$ 39,98, agency 3381 wallet 09.
    assert (code[:4], code[5:9], code[9:19], code[19:25]) == (
        "2379",
        "1640",
        "0000003998",
        "338109",
    )
    assert voucher["due_date"] == "2026-11-24"
    assert voucher["payable_until"] == "2026-11-25T03:00:00Z"  # midnight ending the 24th, BRT
    assert voucher["url"] == f"{env.url}/boleto/v1/charges/{response.json()['id']}/voucher"
    assert re.fullmatch(r"\d{11}", voucher["nosso_numero"])

    page = await env.http.get(voucher["url"])
    assert page.status_code == 200
    assert voucher["digitable_line"] in page.text
    assert code in page.text
    assert "R$ 39,98" in page.text
    assert "24/11/2026" in page.text
    assert (await env.http.get(f"{env.url}/boleto/v1/charges/ch_nope/voucher")).status_code == 404


async def test_create_is_idempotent_by_code_and_amount(env: Env) -> None:
    psp = Psp(env)
    first = await psp.charge("b_2")
    again = await psp.create("b_2", 3998, due="2026-11-30")
    assert again.status_code == 200
    assert again.json() == first
    other = await psp.create("b_2", 4000)
    assert other.status_code == 409
    assert other.json() == {
        "message": "A charge with code b_2 exists with another amount.",
        "code": "code_conflict",
    }
    assert [(c.method, c.code, c.sub_code) for c in env.sandbox.calls("b_2")] == [
        ("POST /charges", "201", None),
        ("POST /charges", "200", None),
        ("POST /charges", "409", "code_conflict"),
    ]
    assert [t.trade_no for t in env.sandbox.trades("b_2")] == [first["id"]]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": "3998"}, 422, "invalid_request"),
        ({"amount": 0}, 422, "invalid_request"),
        ({"amount": 10**10}, 422, "invalid_request"),
        ({"currency": "USD"}, 422, "invalid_request"),
        ({"code": "has space"}, 422, "invalid_request"),
        ({"due_date": "2026-11-22"}, 422, "invalid_due_date"),
        ({"notification_url": "ftp://x"}, 422, "invalid_request"),
        ({"surprise": 1}, 422, "invalid_request"),
    ],
)
async def test_a_bad_create_is_refused_in_the_psps_words(
    env: Env, change: dict[str, object], status: int, code: str
) -> None:
    psp = Psp(env)
    body = {"code": "b_bad", "amount": 3998, "currency": "BRL", "due_date": "2026-11-23"}
    response = await env.http.post(f"{psp.base}/charges", json=body | change, auth=psp.auth)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"  # never problem+json here
    assert response.json()["code"] == code
    assert env.sandbox.trades() == []


async def test_a_call_without_the_secret_key_is_refused(env: Env) -> None:
    response = await Psp(env, api_key="sk_test_wrong").create("b_3")
    assert (response.status_code, response.json()["code"]) == (401, "unauthorized")
    bare = await env.http.get(f"{env.url}/boleto/v1/charges", params={"code": "b_3"})
    assert bare.status_code == 401
    assert env.sandbox.trades("b_3") == []


async def test_query_by_id_and_by_code(env: Env) -> None:
    psp = Psp(env)
    charge = await psp.charge("b_4")
    assert (await psp.get(charge["id"])).json() == charge
    assert (await psp.by_code("b_4")).json() == {"data": [charge], "paging": {"total": 1}}
    assert (await psp.by_code("b_none")).json() == {"data": [], "paging": {"total": 0}}
    missing = await psp.get("ch_0000000000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


async def test_paid_at_a_bank_it_stays_pending_until_the_clearing_confirms_it(env: Env) -> None:
    psp = Psp(env)
    charge = await psp.charge("b_5")
    confirm_at = await pay_at_bank(env, charge)
    # Seed 0 draws three business days for the first payment: Monday 23:00 → Thursday 09:00.
    assert confirm_at == local("2026-11-26T09:00:00")
    view = await env.wallet("scan", charge["boleto"]["barcode"])
    assert (view.json()["status"], view.json()["can_pay"]) == ("pending", False)
    assert view.json()["note"] == (
        "Paid at the bank on 2026-11-23 23:00; the payment is confirmed to the merchant on "
        "2026-11-26 09:00 (São Paulo time)."
    )

    await walk_to(env, confirm_at - timedelta(seconds=1))
    assert (await psp.get(charge["id"])).json()["status"] == "pending"
    assert env.sandbox.ledger("b_5") == []
    await walk_to(env, confirm_at + timedelta(hours=5))  # the capture is dated when it happened
    paid = (await psp.get(charge["id"])).json()
    # paid_at is when the shopper paid at the bank (Monday 23:00 in São Paulo), as the clearing
    # reports it; confirmed_at is the clearing's confirmation, when the PSP captured the money.
    assert (paid["status"], paid["paid_amount"], paid["paid_at"], paid["confirmed_at"]) == (
        "paid",
        3998,
        "2026-11-24T02:00:00Z",
        "2026-11-26T12:00:00Z",
    )
    assert [(m.kind, m.amount, m.currency, m.at) for m in env.sandbox.ledger("b_5")] == [
        ("capture", 3998, "BRL", confirm_at)
    ]


async def test_the_clearing_delay_is_drawn_from_the_seed(env: Env) -> None:
    psp = Psp(env)
    env.sandbox.set_faults(FaultSettings(seed=1))
    delays = []
    for number in range(4):
        charge = await psp.charge(f"b_6_{number}", due="2026-11-30")
        delays.append((await pay_at_bank(env, charge)).date().isoformat())
    # Seed 1 draws 1, 1, 3 and 1 business days (paid on Monday 2026-11-23).
    assert delays == ["2026-11-24", "2026-11-24", "2026-11-26", "2026-11-24"]


async def test_a_weekend_due_date_is_payable_through_the_next_business_day(env: Env) -> None:
    psp = Psp(env)
    saturday = await psp.charge("b_7", due="2026-11-28")
    sunday = await psp.charge("b_8", due="2026-11-29")
    christmas = await psp.charge("b_9", due="2026-12-25")
    assert saturday["boleto"]["payable_until"] == "2026-12-01T03:00:00Z"
    assert christmas["boleto"]["payable_until"] == "2026-12-29T03:00:00Z"

    await walk_to(env, local("2026-11-30T23:59:59"))  # Monday, the next business day
    assert (await env.wallet("pay", saturday["boleto"]["digitable_line"])).status_code == 200
    await walk_to(env, local("2026-12-01T00:00:00"))
    late = await env.wallet("pay", sunday["boleto"]["digitable_line"])
    assert (late.status_code, late.json()["code"]) == (409, "boleto_overdue")
    assert (await psp.get(sunday["id"])).json()["status"] == "expired"
    [listed] = env.sandbox.trades("b_8")
    assert (listed.status, listed.closed_at) == ("expired", local("2026-12-01T00:00:00"))
    assert (await psp.get(christmas["id"])).json()["status"] == "pending"
    assert env.sandbox.ledger("b_8") == []


async def test_the_bank_refuses_a_second_payment_and_unknown_codes(env: Env) -> None:
    charge = await Psp(env).charge("b_10")
    line = charge["boleto"]["digitable_line"]
    assert (await env.wallet("pay", line)).status_code == 200
    twice = await env.wallet("pay", charge["boleto"]["barcode"])
    assert (twice.status_code, twice.json()["code"]) == (409, "boleto_already_paid")
    # Valid check digits, but no boleto was issued with them.
    unknown = await env.wallet("pay", "10490.05505 77222.133348 77777.777713 4 32420000032112")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "code_unknown")
    garbled = await env.wallet("pay", line[:-1] + ("1" if line[-1] != "1" else "2"))
    assert (garbled.status_code, garbled.json()["code"]) == (422, "code_unknown")
    await walk_to(env, START + timedelta(days=10))
    assert [m.kind for m in env.sandbox.ledger("b_10")] == ["capture"]


async def test_a_boleto_is_never_cancelled(env: Env) -> None:
    psp = Psp(env)
    charge = await psp.charge("b_11")
    refused = await psp.cancel(charge["id"])
    assert (refused.status_code, refused.json()["code"]) == (422, "charge_not_cancellable")
    assert (await psp.get(charge["id"])).json()["status"] == "pending"
    await walk_to(env, await pay_at_bank(env, charge))
    again = await psp.cancel(charge["id"])
    assert (again.status_code, again.json()["code"]) == (422, "charge_not_cancellable")
    assert (await psp.cancel("ch_0000000000000000")).status_code == 404
    assert [m.kind for m in env.sandbox.ledger("b_11")] == ["capture"]


async def test_refunds_are_made_once_per_code_and_never_exceed_the_payment(env: Env) -> None:
    psp = Psp(env)
    charge = await psp.charge("b_12")
    early = await psp.refund(charge["id"], "r_1", 1000)
    assert (early.status_code, early.json()["code"]) == (422, "charge_not_paid")
    await walk_to(env, await pay_at_bank(env, charge))

    first = await psp.refund(charge["id"], "r_1", 1000)
    assert first.status_code == 201
    refund = first.json()
    assert re.fullmatch(r"re_[0-9a-f]{16}", refund.pop("id"))
    assert refund == {
        "code": "r_1",
        "charge_id": charge["id"],
        "amount": 1000,
        "currency": "BRL",
        "status": "succeeded",
        "created_at": "2026-11-26T12:00:00Z",
    }
    repeat = await psp.refund(charge["id"], "r_1", 1000)
    assert (repeat.status_code, repeat.json()) == (200, first.json())
    conflict = await psp.refund(charge["id"], "r_1", 999)
    assert (conflict.status_code, conflict.json()["code"]) == (409, "refund_code_conflict")
    assert (await psp.get(charge["id"])).json()["status"] == "partially_refunded"
    over = await psp.refund(charge["id"], "r_2", 2999)
    assert (over.status_code, over.json()["code"]) == (422, "refund_exceeds_captured")
    rest = await psp.refund(charge["id"], "r_2", 2998)
    assert rest.status_code == 201
    final = (await psp.get(charge["id"])).json()
    assert (final["status"], final["refunded_amount"]) == ("refunded", 3998)
    assert [r["code"] for r in final["refunds"]] == ["r_1", "r_2"]
    assert [(m.kind, m.amount, m.reference) for m in env.sandbox.ledger("b_12")] == [
        ("capture", 3998, charge["id"]),
        ("refund", 1000, "r_1"),
        ("refund", 2998, "r_2"),
    ]
    [listed] = env.sandbox.trades("b_12")
    assert (listed.status, listed.captured, listed.refunded) == ("refunded", 3998, 3998)


async def test_trades_list_and_statement_follow_sao_paulo_days(env: Env) -> None:
    psp = Psp(env)
    charge = await psp.charge("b_13")
    confirm_at = await pay_at_bank(env, charge)
    await walk_to(env, local("2026-11-26T22:30:00"))  # already 01:30 on the 27th in UTC
    assert (await psp.refund(charge["id"], "r_13", 500)).status_code == 201

    listed = (await env.http.get(f"{env.url}/trades", params={"out_trade_no": "b_13"})).json()
    assert listed == {
        "trades": [
            {
                "channel": "boleto",
                "out_trade_no": "b_13",
                "trade_no": charge["id"],
                "status": "partially_refunded",
                "amount": 3998,
                "currency": "BRL",
                "subject": "Tea",
                "created_at": START.isoformat(),
                "paid_at": confirm_at.isoformat(),
                "closed_at": None,
                "captured": 3998,
                "refunded": 500,
            }
        ]
    }
    statement = await env.http.get(f"{env.url}/boleto/statements/2026-11-26")
    assert statement.status_code == 200
    assert statement.text.splitlines() == [
        "at,channel,out_trade_no,trade_no,kind,amount,currency,reference",
        f"2026-11-26 09:00:00,boleto,b_13,{charge['id']},capture,3998,BRL,{charge['id']}",
        f"2026-11-26 22:30:00,boleto,b_13,{charge['id']},refund,500,BRL,r_13",
    ]
    next_day = await env.http.get(f"{env.url}/boleto/statements/2026-11-27")
    assert next_day.text.splitlines()[1:] == []


async def test_a_create_that_errs_does_nothing(env: Env) -> None:
    psp = Psp(env)
    env.sandbox.set_faults(FaultSettings(channels={"boleto": {"create_error_rate": 1.0}}))
    failed = await psp.create("b_14")
    assert failed.status_code == 500
    assert failed.json() == {
        "message": "An internal error occurred. Try again later.",
        "code": "internal_error",
    }
    env.sandbox.set_faults(FaultSettings())
    assert (await psp.by_code("b_14")).json()["data"] == []
    assert (await psp.create("b_14")).status_code == 201


async def test_a_create_that_times_out_issued_the_voucher(env: Env) -> None:
    psp = Psp(env)
    env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=1.0))
    with pytest.raises(httpx.ReadTimeout):
        await env.http.post(
            f"{psp.base}/charges",
            json={"code": "b_15", "amount": 3998, "due_date": "2026-11-24"},
            auth=psp.auth,
            timeout=0.2,
        )
    env.sandbox.set_faults(FaultSettings())
    [listed] = (await psp.by_code("b_15")).json()["data"]
    retried = await psp.create("b_15", due="2026-11-24")
    assert (retried.status_code, retried.json()["id"]) == (200, listed["id"])
    assert next((c.code, c.held) for c in env.sandbox.calls("b_15")) == ("201", True)


async def test_query_and_refund_faults(env: Env) -> None:
    psp = Psp(env)
    charge = await psp.charge("b_16")
    await walk_to(env, await pay_at_bank(env, charge))
    env.sandbox.set_faults(FaultSettings(query_error_rate=1.0, refund_error_rate=1.0))
    assert (await psp.get(charge["id"])).status_code == 500
    assert (await psp.refund(charge["id"], "r_16", 3998)).status_code == 500
    assert [m.kind for m in env.sandbox.ledger("b_16")] == ["capture"]
    env.sandbox.set_faults(FaultSettings(refund_timeout_rate=1.0, timeout_hold_s=1.0))
    with pytest.raises(httpx.ReadTimeout):
        await env.http.post(
            f"{psp.base}/charges/{charge['id']}/refunds",
            json={"code": "r_16", "amount": 3998},
            auth=psp.auth,
            timeout=0.2,
        )
    env.sandbox.set_faults(FaultSettings())
    assert (await psp.refund(charge["id"], "r_16", 3998)).status_code == 200
    assert [m.kind for m in env.sandbox.ledger("b_16")] == ["capture", "refund"]
    assert boleto_channel(env).confirmation_at("b_16") is not None


async def test_the_wallet_page_shows_the_boleto_in_reais(env: Env) -> None:
    charge = await Psp(env).charge("b_17", due="2026-11-28")
    page = await env.http.get(f"{env.url}/wallet", params={"code": charge["boleto"]["barcode"]})
    assert page.status_code == 200
    assert "R$ 39.98" in page.text
    assert "Due 2026-11-28; payable through 2026-11-30." in page.text
    assert charge["boleto"]["digitable_line"] in page.text  # what its Pay button sends
