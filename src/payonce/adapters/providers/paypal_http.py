"""PayPal's REST API on httpx: OAuth tokens on the injected clock, every failure classified."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from payonce.adapters.providers.http_pool import ClientPool
from payonce.errors import ProviderRejected, ProviderRetryable, ProviderUnavailable
from payonce.ports.clock import Clock

log = logging.getLogger(__name__)

# A token is renewed this long before PayPal says it expires.
TOKEN_MARGIN = timedelta(minutes=1)


def parse_paypal_time(text: object) -> datetime:
    """One of PayPal's instants (``2026-11-24T02:00:00Z``, ``…+0000``) as aware UTC."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a time: {text!r}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class PaypalSettings:
    client_id: str
    client_secret: str
    merchant_id: str  # our payee (merchant) id: every order and webhook must name it
    webhook_id: str
    webhook_cert_pem: str  # the certificate PayPal signs webhooks with
    api_base: str = "https://api-m.paypal.com"
    # Where PayPal should post our webhooks. When set, each new token is followed by pointing
    # the webhook there (development: the sandbox learns payonce's address). In production the
    # webhook is configured in PayPal's dashboard and this stays unset.
    webhook_url: str | None = None
    timeout_s: float = 15.0
    # The account's time zone, which its reports (and so its statement days) follow.
    report_zone: str = "America/Los_Angeles"

    def __repr__(self) -> str:
        return f"PaypalSettings(client_id={self.client_id!r}, merchant_id={self.merchant_id!r})"


class PaypalRefusal(ProviderRejected):
    """A 4xx answer in PayPal's error shape: ``name`` and the ``details[].issue`` codes."""

    def __init__(self, what: str, status: int, body: Mapping[str, Any]) -> None:
        details = body.get("details")
        issues = [
            str(detail.get("issue"))
            for detail in (details if isinstance(details, list) else [])
            if isinstance(detail, dict)
        ]
        self.status = status
        self.name = str(body.get("name") or body.get("error") or status)
        self.issues = frozenset(issues)
        code = issues[0] if issues else self.name
        super().__init__(
            f"paypal {what}: {status} {self.name} {' '.join(issues)}".strip(), provider_code=code
        )


@dataclass
class _Token:
    value: str
    expires_at: datetime


class PaypalRest:
    """Calls PayPal's REST API for one app: a bearer token cached until near its expiry."""

    def __init__(self, settings: PaypalSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._pool = ClientPool(
            lambda: httpx.AsyncClient(base_url=settings.api_base, timeout=settings.timeout_s)
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[httpx.AsyncClient]:
        """The pooled client an operation's calls (token, lookup, capture) share."""
        yield self._pool.client()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def send(
        self,
        client: httpx.AsyncClient,
        what: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | list[Any] | None = None,
        request_id: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One REST call, with every failure classified at this edge.

        A 401 means the token was refused before anything was done, so the call is made once
        more with a new token. What certainly did nothing (no connection, a 429, no token) is
        ProviderRetryable; anything that may have been acted upon without a clear answer (a
        time-out, a dropped connection, a 5xx, an answer that is not PayPal's JSON) is
        ProviderUnavailable; a 4xx in PayPal's shape is a PaypalRefusal.
        """
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {await self._access_token(client)}",
                "Prefer": "return=representation",
            }
            if request_id is not None:
                headers["PayPal-Request-Id"] = request_id
            try:
                response = await client.request(
                    method, path, json=body, headers=headers, params=params
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                # No connection was made: nothing reached PayPal.
                raise ProviderRetryable(
                    f"paypal {what}: {type(error).__name__}: {error}"
                ) from error
            except httpx.HTTPError as error:
                raise ProviderUnavailable(
                    f"paypal {what}: {type(error).__name__}: {error}"
                ) from error
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            return self._answer(what, response)
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(what: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status == 429:  # rate limited: refused before any work
            raise ProviderRetryable(f"paypal {what}: HTTP 429 {response.text[:200]!r}")
        if not isinstance(body, dict) or status >= 500:
            raise ProviderUnavailable(f"paypal {what}: HTTP {status} {response.text[:200]!r}")
        if status >= 400:
            raise PaypalRefusal(what, status, body)
        return body

    async def _access_token(self, client: httpx.AsyncClient) -> str:
        """The cached bearer token, or a new one (client credentials) once it is near expiry."""
        token = self._token
        if token is not None and self._clock.now() < token.expires_at - TOKEN_MARGIN:
            return token.value
        async with self._token_lock:
            token = self._token
            now = self._clock.now()
            if token is not None and now < token.expires_at - TOKEN_MARGIN:
                return token.value
            token = await self._new_token(client, now)
            self._token = token
            if self.settings.webhook_url is not None:
                await self._point_webhook(client, token.value, self.settings.webhook_url)
            return token.value

    async def _new_token(self, client: httpx.AsyncClient, now: datetime) -> _Token:
        try:
            response = await client.post(
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.settings.client_id, self.settings.client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as error:
            # Whatever happened, the call the token was for has not been made.
            raise ProviderRetryable(f"paypal token: {type(error).__name__}: {error}") from error
        if response.status_code in (400, 401):
            raise ProviderRejected(
                f"paypal token: {response.status_code} {response.text[:200]}",
                provider_code="invalid_client",
            )
        try:
            body = self._answer("token", response)
        except ProviderUnavailable as error:
            raise ProviderRetryable(str(error)) from error
        value, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(value, str) or not isinstance(lifetime, int) or lifetime <= 0:
            raise ProviderUnavailable(f"paypal token: unexpected answer {sorted(body)}")
        return _Token(value, now + timedelta(seconds=lifetime))

    async def _point_webhook(self, client: httpx.AsyncClient, token: str, url: str) -> None:
        """Point our webhook at ``url``; best effort (queries still find every payment)."""
        try:
            response = await client.patch(
                f"/v1/notifications/webhooks/{self.settings.webhook_id}",
                json=[{"op": "replace", "path": "/url", "value": url}],
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as error:
            log.warning("paypal: could not point the webhook at %s: %s", url, error)
            return
        if response.status_code != 200:
            log.warning("paypal: webhook update answered %s", response.status_code)
