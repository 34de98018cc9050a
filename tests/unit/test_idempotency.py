"""Idempotency keys on every storage backend: one run per key, and a run never undoes another's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.unlocked import NoLocks
from payonce.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from payonce.ports.storage import Storage
from payonce.service import idempotency as idem
from payonce.service.context import Deps

BODY = b'{"channel":"alipay","platform":"pc"}'


@pytest.fixture
def deps(storage: Storage, clock: AdjustableClock) -> Deps:
    return Deps(
        storage=storage,
        clock=clock,
        locks=NoLocks(),
        cache=InProcessCache(clock),
        feed=InProcessFeed(),
        providers={},
    )


def _fp(body: bytes = BODY) -> str:
    return idem.fingerprint("POST", "/api/orders/ord_x/payments", body)


async def test_the_first_request_runs_and_repeats_replay_it(deps: Deps) -> None:
    claim = await idem.begin(deps, "backend", "k1", _fp())
    assert isinstance(claim, idem.Claim)
    with pytest.raises(IdempotencyKeyInFlight):
        await idem.begin(deps, "backend", "k1", _fp())
    with pytest.raises(IdempotencyKeyReused):
        await idem.begin(deps, "backend", "k1", _fp(b'{"channel":"alipay","platform":"wap"}'))
    assert await idem.finish(deps, claim, idem.StoredResponse(201, b'{"id":1}', "application/json"))
    replay = await idem.begin(deps, "backend", "k1", _fp(b'{"platform":"pc","channel":"alipay"}'))
    assert replay == idem.StoredResponse(201, b'{"id":1}', "application/json")
    other_caller = await idem.begin(deps, "order:ord_x", "k1", _fp())
    assert isinstance(other_caller, idem.Claim)  # keys are scoped by caller


async def test_a_request_that_lost_its_key_can_neither_overwrite_nor_free_it(
    deps: Deps, clock: AdjustableClock
) -> None:
    slow = await idem.begin(deps, "backend", "k1", _fp())
    assert isinstance(slow, idem.Claim)
    clock.advance(deps.policy.idempotency_lease + timedelta(seconds=1))  # its request died, or so
    retry = await idem.begin(deps, "backend", "k1", _fp())  # it seems: a retry takes the key
    assert isinstance(retry, idem.Claim)
    assert await idem.finish(deps, retry, idem.StoredResponse(201, b'{"id":2}', "application/json"))
    # The slow request ends after all: it must not replace, nor delete, the stored answer.
    assert not await idem.finish(
        deps, slow, idem.StoredResponse(201, b'{"id":1}', "application/json")
    )
    await idem.release(deps, slow)
    replay = await idem.begin(deps, "backend", "k1", _fp())
    assert replay == idem.StoredResponse(201, b'{"id":2}', "application/json")


async def test_a_released_key_can_be_used_again(deps: Deps) -> None:
    claim = await idem.begin(deps, "backend", "k1", _fp())
    assert isinstance(claim, idem.Claim)
    await idem.release(deps, claim)  # a retryable failure gives the key back
    assert isinstance(await idem.begin(deps, "backend", "k1", _fp()), idem.Claim)


async def test_keys_are_kept_a_day_then_forgotten(deps: Deps, clock: AdjustableClock) -> None:
    claim = await idem.begin(deps, "backend", "k1", _fp())
    assert isinstance(claim, idem.Claim)
    await idem.finish(deps, claim, idem.StoredResponse(200, b"{}", "application/json"))
    clock.advance(timedelta(hours=23))
    assert isinstance(await idem.begin(deps, "backend", "k1", _fp()), idem.StoredResponse)
    clock.advance(timedelta(hours=2))
    assert isinstance(await idem.begin(deps, "backend", "k1", _fp(b"{}")), idem.Claim)
