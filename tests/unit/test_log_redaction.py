"""An order's client secret never reaches the server's logs, whichever way uvicorn words it."""

from __future__ import annotations

import logging

from payonce.entrypoints.log_redaction import SecretRedaction

SECRET = "ord_abc_secret_MRSkdPidG8k79bW909O3TACtgWQNkYZc"


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)


def test_a_websockets_address_loses_its_secret_and_keeps_the_rest() -> None:
    record = _record(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:5000",
        f"/api/orders/ord_abc/events?client_secret={SECRET}&x=1",
    )
    assert SecretRedaction().filter(record) is True
    assert record.getMessage() == (
        '127.0.0.1:5000 - "WebSocket /api/orders/ord_abc/events?client_secret=[redacted]&x=1"'
        " [accepted]"
    )


def test_a_secret_in_the_message_itself_is_redacted_too() -> None:
    record = _record(f'"GET /api/orders/ord_abc?client_secret={SECRET} HTTP/1.1" 200')
    SecretRedaction().filter(record)
    assert SECRET not in record.getMessage()
    assert "client_secret=[redacted] HTTP/1.1" in record.getMessage()
