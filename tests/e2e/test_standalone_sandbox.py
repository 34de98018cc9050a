"""`payonce sandbox --port N` on its own, and a payonce server that reaches it by its URL."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import api_key_printed, clean_env, free_port, pay_one_order, running


def test_a_standalone_sandbox_serves_payonce_through_its_url(tmp_path: Path) -> None:
    sandbox_port, serve_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/sandbox"
    url = f"http://127.0.0.1:{serve_port}"
    # Both read the sandbox keys from the shared data directory, as in development.
    env = clean_env(PAYONCE_DATA_DIR=str(tmp_path))
    with running(
        ["sandbox", "--port", str(sandbox_port)], env, f"{sandbox_url}/", tmp_path / "sandbox.log"
    ):
        index = httpx.get(f"{sandbox_url}/").json()
        assert index["sandbox"] == "payonce"
        assert "alipay" in index["channels"]
        env_serve = clean_env(PAYONCE_DATA_DIR=str(tmp_path), PAYONCE_SANDBOX_URL=sandbox_url)
        log = tmp_path / "serve.log"
        with running(["serve", "--port", str(serve_port)], env_serve, f"{url}/livez", log):
            api_key = api_key_printed(log)
            with httpx.Client(base_url=url, timeout=40) as http:
                assert http.get("/sandbox/").status_code == 404  # not mounted here
                current = pay_one_order(
                    http, order_api=url, pay_api=url, api_key=api_key, sandbox_url=sandbox_url
                )
                assert current["status"] == "READY_FOR_SHIPMENT"
        deliveries = httpx.get(f"{sandbox_url}/deliveries").json()["deliveries"]
        assert [(d["ok"], d["answer"]) for d in deliveries] == [(True, "success")]
