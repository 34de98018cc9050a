"""Log lines are JSON, stamped with their request, order and cause, and carry no secret:
neither in a field named like one, nor inside text (a URL's query, a header, a key, a PEM)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import structlog

from payonce.entrypoints import logs
from payonce.service.provenance import caused_by, working_on

SECRET = "ord_abc_secret_MRSkdPidG8k79bW909O3TACtgWQNkYZc"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_websockets_address_loses_its_secret_and_keeps_the_rest(log_lines: io.StringIO) -> None:
    logging.getLogger("uvicorn.access").info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:5000",
        f"/api/orders/ord_abc/events?client_secret={SECRET}&x=1",
    )
    [record] = _records(log_lines)
    assert record["event"] == (
        '127.0.0.1:5000 - "WebSocket /api/orders/ord_abc/events?client_secret=[redacted]&x=1"'
        " [accepted]"
    )
    assert (record["level"], record["logger"]) == ("info", "uvicorn.access")
    assert record["timestamp"].endswith("Z")


def test_fields_named_like_secrets_and_secrets_in_text_are_redacted(log_lines: io.StringIO) -> None:
    log = structlog.get_logger("payonce.test")
    log.warning(
        "calling with Bearer sk_live_abcdefgh12345678 and whsec_c2VjcmV0c2VjcmV0c2VjcmV0",
        api_key="sk_live_x",
        headers={"Authorization": "Bearer ak_abc", "Accept": "application/json"},
        url="https://openapi.example/bill?token=T0K3N&sign=S1GN&day=2026-11-24",
        detail=PEM,
        order_id="ord_kept",
        amount=3998,
    )
    [record] = _records(log_lines)
    assert record["api_key"] == "[redacted]"
    assert record["headers"] == {"Authorization": "[redacted]", "Accept": "application/json"}
    assert (
        record["url"]
        == "https://openapi.example/bill?token=[redacted]&sign=[redacted]&day=2026-11-24"
    )
    assert record["detail"] == "[redacted private key]"
    assert record["event"] == "calling with Bearer [redacted] and whsec_[redacted]"
    assert (record["order_id"], record["amount"]) == ("ord_kept", 3998)


def test_records_carry_their_request_order_and_cause(log_lines: io.StringIO) -> None:
    with logs.bound(request_id="req_1", order_id="ord_2", payment_id=None), caused_by("job poll"):
        logging.getLogger("payonce.service.polling").error("poll failed: %s", "timeout")
    logging.getLogger("payonce.service.polling").error("outside")
    inside, outside = _records(log_lines)
    assert {k: inside[k] for k in ("request_id", "order_id", "cause", "event")} == {
        "request_id": "req_1",
        "order_id": "ord_2",
        "cause": "job poll",
        "event": "poll failed: timeout",
    }
    assert "payment_id" not in inside
    assert "request_id" not in outside
    assert "cause" not in outside


def test_an_exceptions_text_is_redacted_too(log_lines: io.StringIO) -> None:
    try:
        raise ValueError(f"cannot load {PEM} for {SECRET}")
    except ValueError:
        logging.getLogger("payonce").exception("provider set-up failed")
    [record] = _records(log_lines)
    assert "PRIVATE KEY-----\nMII" not in record["exception"]
    assert SECRET not in record["exception"]
    assert "[redacted private key]" in record["exception"]


def test_libraries_that_log_secrets_are_kept_quieter(log_lines: io.StringIO) -> None:
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpx").info("HTTP Request: GET https://x.example/?token=abc")
    assert _records(log_lines) == []


def test_background_work_names_its_order_and_payment(log_lines: io.StringIO) -> None:
    with caused_by("job poll"), working_on("ord_9", "pay_9"):
        logging.getLogger("payonce.service.polling").warning("provider slow")
    with logs.bound(order_id="ord_from_path"), working_on("ord_9"):
        logging.getLogger("payonce").warning("inside a request")
    job, request = _records(log_lines)
    assert (job["cause"], job["order_id"], job["payment_id"]) == ("job poll", "ord_9", "pay_9")
    assert request["order_id"] == "ord_from_path"  # what the request named stands
