"""How payonce's processes log: one line per record, JSON (or readable on a terminal), through
structlog; each stamped with its request or job and order, and every secret redacted first."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from payonce.service.provenance import current_cause, current_subject

LogFormat = Literal["json", "console"]

# Secrets as they appear inside text: a URL's query (uvicorn logs a WebSocket's address, where
# browsers must carry the secret), a header, a key or a PEM block pasted into an error.
_SECRETS_IN_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bord_[0-9a-z]+_secret_[A-Za-z0-9_-]+"), "[redacted]"),
    (re.compile(r"(client_secret=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"\b(sk|ak|whsec)_[A-Za-z0-9_+/=-]{8,}"), r"\1_[redacted]"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[redacted private key]",
    ),
    # Signed provider URLs (a statement's download link, a pay string): their tokens and signs.
    (
        re.compile(r"(?i)([?&](?:sign|signature|token|access_token|auth_key|key)=)[^&\s\"']+"),
        r"\1[redacted]",
    ),
)
# Fields whose whole value is a secret, whatever it looks like.
_SECRET_FIELDS = re.compile(
    r"(?i)(secret|password|passwd|token|authorization|api_?key|admin_?key|private|apiv3|^sign$"
    r"|signature)"
)
# Libraries that log what must not be kept: httpx logs every URL it calls at INFO (a bill's
# download link carries its token); wechatpayv3 logs decrypted callbacks at DEBUG.
_QUIETER = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "wechatpayv3": logging.INFO}


def redacted(text: str) -> str:
    for pattern, replacement in _SECRETS_IN_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redacted(value)
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_FIELDS.search(str(k)) else _redact_value(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The last processor before rendering: secret fields blanked, secrets in text removed."""
    for key in list(event):
        if key.startswith("_"):
            continue
        if _SECRET_FIELDS.search(key):
            event[key] = "[redacted]"
        else:
            event[key] = _redact_value(event[key])
    return event


def add_cause(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The request or job at work (the audit trail's cause), when one said, and the order and
    payment it is about."""
    cause = current_cause()
    if cause != "unknown":
        event.setdefault("cause", cause)
    order_id, payment_id = current_subject()
    if order_id is not None:
        event.setdefault("order_id", order_id)
    if payment_id is not None:
        event.setdefault("payment_id", payment_id)
    return event


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,  # request_id, order_id, payment_id
        add_cause,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure(
    log_format: LogFormat = "json", *, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    """Route every record (ours, uvicorn's, the libraries') through one redacting formatter.

    Call it once at a process's start, before the server starts (uvicorn gets log_config=None).
    """
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers = []
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)  # the root's level decides
    for name, quieter in _QUIETER.items():
        logging.getLogger(name).setLevel(quieter)
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Stamp every record logged inside the block with these fields (e.g. a request's id)."""
    kept = {key: value for key, value in fields.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**kept):
        yield
