"""Helpers for the boleto sandbox tests: the merchant's API client and a webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sandbox_harness import Env

from payonce.domain.bank_days import SAO_PAULO
from payonce.sandbox.boleto import BoletoChannel


class Psp:
    """The merchant's side of the boleto PSP's API, as raw HTTP (no adapter in between).

    Vouchers are due today (São Paulo) unless told otherwise; the sandbox tests start at
    02:00 UTC, which is 23:00 on Monday 2026-11-23 there.
    """

    def __init__(self, env: Env, *, api_key: str | None = None) -> None:
        self.env = env
        self.base = f"{env.url}/boleto/v1"
        self.auth = httpx.BasicAuth(api_key or env.keys.boleto.api_key, "")

    async def create(
        self,
        code: str,
        amount: int = 3998,
        *,
        due: str | None = None,
        notify: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "code": code,
            "amount": amount,
            "currency": "BRL",
            "payment_method": "boleto",
            "due_date": due or self.env.clock.now().astimezone(SAO_PAULO).date().isoformat(),
            "description": "Tea",
            **extra,
        }
        if notify is not None:
            body["notification_url"] = notify
        return await self.env.http.post(f"{self.base}/charges", json=body, auth=self.auth)

    async def charge(self, code: str, amount: int = 3998, **options: Any) -> dict[str, Any]:
        response = await self.create(code, amount, **options)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def get(self, charge_id: str) -> httpx.Response:
        return await self.env.http.get(f"{self.base}/charges/{charge_id}", auth=self.auth)

    async def by_code(self, code: str) -> httpx.Response:
        return await self.env.http.get(
            f"{self.base}/charges", params={"code": code}, auth=self.auth
        )

    async def cancel(self, charge_id: str) -> httpx.Response:
        return await self.env.http.post(f"{self.base}/charges/{charge_id}/cancel", auth=self.auth)

    async def refund(self, charge_id: str, code: str, amount: int) -> httpx.Response:
        return await self.env.http.post(
            f"{self.base}/charges/{charge_id}/refunds",
            json={"code": code, "amount": amount},
            auth=self.auth,
        )


def boleto_channel(env: Env) -> BoletoChannel:
    channel = env.sandbox.channel("boleto")
    assert isinstance(channel, BoletoChannel)
    return channel


async def pay_at_bank(env: Env, charge: dict[str, Any]) -> datetime:
    """The shopper pays the voucher; answers when the clearing will confirm it."""
    paid = await env.wallet("pay", charge["boleto"]["digitable_line"])
    assert paid.status_code == 200, paid.text
    confirm_at = boleto_channel(env).confirmation_at(charge["code"])
    assert confirm_at is not None
    return confirm_at


async def walk_to(env: Env, moment: datetime) -> None:
    """Move the clock to ``moment`` (never back) and run what became due."""
    env.clock.advance(max(moment - env.clock.now(), timedelta(0)))
    await env.sandbox.deliver_due()


def verify(secret: str, header: str, body: bytes) -> tuple[int, bool]:
    """An independent check of ``t=<unix>,v1=<hex>`` (the merchant's reading of the scheme)."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    message = parts["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return int(parts["t"]), hmac.compare_digest(expected, parts["v1"])


@dataclass
class HookReceiver:
    """A merchant's webhook endpoint: keeps what arrives, checks it, answers as told."""

    url: str
    secret: str
    answers: list[int] = field(default_factory=list)
    default: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)


def hook_receiver_app(current: Any) -> FastAPI:
    app = FastAPI()

    @app.post("/hooks")
    async def hooks(request: Request) -> JSONResponse:
        state: HookReceiver = current()
        body = await request.body()
        headers = dict(request.headers)
        state.received.append((headers, body))
        header = headers.get("x-boleto-signature", "")
        state.verified.append(bool(header) and verify(state.secret, header, body)[1])
        status = state.answers.pop(0) if state.answers else state.default
        return JSONResponse({"ok": 200 <= status < 300}, status_code=status)

    return app
