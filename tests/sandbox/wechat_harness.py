"""WeChat Pay test helpers: the real SDK pointed at the sandbox, raw signed calls, a receiver.

The SDK (wechatpayv3, public-key mode) is how a merchant talks to WeChat; raw calls are for what
the SDK would never send (a bad signature, another merchant's serial) and for reading answers'
headers; the receiver is a merchant's notify endpoint that verifies with the SDK's callback().
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from sandbox_harness import Env
from wechatpayv3 import WeChatPay, WeChatPayType

from payonce.sandbox.signing import load_private_key, load_public_key, sign_rsa2, verify_rsa2
from payonce.sandbox.wechat_credentials import WechatCredentials

SCHEME = "WECHATPAY2-SHA256-RSA2048"


def wechat_sdk(
    credentials: WechatCredentials,
    gateway: str,
    *,
    timeout: float = 15.0,
    notify_url: str | None = "http://127.0.0.1:9/notify",
) -> WeChatPay:
    """The unmodified SDK, configured as a merchant does, pointed at the sandbox's gateway."""
    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=credentials.mchid,
        private_key=credentials.merchant_private_key_pem,
        cert_serial_no=credentials.merchant_serial_no,
        appid=credentials.appid,
        apiv3_key=credentials.apiv3_key,
        notify_url=notify_url,
        timeout=timeout,
        public_key=credentials.platform_public_key_pem,
        public_key_id=credentials.platform_public_key_id,
    )
    sdk._core._gate_way = gateway
    return sdk


def authorization(
    credentials: WechatCredentials,
    method: str,
    target: str,
    body: bytes,
    *,
    private_key_pem: str | None = None,
    serial_no: str | None = None,
    mchid: str | None = None,
) -> str:
    """The ``Authorization`` header a merchant signs, with any part swapped for a test."""
    key = load_private_key(private_key_pem or credentials.merchant_private_key_pem)
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
    message = f"{method}\n{target}\n{timestamp}\n{nonce}\n{body.decode()}\n"
    return (
        f'{SCHEME} mchid="{mchid or credentials.mchid}",nonce_str="{nonce}",'
        f'signature="{sign_rsa2(key, message)}",timestamp="{timestamp}",'
        f'serial_no="{serial_no or credentials.merchant_serial_no}"'
    )


def answer_verifies(credentials: WechatCredentials, response: httpx.Response) -> bool:
    """Whether an answer carries the platform's valid signature over its exact bytes."""
    headers = response.headers
    message = (
        f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n"
        f"{response.content.decode()}\n"
    )
    return (
        headers["Wechatpay-Serial"] == credentials.platform_public_key_id
        and headers["Wechatpay-Signature-Type"] == SCHEME
        and verify_rsa2(
            load_public_key(credentials.platform_public_key_pem),
            message,
            headers["Wechatpay-Signature"],
        )
    )


@dataclass
class WechatEnv:
    """A sandbox on stage, seen by a WeChat Pay merchant."""

    env: Env
    credentials: WechatCredentials

    @property
    def gateway(self) -> str:
        return f"{self.env.url}/wechat"

    def sdk(self, *, timeout: float = 15.0, notify_url: str | None = None) -> WeChatPay:
        return wechat_sdk(
            self.credentials,
            self.gateway,
            timeout=timeout,
            notify_url=notify_url or "http://127.0.0.1:9/notify",
        )

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, Any]:
        """One SDK call, off the event loop that serves the sandbox: (status, parsed answer)."""
        status, text = await asyncio.to_thread(fn, *args, **kwargs)
        return status, (json.loads(text) if text else None)

    async def raw(
        self, method: str, target: str, body: dict[str, Any] | None = None, **signing: Any
    ) -> httpx.Response:
        """A call signed here (not by the SDK), so a test can break any part of it."""
        content = json.dumps(body).encode() if body is not None else b""
        headers = {
            "Authorization": authorization(self.credentials, method, target, content, **signing),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        return await self.env.http.request(
            method, f"{self.gateway}{target}", content=content, headers=headers
        )

    async def native(
        self, out_trade_no: str, total: int = 3998, *, notify_url: str | None = None, **extra: Any
    ) -> str:
        """A native order; answers its code_url."""
        status, answer = await self.call(
            self.sdk(notify_url=notify_url).pay,
            description="Tea",
            out_trade_no=out_trade_no,
            amount={"total": total, "currency": "CNY"},
            **extra,
        )
        assert status == 200, answer
        code_url: str = answer["code_url"]
        return code_url

    async def paid(self, out_trade_no: str, total: int = 3998, **extra: Any) -> str:
        """A native order the shopper paid; answers its transaction_id."""
        code_url = await self.native(out_trade_no, total, **extra)
        response = await self.env.wallet("pay", code_url)
        assert response.status_code == 200, response.text
        trade_no: str = response.json()["trade_no"]
        return trade_no


@dataclass
class WechatReceiver:
    """A merchant's notify endpoint: verifies and decrypts with the SDK, answers as told."""

    url: str
    answers: list[int] = field(default_factory=list)
    default: int = 200
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    # What the SDK's callback() made of each: the notification with its resource decrypted.
    verified: list[dict[str, Any] | None] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def wechat_receiver_app(
    credentials: WechatCredentials, current: Callable[[], WechatReceiver]
) -> FastAPI:
    verifier = wechat_sdk(credentials, "http://unused.invalid")
    app = FastAPI()

    @app.post("/wechat/notify")
    async def notify(request: Request) -> Response:
        state = current()
        body = await request.body()
        headers = dict(request.headers)  # lower-case names, as a FastAPI merchant sees them
        state.headers.append(headers)
        state.bodies.append(body)
        state.verified.append(verifier.callback(headers, body))
        status = state.answers.pop(0) if state.answers else state.default
        state.arrived.set()
        if 200 <= status < 300:
            return Response(status_code=status)
        return Response(b'{"code":"FAIL","message":"try again"}', status_code=status)

    return app
