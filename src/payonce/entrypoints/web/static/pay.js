// The pay page: asks payonce for the order's trade, shows its QR, and follows the order live
// (WebSocket first, long-poll as the fallback). Only the order's client_secret is used here.
(() => {
  "use strict";
  const root = document.getElementById("pay");
  const orderId = root.dataset.orderId;
  const stored = "payonce:" + orderId;
  const secret = decodeURIComponent(location.hash.slice(1)) || sessionStorage.getItem(stored) || "";
  if (secret) sessionStorage.setItem(stored, secret);
  history.replaceState(null, "", location.pathname + location.search); // keep the secret out of history

  const $ = (id) => document.getElementById(id);
  const auth = { Authorization: "Bearer " + secret };
  let version = 0;
  let countdownTimer = null;

  const newKey = () =>
    (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: { ...auth, ...(options.headers || {}) } });
    const isJson = (response.headers.get("content-type") || "").includes("json");
    const body = isJson ? await response.json() : await response.text();
    if (!response.ok) throw Object.assign(new Error((body && body.detail) || response.statusText), { body });
    return body;
  }

  function showOrder(event) {
    if (event.status_version <= version) return; // stale news
    version = event.status_version;
    $("status").textContent = event.status;
    $("version").textContent = "v" + version;
    if (event.status === "READY_FOR_SHIPMENT") {
      $("paid").hidden = false;
      $("qr").hidden = true;
      $("choose").hidden = true;
    } else if (event.status === "CLOSED") {
      $("choose").hidden = true;
      $("qr").hidden = true;
    }
    if (event.payment && event.payment.status === "PAYING" && event.payment.action) showAction(event.payment);
  }

  async function showAction(payment) {
    const action = payment.action;
    if (!action || action.type !== "qr_code") return;
    const svg = await fetch(action.qr_svg_url, { headers: auth }).then((r) => r.text());
    $("qr-image").innerHTML = svg; // rendered by payonce itself (segno)
    $("qr").hidden = false;
    if (root.dataset.sandbox === "yes") {
      $("wallet-link").href = "/sandbox/wallet?code=" + encodeURIComponent(action.qr_code);
      $("wallet").hidden = false;
    }
    clearInterval(countdownTimer);
    const expires = Date.parse(action.expires_at);
    const tick = () => {
      const left = Math.max(0, Math.round((expires - Date.now()) / 1000));
      $("countdown").textContent = Math.floor(left / 60) + "m " + String(left % 60).padStart(2, "0") + "s";
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  async function applyPayment(button, channel, platform) {
    button.disabled = true;
    showError("");
    try {
      const payment = await api("/api/orders/" + orderId + "/payments", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
        body: JSON.stringify({ channel, platform }),
      });
      await showAction(payment);
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  }

  $("pay-alipay-pc").addEventListener("click", (e) => applyPayment(e.currentTarget, "alipay", "pc"));
  $("refresh").addEventListener("click", (e) => applyPayment(e.currentTarget, "alipay", "pc"));

  async function longPoll() {
    for (;;) {
      try {
        showOrder(await api("/api/orders/" + orderId + "?after_version=" + version + "&wait=25"));
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  }

  function follow() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(
      scheme + location.host + "/api/orders/" + orderId + "/events?client_secret=" + encodeURIComponent(secret),
    );
    let opened = false;
    socket.onopen = () => { opened = true; };
    socket.onmessage = (message) => showOrder(JSON.parse(message.data));
    socket.onclose = () => (opened ? setTimeout(follow, 1000) : longPoll());
  }

  async function start() {
    if (!secret) {
      showError("This page needs the order's secret (open it from the shop).");
      return;
    }
    try {
      const order = await api("/api/orders/" + orderId);
      $("amount").textContent = (order.amount / 100).toFixed(2) + " " + order.currency;
      const { payments } = await api("/api/orders/" + orderId + "/payments");
      showOrder({ ...order, status_version: order.status_version, payment: payments[0] || null });
    } catch (error) {
      showError(error.message);
      return;
    }
    follow();
  }

  start();
})();
