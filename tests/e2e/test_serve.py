"""`payonce serve` as a newcomer runs it: a real process, the embedded default, end to end."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx

from payonce.adapters.storage.engine import MIGRATIONS
from tests.e2e.conftest import PAYONCE


def test_the_embedded_server_takes_an_order_from_checkout_to_ready_for_shipment(
    server: tuple[str, str],
) -> None:
    url, api_key = server
    with httpx.Client(base_url=url, timeout=40) as http:
        assert http.get("/readyz").json() == {"status": "ok", "storage": "ok"}
        order = http.post(
            "/api/orders",
            json={
                "customer_id": "c-1",
                "currency": "CNY",
                "lines": [{"sku": "S", "name": "Tea", "quantity": 2, "unit_amount": 1999}],
            },
            headers={"Authorization": f"Bearer {api_key}"},
        ).json()
        assert (order["status"], order["amount"]) == ("UNPAID", 3998)
        shopper = {"Authorization": f"Bearer {order['client_secret']}"}
        payment = http.post(
            f"/api/orders/{order['id']}/payments",
            json={"channel": "alipay", "platform": "pc"},
            headers={**shopper, "Idempotency-Key": "first-click"},
        )
        assert payment.status_code == 201, payment.text
        qr = http.get(payment.json()["action"]["qr_svg_url"], headers=shopper)
        assert qr.headers["content-type"] == "image/svg+xml"
        assert qr.text.startswith("<svg")
        paid = http.post("/sandbox/wallet/pay", json={"code": payment.json()["action"]["qr_code"]})
        assert paid.status_code == 200, paid.text
        # The sandbox notifies in the background; the long poll answers when the order changes.
        seen = order["status_version"]
        for _ in range(10):
            current = http.get(
                f"/api/orders/{order['id']}",
                params={"after_version": seen, "wait": 25},
                headers=shopper,
            ).json()
            seen = current["status_version"]
            if current["status"] == "READY_FOR_SHIPMENT":
                break
        assert current["status"] == "READY_FOR_SHIPMENT"
        assert current["paid_payment_id"] == payment.json()["id"]
        assert "client_secret" not in current  # the browser is never told secrets again


def test_the_checkout_page_creates_an_order_and_hands_over_only_its_secret(
    server: tuple[str, str],
) -> None:
    url, _ = server
    with httpx.Client(base_url=url) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert 'action="/demo/orders"' in page.text
        cart = {"cart_id": "cart-1", "currency": "CNY", "qty-TEA-001": "2", "qty-CUP-010": "1"}
        created = http.post("/demo/orders", data=cart, follow_redirects=False)
        assert created.status_code == 303
        location = created.headers["location"]
        # The same cart sent twice (a double-submitted form) is one order.
        again = http.post("/demo/orders", data=cart, follow_redirects=False)
        assert (again.status_code, again.headers["location"]) == (303, location)
        empty = http.post("/demo/orders", data={"cart_id": "cart-2", "currency": "CNY"})
        assert (empty.status_code, empty.json()["code"]) == (422, "invalid_request")
        # Back in the cart, changed, and sent again: another order, not a refusal.
        changed = http.post("/demo/orders", data={**cart, "qty-TEA-001": "3"})
        assert changed.status_code == 303
        assert changed.headers["location"] != location
        odd = http.post("/demo/orders", data={"cart_id": "cart-4", "qty-TEA-001": "²"})
        assert (odd.status_code, odd.json()["code"]) == (422, "invalid_request")
        brazil = {"cart_id": "cart-3", "currency": "BRL", "qty-POT-200": "1"}
        in_reais = http.post("/demo/orders", data=brazil, follow_redirects=False)
        assert in_reais.status_code == 303
        match = re.fullmatch(r"/pay/(ord_\w+)#(ord_\w+_secret_[\w-]+)", location)
        assert match, location
        pay = http.get(f"/pay/{match.group(1)}")
        assert pay.status_code == 200
        assert "/static/pay.js" in pay.text
        assert http.get("/static/pay.js").status_code == 200
        order = http.get(
            f"/api/orders/{match.group(1)}", headers={"Authorization": f"Bearer {match.group(2)}"}
        )
        assert order.json()["amount"] == 2 * 1999 + 2500


def test_errors_are_problem_json_with_stable_codes(server: tuple[str, str]) -> None:
    url, api_key = server
    with httpx.Client(base_url=url) as http:
        missing = http.get("/api/orders/ord_nope", headers={"Authorization": f"Bearer {api_key}"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "order_not_found"
        bad = http.post(
            "/api/orders",
            json={"customer_id": "c", "currency": "XXX", "lines": []},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert bad.status_code == 422
        assert bad.json()["code"] == "invalid_request"
        assert http.get("/no/such/route").json()["code"] == "not_found"


def test_the_openapi_document_covers_the_contract(server: tuple[str, str]) -> None:
    url, _ = server
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    for path in (
        "/api/orders",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/payments",
        "/api/payments/{payment_id}",
        "/api/payments/{payment_id}/cancel",
        "/api/notify/{channel}",
        "/livez",
        "/readyz",
    ):
        assert path in paths, path


def test_help_explains_every_command() -> None:
    shown = subprocess.run([*PAYONCE, "--help"], capture_output=True, text=True, check=True)
    for command in ("serve", "sandbox", "db"):
        assert command in shown.stdout
    db = subprocess.run([*PAYONCE, "db", "--help"], capture_output=True, text=True, check=True)
    assert "upgrade" in db.stdout


def test_db_upgrade_migrates_a_fresh_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYONCE_")}
    env["PAYONCE_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [*PAYONCE, "db", "upgrade"], env=env, capture_output=True, text=True, check=True
    )
    newest = max(path.name[:4] for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    assert f"database at revision {newest}" in done.stdout
    assert (tmp_path / "payonce.db").exists()


def test_production_settings_refuse_the_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYONCE_")}
    env.update(PAYONCE_ENV="production", PAYONCE_DATA_DIR=str(tmp_path), PAYONCE_CLOCK="adjustable")
    refused = subprocess.run([*PAYONCE, "serve"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2
    assert "PAYONCE_API_KEY must be set" in refused.stdout
    assert "adjustable" in refused.stdout
