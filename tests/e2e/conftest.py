"""A `payonce serve` process per test module, started the way a newcomer starts it; a browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from payonce.entrypoints.processes import PAYONCE, clean_env, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network (no background calls home) and a root user.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def running(
    args: list[str], env: dict[str, str], ready_url: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A payonce process, once ``ready_url`` answers 200; terminated afterwards."""
    with log_path.open("w") as log:
        process = subprocess.Popen([*PAYONCE, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(300):
                if process.poll() is not None:
                    raise AssertionError(log_path.read_text())
                try:
                    if httpx.get(ready_url).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=20)


def api_key_printed(log_path: Path) -> str:
    printed = log_path.read_text()
    match = re.search(r"API key\s+(\S+)", printed)
    assert match, printed
    return match.group(1)


def pay_one_order(
    http: httpx.Client, *, order_api: str, pay_api: str, api_key: str, sandbox_url: str
) -> dict[str, Any]:
    """A shop creates an order on ``order_api``, the shopper applies on ``pay_api`` and pays the
    QR in the sandbox wallet; answers the order once it is paid (or the last state seen)."""
    order: dict[str, Any] = http.post(
        f"{order_api}/api/orders",
        json={
            "customer_id": "c-1",
            "currency": "CNY",
            "lines": [{"sku": "S", "name": "Tea", "quantity": 1, "unit_amount": 500}],
        },
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    payment = http.post(
        f"{pay_api}/api/orders/{order['id']}/payments",
        json={"channel": "alipay", "platform": "pc"},
        headers={**shopper, "Idempotency-Key": "k1"},
    )
    assert payment.status_code == 201, payment.text
    qr_code = payment.json()["action"]["qr_code"]
    assert qr_code.startswith(sandbox_url)
    paid = http.post(f"{sandbox_url}/wallet/pay", json={"code": qr_code})
    assert paid.status_code == 200, paid.text
    current = order
    for _ in range(10):
        current = http.get(
            f"{order_api}/api/orders/{order['id']}",
            params={"after_version": current["status_version"], "wait": 10},
            headers=shopper,
        ).json()
        if current["status"] == "READY_FOR_SHIPMENT":
            break
    return current


# Each server's log, by its URL: tests read what it wrote.
SERVER_LOGS: dict[str, Path] = {}


@contextmanager
def served(tmp_path_factory: pytest.TempPathFactory, **settings: str) -> Iterator[tuple[str, str]]:
    """`payonce serve` with the embedded defaults (and ``settings``): its URL and API key."""
    data_dir = tmp_path_factory.mktemp("payonce-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(PAYONCE_DATA_DIR=str(data_dir), **settings)
    log_path = data_dir / "serve.log"
    SERVER_LOGS[url] = log_path
    with running(["serve", "--port", str(port)], env, f"{url}/livez", log_path):
        yield url, api_key_printed(log_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with served(tmp_path_factory) as started:
        yield started


@pytest.fixture(scope="module")
def adjustable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server whose clock (and its sandbox's) moves on with POST /sandbox/clock, and which
    gives up on a provider after 2 s (so a test of an unanswered call does not wait 15)."""
    with served(
        tmp_path_factory, PAYONCE_CLOCK="adjustable", PAYONCE_PROVIDER_TIMEOUT_S="2"
    ) as started:
        yield started


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots and figures (kept after the run; not in git)."""
    default = Path(__file__).resolve().parents[2] / ".artifacts"
    directory = Path(os.environ.get("PAYONCE_ARTIFACTS_DIR", default))
    (directory / "screenshots").mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM, "the system Chromium is required (scripts/test installs it on Debian)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
