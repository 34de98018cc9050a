"""Statements are believed only as the channel vouches for them.

Alipay signs the answer that carries the bill's download URL, and signs the URL itself (a token,
valid 30 s); WeChat Pay signs its apply answer, which carries the hash of the file, and wants
the download signed by the merchant. A man in the middle who changes either answer, strips its
signature or changes the file is refused: the statement is unavailable, never wrong. PayPal and
the boleto PSP do not sign answers; their statement calls are authenticated like all others.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, time, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio
from provider_kits import KITS, KitEnv
from sandbox_harness import Stage, merchant_sdk, sandbox_on_stage
from statement_harness import Tamper, after, local, pay, walk_to
from wechat_harness import wechat_sdk

from payonce.adapters.clock import AdjustableClock
from payonce.errors import ProviderUnavailable
from payonce.sandbox import SandboxKeys

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY = date(2026, 11, 25)
ALIPAY, WECHAT = KITS["alipay"], KITS["wechat"]
BILL_QUERY = "alipay.data.dataservice.bill.downloadurl.query"


@pytest_asyncio.fixture(loop_scope="session")
async def kit_env(stage: Stage, keys: SandboxKeys, clock: AdjustableClock) -> AsyncIterator[KitEnv]:
    async with sandbox_on_stage(stage, keys, clock) as env:
        yield KitEnv(sandbox=env.sandbox, url=env.url, clock=clock, keys=keys, http=env.http)


@pytest_asyncio.fixture(loop_scope="session")
async def billed(kit_env: KitEnv) -> KitEnv:
    """A day (China time) with a paid Alipay trade and a paid WeChat trade, now over."""
    await walk_to(kit_env, local(ALIPAY, DAY, time(10, 0)))
    for kit in (ALIPAY, WECHAT):
        await pay(kit, kit_env, kit_env.provider(kit.channel))
    await after(kit_env, ALIPAY, DAY)
    for kit in (ALIPAY, WECHAT):
        assert len(await kit_env.provider(kit.channel).statement(DAY)) == 1
    return kit_env


def _tamper(
    stage: Stage, *, path: str, change: Callable[[bytes], bytes], query: str = ""
) -> Tamper:
    """Put a man in the middle of this test's sandbox (its teardown takes the app off stage)."""
    assert stage.switch.app is not None
    tamper = Tamper(stage.switch.app, path=path, change=change, query=query)
    stage.switch.app = tamper
    return tamper


# -- Alipay --------------------------------------------------------------------------------


async def test_alipay_a_changed_answer_is_refused(billed: KitEnv, stage: Stage) -> None:
    tamper = _tamper(
        stage,
        path="/alipay/gateway.do",
        query="bill.downloadurl",
        change=lambda body: body.replace(b"bizDates=20261125", b"bizDates=20261124"),
    )
    with pytest.raises(ProviderUnavailable, match="AliPayValidationError"):
        await billed.provider(ALIPAY.channel).statement(DAY)
    assert tamper.hits == 1


async def test_alipay_an_unsigned_answer_is_refused(billed: KitEnv, stage: Stage) -> None:
    _tamper(
        stage,
        path="/alipay/gateway.do",
        query="bill.downloadurl",
        change=lambda body: re.sub(rb',"sign":"[^"]*"', b"", body),
    )
    with pytest.raises(ProviderUnavailable):
        await billed.provider(ALIPAY.channel).statement(DAY)


async def test_alipay_the_download_url_is_signed_and_short_lived(billed: KitEnv) -> None:
    sdk = merchant_sdk(billed.keys.alipay, f"{billed.url}/alipay/gateway.do")
    answer = await asyncio.to_thread(
        sdk.server_api, BILL_QUERY, biz_content={"bill_type": "trade", "bill_date": "2026-11-25"}
    )
    url = answer["bill_download_url"]
    assert (await billed.http.get(url)).status_code == 200
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    other_day = {**params, "bizDates": "20261124"}
    forged = await billed.http.get(f"{url.split('?')[0]}?{urlencode(other_day)}")
    assert (forged.status_code, forged.text) == (403, "invalid token")
    await billed.sandbox.advance_clock(30)
    expired = await billed.http.get(url)
    assert (expired.status_code, expired.text) == (403, "the download URL has expired")


async def test_alipay_a_bill_for_a_day_not_over_is_not_there(kit_env: KitEnv) -> None:
    sdk = merchant_sdk(kit_env.keys.alipay, f"{kit_env.url}/alipay/gateway.do")
    today = kit_env.clock.now().date().isoformat()
    answer = await asyncio.to_thread(
        sdk.server_api, BILL_QUERY, biz_content={"bill_type": "trade", "bill_date": today}
    )
    assert (answer["code"], answer["sub_code"]) == ("40004", "isp.bill_not_exist")
    monthly = await asyncio.to_thread(
        sdk.server_api, BILL_QUERY, biz_content={"bill_type": "trade", "bill_date": "2026-10"}
    )
    assert (monthly["code"], monthly["sub_code"]) == ("40002", "isv.invalid-parameter")


