"""A `payonce serve` process per test module, started the way a newcomer starts it; a browser."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

PAYONCE = [sys.executable, "-m", "payonce"]
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir = tmp_path_factory.mktemp("payonce-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYONCE_")}
    env["PAYONCE_DATA_DIR"] = str(data_dir)
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [*PAYONCE, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError((data_dir / "serve.log").read_text())
            try:
                if httpx.get(f"{url}/livez").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        printed = (data_dir / "serve.log").read_text()
        match = re.search(r"API key\s+(\S+)", printed)
        assert match, printed
        yield url, match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM, "the system Chromium is required (scripts/test installs it on Debian)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
