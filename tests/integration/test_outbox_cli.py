"""``payonce outbox``: list, show and replay events in the database the settings name."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from payonce.domain.events import Event, Topic
from payonce.domain.order import OrderLine
from payonce.entrypoints.cli import app
from tests.builders import a_paid_payment, an_order
from tests.conftest import START, sqlite_storage

LATER = START + timedelta(seconds=30)


def _event(topic: Topic, occurred_at: datetime) -> Event:
    order = an_order(now=START, customer_id="c", lines=(OrderLine("S", "Tea", 2, 1999),))
    payment = a_paid_payment(order, now=START)
    return Event.about(topic, payment, occurred_at)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def events(data_dir: Path) -> tuple[Event, Event]:
    """A delivered payment.succeeded, and an extra capture the order service keeps refusing."""
    delivered = _event(Topic.PAYMENT_SUCCEEDED, START)
    failing = _event(Topic.PAYMENT_EXTRA_CAPTURED, START + timedelta(seconds=1))

    async def write() -> None:
        storage = await sqlite_storage(data_dir / "payonce.db")  # migrated, as serve does
        async with storage.transaction() as uow:
            for event in (delivered, failing):
                await uow.outbox.add(event, now=event.occurred_at)
            await uow.outbox.record_consumers(
                delivered.id, {"orders": None, "order_webhook": None}, now=START
            )
            await uow.outbox.mark_delivered(delivered.id, now=START)
            await uow.outbox.record_consumers(
                failing.id, {"order_webhook": "OrderServiceUnavailable: answered 503"}, now=LATER
            )
            await uow.outbox.mark_failed(
                failing.id,
                next_attempt_at=LATER + timedelta(seconds=1),
                error="order_webhook: OrderServiceUnavailable: answered 503",
            )
        await storage.close()

    data_dir.mkdir()
    asyncio.run(write())
    return delivered, failing


def _run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["outbox", *args], env={"PAYONCE_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    )


def _json(data_dir: Path, *args: str) -> Any:
    result = _run(data_dir, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_shows_what_is_undelivered_and_all_on_request(
    data_dir: Path, events: tuple[Event, Event]
) -> None:
    delivered, failing = events
    table = _run(data_dir, "list")
    assert table.exit_code == 0, table.output
    assert failing.id in table.output
    assert "answered 503" in table.output
    assert delivered.id not in table.output

    assert _json(data_dir, "list") == [
        {
            "event_id": failing.id,
            "topic": "payment.extra_captured",
            "order_id": failing.order_id,
            "payment_id": failing.payment_id,
            "occurred_at": failing.occurred_at.isoformat(),
            "attempts": 1,
            "next_attempt_at": (LATER + timedelta(seconds=1)).isoformat(),
            "delivered_at": None,
            "last_error": "order_webhook: OrderServiceUnavailable: answered 503",
            "consumers": [
                {
                    "consumer": "order_webhook",
                    "attempts": 1,
                    "last_attempt_at": LATER.isoformat(),
                    "delivered_at": None,
                    "last_error": "OrderServiceUnavailable: answered 503",
                }
            ],
        }
    ]
    everything = _json(data_dir, "list", "--all")
    assert [e["event_id"] for e in everything] == [failing.id, delivered.id]  # newest first
    assert everything[1]["delivered_at"] == START.isoformat()
    assert everything[1]["next_attempt_at"] is None
    assert [
        e["event_id"] for e in _json(data_dir, "list", "--all", "--order", delivered.order_id)
    ] == [delivered.id]
    assert [
        e["event_id"] for e in _json(data_dir, "list", "--all", "--topic", "payment.succeeded")
    ] == [delivered.id]
    assert _json(data_dir, "list", "--order", delivered.order_id) == []
    assert "nothing undelivered" in _run(data_dir, "list", "--topic", "payment.succeeded").output
    assert _run(data_dir, "list", "--topic", "payment.nope").exit_code == 2


def test_show_tells_one_events_whole_story(data_dir: Path, events: tuple[Event, Event]) -> None:
    delivered, failing = events
    shown = _json(data_dir, "show", delivered.id)
    assert shown["payload"] == delivered.payload
    assert shown["delivered_at"] == START.isoformat()
    assert [(c["consumer"], c["attempts"], c["delivered_at"]) for c in shown["consumers"]] == [
        ("order_webhook", 1, START.isoformat()),
        ("orders", 1, START.isoformat()),
    ]
    table = _run(data_dir, "show", failing.id)
    assert table.exit_code == 0, table.output
    for fact in (failing.id, "not yet", "next attempt", "answered 503", failing.payment_id):
        assert fact in table.output
    missing = _run(data_dir, "show", "evt_missing")
    assert missing.exit_code == 1
    assert "no event evt_missing" in missing.output


def test_replay_makes_an_event_due_now_for_every_consumer_or_one(
    data_dir: Path, events: tuple[Event, Event]
) -> None:
    delivered, _ = events
    before = datetime.now(UTC)
    assert _json(data_dir, "replay", delivered.id, "--consumer", "order_webhook") == {
        "event_id": delivered.id,
        "replayed": True,
        "consumer": "order_webhook",
    }
    shown = _json(data_dir, "show", delivered.id)
    assert shown["delivered_at"] is None
    assert shown["attempts"] == 0
    assert before <= datetime.fromisoformat(shown["next_attempt_at"]) <= datetime.now(UTC)
    acknowledged = {c["consumer"]: c["delivered_at"] for c in shown["consumers"]}
    assert acknowledged == {"order_webhook": None, "orders": START.isoformat()}
    assert delivered.id in _run(data_dir, "list").output

    again = _run(data_dir, "replay", delivered.id)
    assert again.exit_code == 0, again.output
    assert "due again for every consumer" in again.output
    shown = _json(data_dir, "show", delivered.id)
    assert [c["delivered_at"] for c in shown["consumers"]] == [None, None]

    missing = _run(data_dir, "replay", "evt_missing")
    assert missing.exit_code == 1
    assert "no event evt_missing" in missing.output


def test_without_a_database_it_says_so_and_creates_none(tmp_path: Path) -> None:
    result = _run(tmp_path / "nowhere", "list")
    assert result.exit_code == 1
    assert "no database at" in result.output
    assert not (tmp_path / "nowhere").exists()
