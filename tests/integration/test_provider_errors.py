"""What the Alipay adapter makes of a provider answering badly: unknown or refused, never a 500."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from payonce.adapters.providers.alipay import AlipayProvider
from payonce.domain.channels import Channel
from tests.integration.conftest import Live


def _provider(live: Live, **changes: Any) -> AlipayProvider:
    metered: Any = live.container.deps.providers[Channel.ALIPAY]
    current: AlipayProvider = metered.inner  # the adapter itself, under its metering
    return AlipayProvider(replace(current.settings, **changes), live.clock)


def _use(live: Live, provider: AlipayProvider) -> None:
    providers: Any = live.container.deps.providers
    providers[Channel.ALIPAY] = provider


async def test_an_answer_that_is_not_alipays_is_an_unknown_outcome(live: Live) -> None:
    # JSON with neither a signature nor a response object: the SDK trips over it.
    _use(live, _provider(live, gateway_url=f"{live.url}/livez"))
    order = await live.create_order()
    response = await live.apply(order)
    assert response.status_code == 409
    assert response.json()["code"] == "payment_outcome_unknown"
    assert [p["status"] for p in await live.payments(order)] == ["UNKNOWN"]


async def test_a_refusal_by_the_gateway_fails_the_trade_instead_of_leaving_it_unknown(
    live: Live,
) -> None:
    # An app id the provider does not know: Alipay refuses it, unsigned, with code 40002.
    _use(live, _provider(live, app_id="2021000000000000"))
    order = await live.create_order()
    response = await live.apply(order)
    assert response.status_code == 502
    assert response.json()["code"] == "provider_rejected"
    assert "Retry-After" not in response.headers
    assert [p["status"] for p in await live.payments(order)] == ["FAILED"]
    again = await live.apply(order)  # a failed trade blocks nothing: it is not live
    assert again.json()["code"] == "provider_rejected"
    assert [p["status"] for p in await live.payments(order)] == ["FAILED", "FAILED"]


async def test_a_cancel_the_provider_cannot_answer_is_unknown_not_a_crash(live: Live) -> None:
    order = await live.create_order()
    payment = (await live.apply(order)).json()
    _use(live, _provider(live, gateway_url=f"{live.url}/livez"))
    response = await live.http.post(
        f"/api/payments/{payment['id']}/cancel",
        headers={"Authorization": f"Bearer {order['client_secret']}"},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "payment_outcome_unknown"
    assert [p["status"] for p in await live.payments(order)] == ["CLOSING"]
