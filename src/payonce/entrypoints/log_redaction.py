"""Keeps order client secrets out of the server's logs: uvicorn logs a WebSocket's address
with its query, where browsers must carry the secret (they cannot set headers on a socket)."""

from __future__ import annotations

import logging
import re

SECRET_IN_QUERY = re.compile(r"(client_secret=)[^&\s\"']+")
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redacted(text: str) -> str:
    return SECRET_IN_QUERY.sub(r"\1[redacted]", text)


class SecretRedaction(logging.Filter):
    """Rewrites a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_server_logs() -> None:
    """Installs the redaction on uvicorn's loggers (after uvicorn configured them)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretRedaction) for f in logger.filters):
            logger.addFilter(SecretRedaction())
