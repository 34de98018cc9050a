"""Schemathesis against payonce's own OpenAPI: no request, valid or not, makes a 5xx, and every
answer (status, content type, body) is one the document declares.

The fuzzer runs in a worker thread against a real server on a loopback port (the providers reach
the mounted sandbox over HTTP), with the shop backend's key, an order's client secret or its own
made-up credentials, and with real order and payment ids as well as made-up ones, so it gets past
the 401s and 404s to the routes' real answers. Derandomized: every run sends the same requests
(fresh Idempotency-Keys aside).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import ADMIN_KEY, API_KEY, Live

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation and generation mode: the whole file stays well under 40 s on 2 cores.
MAX_EXAMPLES = 25
FUZZED_PREFIXES = ("/api/", "/livez", "/readyz", "/metrics")
# Operations the fuzzer must see answer 2xx at least once (provider notifications are all
# forged here; the admin refund and replay need an extra capture and an event id, and the
# reconciliation a day of the last year: tests/integration/test_access.py makes those).
ANSWERED = {
    "POST /api/orders",
    "GET /api/orders/{order_id}",
    "GET /api/orders/{order_id}/payments",
    "GET /api/orders/{order_id}/payment-options",
    "POST /api/orders/{order_id}/payments",
    "GET /api/payments/{payment_id}",
    "POST /api/payments/{payment_id}/cancel",
    "GET /api/payments/{payment_id}/qr.svg",
    "GET /livez",
    "GET /readyz",
    "GET /metrics",
}


@dataclass
class Known:
    """Real ids and credentials the fuzzer may use in place of what it makes up."""

    order_ids: list[str]
    payment_ids: list[str]
    secrets: list[str]
    failures: dict[str, str] = field(default_factory=dict)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def _fuzz(raw_schema: dict[str, Any], base_url: str, known: Known) -> None:
    schema = schemathesis.openapi.from_dict(raw_schema)
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(FUZZED_PREFIXES):
            continue
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, base_url, known)
            except Unsatisfiable:
                # Nothing to make invalid (its only parameter is a free-form header).
                if mode is not schemathesis.GenerationMode.NEGATIVE:
                    raise
            except (Exception, BaseExceptionGroup) as error:
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                known.failures[label] = str(error)[:3000]


def _fuzz_operation(
    operation: schemathesis.APIOperation,
    mode: schemathesis.GenerationMode,
    base_url: str,
    known: Known,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    # Mostly real credentials and ids (a made-up one is a 401 or 404 soon enough); Hypothesis
    # favours the first choice of a list.
    keys = [f"Bearer {API_KEY}"] * len(known.secrets)
    if operation.path.startswith(("/api/admin/", "/metrics")):
        keys = [f"Bearer {ADMIN_KEY}"] * len(known.secrets) + keys  # the operators' calls
    credentials = st.sampled_from([*keys, *(f"Bearer {s}" for s in known.secrets), None])

    @given(
        case=operation.as_strategy(generation_mode=mode),
        real=st.sampled_from([True, True, True, False]),
        order_id=st.sampled_from(known.order_ids),
        payment_id=st.sampled_from(known.payment_ids),
        credential=credentials,
        fresh_key=st.sampled_from([True, True, False]),
    )
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(
        case: schemathesis.Case,
        real: bool,
        order_id: str,
        payment_id: str,
        credential: str | None,
        fresh_key: bool,
    ) -> None:
        if real:
            for name, value in (("order_id", order_id), ("payment_id", payment_id)):
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
        if isinstance(case.query, dict) and "wait" in case.query:
            case.query["wait"] = 0.01  # a real long poll would hold the fuzzer 30 s
        chosen = {"Authorization": credential} if credential else {}
        if fresh_key:  # a made-up key is soon one reused with another body (422)
            chosen["Idempotency-Key"] = str(uuid.uuid4())
        names = {name.lower() for name in chosen}
        generated = {k: v for k, v in (case.headers or {}).items() if k.lower() not in names}
        case.headers = {**generated, **chosen}
        response = case.call(base_url=base_url, timeout=10)
        known.statuses[label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


async def test_every_api_operation_answers_as_its_schema_says(live: Live) -> None:
    order = await live.create_order()
    paid_in_reais = await live.create_order(currency="BRL")
    applied = await live.apply(order)
    assert applied.status_code == 201, applied.text
    voucher = await live.apply(paid_in_reais, "boleto", "pc")
    assert voucher.status_code == 201, voucher.text
    known = Known(
        order_ids=[order["id"], paid_in_reais["id"]],
        payment_ids=[applied.json()["id"], voucher.json()["id"]],
        secrets=[order["client_secret"], paid_in_reais["client_secret"]],
    )
    raw_schema = (await live.http.get("/openapi.json")).json()
    started = time.monotonic()
    await asyncio.to_thread(_fuzz, raw_schema, live.url, known)
    elapsed = time.monotonic() - started
    report = "\n\n".join(f"== {label}\n{text}" for label, text in known.failures.items())
    assert not known.failures, f"{len(known.failures)} operations failed:\n{report}"
    # It got past the refusals to the routes' real answers (notifications are all forged here).
    statuses = {label: dict(counts) for label, counts in known.statuses.items()}
    calls = sum(sum(counts.values()) for counts in statuses.values())
    print(f"schemathesis: {calls} calls in {elapsed:.1f} s: {statuses}")
    unanswered = [
        label
        for label in sorted(ANSWERED)
        if not any(200 <= status < 300 for status in statuses.get(label, {}))
    ]
    assert not unanswered, statuses
