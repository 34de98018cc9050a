"""Idempotency-Key: the first request with a key runs; repeats get its stored response verbatim.

Rules (IETF httpapi idempotency-key draft): same key + same request -> the stored response; same
key + a different request -> 422; same key while the first is still running -> 409. A request
that ends in a retryable error gives its key back so the caller can retry with it. A request
holds its key by a lease; one that outlives the lease (its key was taken over by a retry) can
neither store its response nor give the key back. Storing the response and giving the key back
are retried a few times when storage fails for a moment (a dropped connection): otherwise the
key would stay "running" for the whole lease, answering 409 to every retry of a dead request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from payonce.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidRequest,
    StorageUnavailable,
)
from payonce.ports.storage import IdempotencyRecord, IdempotencyState
from payonce.service.context import Deps

MAX_KEY_LENGTH = 255
# Real-time pauses before retrying a bookkeeping write that storage failed.
_BOOKKEEPING_PAUSES_S = (0.05, 0.2, 0.5)

T = TypeVar("T")

# The key a request holds while it runs.
Claim = IdempotencyRecord


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    media_type: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the JSON body's content."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
        content = canonical.encode()
    except ValueError:
        content = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), content):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def begin(
    deps: Deps, scope: str, key: str, request_fingerprint: str
) -> Claim | StoredResponse:
    """Claim ``key`` for this request, or return the stored response to replay."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters")
    policy = deps.policy
    for _ in range(policy.conflict_retries):
        async with deps.storage.transaction() as uow:
            now = deps.clock.now()
            claim = IdempotencyRecord(
                caller=scope,
                key=key,
                fingerprint=request_fingerprint,
                state=IdempotencyState.IN_FLIGHT,
                locked_until=now + policy.idempotency_lease,
                expires_at=now + policy.idempotency_retention,
            )
            existing = await uow.idempotency.get(scope, key)
            if existing is not None and existing.expires_at <= now:
                await uow.idempotency.delete(scope, key)
                existing = None
            if existing is None:
                if await uow.idempotency.insert(claim):
                    return claim
                continue  # another request inserted it first: look again
            if existing.fingerprint != request_fingerprint:
                raise IdempotencyKeyReused()
            if existing.state is IdempotencyState.DONE:
                assert existing.response_status is not None
                assert existing.response_body is not None
                return StoredResponse(
                    existing.response_status,
                    existing.response_body,
                    existing.response_type or "application/json",
                )
            if existing.locked_until > now:
                raise IdempotencyKeyInFlight()
            # Its request died without finishing: this one takes the key over.
            if await uow.idempotency.take_over(claim, expected_locked_until=existing.locked_until):
                return claim
    raise IdempotencyKeyInFlight()


async def _bookkeeping(write: Callable[[], Awaitable[T]]) -> T:
    """Run a write that is safe to repeat (it is conditional on the claim), through blips."""
    for pause in _BOOKKEEPING_PAUSES_S:
        try:
            return await write()
        except StorageUnavailable:
            await asyncio.sleep(pause)
    return await write()


async def finish(deps: Deps, claim: Claim, response: StoredResponse) -> bool:
    """Store the response for replay; False when the key was taken over meanwhile."""

    async def complete() -> bool:
        async with deps.storage.transaction() as uow:
            return await uow.idempotency.complete(
                claim, status=response.status, body=response.body, media_type=response.media_type
            )

    return await _bookkeeping(complete)


async def release(deps: Deps, claim: Claim) -> None:
    async def give_back() -> None:
        async with deps.storage.transaction() as uow:
            await uow.idempotency.release(claim)

    await _bookkeeping(give_back)