async def test_alipay_a_changed_file_is_refused(billed: KitEnv, stage: Stage) -> None:
    _tamper(stage, path="/alipay/downloadBillFile.resource", change=lambda body: body[:-20])
    with pytest.raises(ProviderUnavailable, match="not a bill zip"):
        await billed.provider(ALIPAY.channel).statement(DAY)


# -- WeChat Pay ----------------------------------------------------------------------------


async def test_wechat_a_changed_answer_is_refused(billed: KitEnv, stage: Stage) -> None:
    tamper = _tamper(
        stage,
        path="/wechat/v3/bill/tradebill",
        change=lambda body: body.replace(b'"hash_type":"SHA1"', b'"hash_type":"SHA1 "'),
    )
    with pytest.raises(ProviderUnavailable, match="failed to verify the signature"):
        await billed.provider(WECHAT.channel).statement(DAY)
    assert tamper.hits == 1


def _cheaper(body: bytes) -> bytes:
    return gzip.compress(gzip.decompress(body).replace(b"`12.34", b"`12.00"))


async def test_wechat_a_changed_file_does_not_match_its_hash(billed: KitEnv, stage: Stage) -> None:
    tamper = _tamper(stage, path="/wechat/v3/billdownload/file", change=_cheaper)
    with pytest.raises(ProviderUnavailable, match="hash"):
        await billed.provider(WECHAT.channel).statement(DAY)
    assert tamper.hits == 1


async def test_wechat_the_download_wants_the_merchants_signature(billed: KitEnv) -> None:
    sdk = wechat_sdk(billed.keys.wechat, f"{billed.url}/wechat")
    status, text = await asyncio.to_thread(sdk.trade_bill, bill_date="2026-11-25")
    assert status == 200
    url = json.loads(text)["download_url"]
    unsigned = await billed.http.get(url)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "SIGN_ERROR")
    status, content = await asyncio.to_thread(sdk.download_bill, url)
    assert status == 200
    assert gzip.decompress(content).startswith("交易时间,".encode())
    await billed.sandbox.advance_clock(30)
    status, text = await asyncio.to_thread(sdk.download_bill, url)
    assert (status, json.loads(text)["code"]) == (400, "INVALID_REQUEST")


async def test_wechat_an_open_day_has_no_bill_yet(kit_env: KitEnv) -> None:
    provider = kit_env.provider(WECHAT.channel)
    with pytest.raises(ProviderUnavailable, match="not over"):
        await provider.statement(kit_env.clock.now().date())
    # The sandbox says so too, to a merchant who asks anyway.
    sdk = wechat_sdk(kit_env.keys.wechat, f"{kit_env.url}/wechat")
    status, text = await asyncio.to_thread(sdk.trade_bill, bill_date="2026-11-24")
    assert (status, '"STATEMENT_CREATING"' in text) == (400, True)


# -- PayPal and boleto: no signed answers, authenticated calls -----------------------------


async def test_paypal_and_boleto_statements_need_the_merchants_credentials(
    kit_env: KitEnv,
) -> None:
    await kit_env.sandbox.advance_clock(2 * 86400)
    report = await kit_env.http.get(
        f"{kit_env.url}/paypal/v1/reporting/transactions",
        params={"start_date": "2026-11-24T00:00:00-0800", "end_date": "2026-11-24T23:59:59-0800"},
    )
    assert (report.status_code, report.json()["name"]) == (401, "AUTHENTICATION_FAILURE")
    statement = await kit_env.http.get(f"{kit_env.url}/boleto/v1/statements/2026-11-24")
    assert (statement.status_code, statement.json()["code"]) == (401, "unauthorized")
    keyed = await kit_env.http.get(
        f"{kit_env.url}/boleto/v1/statements/2026-11-24",
        auth=httpx.BasicAuth(kit_env.keys.boleto.api_key, ""),
    )
    assert keyed.json() == {
        "date": "2026-11-24",
        "timezone": "America/Sao_Paulo",
        "data": [],
        "paging": {"total": 0},
    }
    not_yet = await kit_env.http.get(
        f"{kit_env.url}/boleto/v1/statements/{(kit_env.clock.now() + timedelta(days=1)).date()}",
        auth=httpx.BasicAuth(kit_env.keys.boleto.api_key, ""),
    )
    assert (not_yet.status_code, not_yet.json()["code"]) == (409, "statement_not_ready")
