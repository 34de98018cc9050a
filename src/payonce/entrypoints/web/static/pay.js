// The pay page: lets the shopper choose a channel, shows its action for the device, and follows
// the order live until it is paid or closed. Only the order's client_secret is used here.
import { PayonceApi, explain, newKey } from "./pay-api.js";
import { follow } from "./pay-live.js";
import * as actions from "./pay-actions.js";

const $ = (id) => document.getElementById(id);
const root = $("pay");
const orderId = root.dataset.orderId;
const params = new URLSearchParams(location.search);
const LIVE = new Set(["UNPAID", "PAYING", "UNKNOWN", "CLOSING"]);
const STATUS_TEXT = {
  UNPAID: "Waiting for your payment",
  READY_FOR_SHIPMENT: "Paid, ready for shipment",
  CLOSED: "Closed",
};
const PAYMENT_TEXT = {
  UNPAID: "starting", PAYING: "waiting for payment", UNKNOWN: "checking with the provider",
  PAID: "paid", FAILED: "failed", CLOSING: "closing", CLOSED: "closed",
  REFUNDING: "being refunded", REFUNDED: "refunded",
};
const MAX_RETRIES = 10;

// A PayPal (or wallet) window that came back here: tell the page that opened it, and go.
function returnedToOpener() {
  if (!window.opener || window.name !== actions.POPUP || !params.has("token")) return false;
  try {
    window.opener.postMessage({ type: "payonce:returned", orderId }, location.origin);
  } catch {
    return false;
  }
  document.body.classList.add("returned");
  root.innerHTML = "<h1>Approved</h1><p>You can close this window; the pay page shows the result.</p>";
  window.close();
  return true;
}

function secretOfPage() {
  const stored = "payonce:" + orderId;
  let given = "";
  try {
    given = decodeURIComponent(location.hash.slice(1));
  } catch {
    // a mangled link: fall back to what this tab already holds
  }
  const secret = given || sessionStorage.getItem(stored) || "";
  if (secret) sessionStorage.setItem(stored, secret);
  // Keep the secret (and a provider's return parameters) out of the address bar and history.
  const keep = params.get("platform") ? "?platform=" + encodeURIComponent(params.get("platform")) : "";
  history.replaceState(null, "", location.pathname + keep);
  return secret;
}

function detectPlatform() {
  const remembered = "payonce:platform:" + orderId;
  const forced = params.get("platform") || sessionStorage.getItem(remembered);
  if (["pc", "wap", "app"].includes(forced)) {
    sessionStorage.setItem(remembered, forced); // a provider's return drops our query string
    return forced;
  }
  if (/PayonceShopApp\//.test(navigator.userAgent)) return "app";
  const mobile = navigator.userAgentData
    ? navigator.userAgentData.mobile
    : /Mobi|Android|iPhone|iPad/.test(navigator.userAgent);
  return mobile ? "wap" : "pc";
}

const state = {
  status: null,
  version: 0,
  amountText: "",
  payments: new Map(), // id → newest view of each of the order's payments
  shown: null, // "paymentId:actionType" of the panel on screen
  turn: 0, // counts what took the screen, so a slower show of an older one gives way
  fresh: null, // the payment the shopper just asked for: launch, pop up or slide in its action
  busy: false,
  platform: detectPlatform(),
};
let api;

function showError(text, code) {
  $("error").textContent = text || "";
  $("error").dataset.code = code || "";
  $("error").hidden = !text;
}

function setBusy(busy) {
  state.busy = busy;
  for (const button of root.querySelectorAll("#channels button, #refresh")) button.disabled = busy;
  root.setAttribute("aria-busy", String(busy));
}

function remember(payment) {
  const known = state.payments.get(payment.id);
  if (!known || payment.status_version >= known.status_version) state.payments.set(payment.id, payment);
}

function newest() {
  return [...state.payments.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
}

function onNews(news, paymentsKnown = false) {
  if (news.status_version <= state.version) return; // stale or repeated news
  state.version = news.status_version;
  state.status = news.status;
  if (news.status === "READY_FOR_SHIPMENT") sessionStorage.setItem("payonce:paid:" + orderId, "1");
  if (news.payment) remember(news.payment);
  else if (!paymentsKnown) refreshPayments(); // a long-poll or poll answer carries the order alone
  render();
}

async function refreshPayments() {
  try {
    for (const payment of await api.payments()) remember(payment);
    render();
  } catch {
    // the next news asks again
  }
}

function renderStatus() {
  $("status").textContent = state.status || "loading…";
  $("status-pill").dataset.status = state.status || "";
  $("status-text").textContent = STATUS_TEXT[state.status] || "";
  $("version").textContent = state.version ? "v" + state.version : "";
}

function renderAttempts() {
  const list = $("attempts");
  const payments = newest();
  $("attempts-box").hidden = payments.length === 0;
  list.replaceChildren(
    ...payments.map((payment) => {
      const item = document.createElement("li");
      item.dataset.paymentId = payment.id;
      item.dataset.channel = payment.channel;
      item.dataset.status = payment.status;
      const name = document.createElement("span");
      name.textContent = actions.CHANNEL_NAMES[payment.channel] + " · " + payment.platform;
      const status = document.createElement("span");
      status.className = "attempt-status";
      status.textContent = PAYMENT_TEXT[payment.status] || payment.status;
      item.append(name, " — ", status);
      if (payment.refund) item.append(" (refund " + payment.refund.status.toLowerCase() + ")");
      if (payment.action && payment.action.type === "qr_code" && !LIVE.has(payment.status)) {
        const thumb = document.createElement("span"); // the old QR, stamped: it pays nothing now
        thumb.className = "thumb";
        actions.qrSvg(api, payment).then((svg) => { thumb.innerHTML = svg; }, () => {});
        const stamp = document.createElement("span");
        stamp.className = "stamp";
        stamp.textContent = PAYMENT_TEXT[payment.status];
        item.append(thumb, stamp);
      }
      return item;
    }),
  );
}

function render() {
  renderStatus();
  renderAttempts();
  const settled = state.status === "READY_FOR_SHIPMENT" || state.status === "CLOSED";
  $("paid").hidden = state.status !== "READY_FOR_SHIPMENT";
  if (!$("paid").hidden && !document.body.dataset.paidShownAt) {
    document.body.dataset.paidShownAt = String(Date.now()); // read by the latency measurement
    document.body.dataset.paidVia = $("live").dataset.mode; // and which path brought it
  }
  $("closed").hidden = state.status !== "CLOSED";
  $("choose").hidden = settled || state.status === null;
  const live = settled ? null : newest().find((p) => LIVE.has(p.status));
  if (settled && $("sheet").open) $("sheet").close();
  if (settled && $("error").dataset.code !== "order_already_paid") showError("");
  const unknown = "payment_outcome_unknown";
  if (live && live.status === "UNKNOWN") showError(explain({ code: unknown }).text, unknown);
  else if (!state.busy && $("error").dataset.code === unknown) showError(""); // it is known now
  showAction(live && live.status === "PAYING" ? live : null);
}

async function showAction(payment) {
  const shown = payment && payment.action ? payment.id + ":" + payment.action.type : null;
  if (shown === state.shown) return;
  state.shown = shown;
  const turn = ++state.turn;
  const current = () => turn === state.turn;
  actions.hidePanels();
  if (!shown) return;
  const fresh = state.fresh === payment.id;
  state.fresh = null;
  for (const name of root.querySelectorAll(".wallet-name")) name.textContent = actions.WALLETS[payment.channel];
  $("sheet").querySelector(".wallet-name").textContent = actions.WALLETS[payment.channel];
  try {
    switch (payment.action.type) {
      case "qr_code":
        return await actions.showQr(api, payment, current);
      case "launch_url":
        // Launched only when just asked for; back on the page later, the fallback is offered.
        if (fresh) return actions.launch(payment, () => actions.showFallback(api, payment, current));
        return await actions.showFallback(api, payment, current);
      case "app_order":
        return actions.openSheet(payment, state.amountText);
      case "redirect_url":
        actions.showPayPal(payment);
        if (fresh && !actions.openPayPal(payment)) {
          showError("Your browser blocked the PayPal window: press Open PayPal, or continue in this tab.");
        }
        return;
      case "voucher":
        return actions.showVoucher(payment);
    }
  } catch (error) {
    showError(explain(error).text, error.code);
  }
}

async function choose(channel, platform = state.platform) {
  if (state.busy) return; // a double click is one intention
  await pursue({ key: newKey(), channel, platform });
}

async function pursue(intent, retries = 0) {
  setBusy(true);
  showError("");
  try {
    const payment = await api.apply(intent);
    remember(payment);
    state.fresh = payment.id;
    state.shown = null; // show it again, even when it is the same trade (Refresh)
    await refreshPayments(); // the older trade it closed shows as closed at once
    render();
  } catch (error) {
    const { text, retry } = explain(error);
    showError(text, error.code);
    if (["order_already_paid", "order_closed", "order_expired"].includes(error.code)) {
      await reload().catch(() => {}); // the live updates bring it otherwise
    }
    if (retry && retries < MAX_RETRIES) {
      const next = retry === "same" ? intent : { ...intent, key: newKey() };
      setTimeout(() => pursue(next, retries + 1), (error.retryAfterS || 2) * 1000);
      return; // still busy: the page asks again by itself
    }
  }
  setBusy(false);
}

async function checkNow() {
  const live = newest().find((p) => LIVE.has(p.status));
  if (!live) return;
  $("i-paid").disabled = true;
  showError("Checking with " + actions.WALLETS[live.channel] + "…", "checking");
  try {
    const payment = await api.payment(live.id);
    remember(payment);
    await reload();
    if (state.status !== "READY_FOR_SHIPMENT") {
      showError("Not received yet. If you have paid, this page shows it as soon as the provider tells us.", "not_yet");
    } else {
      showError("");
    }
  } catch (error) {
    showError(explain(error).text, error.code);
  } finally {
    $("i-paid").disabled = false;
  }
}

async function reload() {
  const order = await api.order();
  state.amountText = new Intl.NumberFormat(undefined, { style: "currency", currency: order.currency })
    .format(order.amount / 100);
  $("amount").textContent = state.amountText;
  for (const payment of await api.payments()) remember(payment);
  onNews(order, true);
  render();
}

function renderChannels(options) {
  const buttons = options
    .filter((option) => option.platforms.includes(state.platform))
    .map((option) => {
      const button = document.createElement("button");
      button.type = "button";
      button.id = "pay-" + option.channel;
      button.dataset.channel = option.channel;
      button.textContent = actions.CHANNEL_NAMES[option.channel] || option.channel;
      button.addEventListener("click", () => choose(option.channel));
      return button;
    });
  $("channels").replaceChildren(...buttons);
  $("platform-name").textContent = actions.PLATFORM_NAMES[state.platform];
}

function wire() {
  $("refresh").addEventListener("click", () => {
    const live = newest().find((p) => LIVE.has(p.status));
    if (live) choose(live.channel, live.platform);
  });
  $("i-paid").addEventListener("click", checkNow);
  $("copy-line").addEventListener("click", actions.copyLine);
  $("paypal-open").addEventListener("click", () => {
    const live = newest().find((p) => p.status === "PAYING" && p.channel === "paypal");
    if (live && !actions.openPayPal(live)) showError("Your browser blocked the PayPal window.");
  });
  $("sheet-pay").addEventListener("click", async () => {
    const live = newest().find((p) => p.status === "PAYING" && p.action && p.action.type === "app_order");
    if (!live) return;
    $("sheet-pay").disabled = true;
    try {
      const answer = await fetch("/sandbox/wallet/pay", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: actions.appCode(live) }),
      });
      if (!answer.ok) throw new Error((await answer.json()).detail);
      $("sheet-note").textContent = "Paid in the wallet; waiting for the shop…";
    } catch (error) {
      $("sheet-note").textContent = "The wallet refused: " + error.message;
    } finally {
      $("sheet-pay").disabled = false;
    }
  });
  window.addEventListener("message", (event) => {
    if (event.origin === location.origin && event.data && event.data.type === "payonce:returned") checkNow();
  });
}

async function start() {
  if (returnedToOpener()) return;
  const secret = secretOfPage();
  if (!secret) {
    showError("This page needs the order's secret: open it from the shop.", "no_secret");
    return;
  }
  api = new PayonceApi(orderId, secret);
  if (sessionStorage.getItem("payonce:paid:" + orderId)) {
    state.status = "READY_FOR_SHIPMENT"; // a paid order never goes back: show it at once
    render();
  }
  wire();
  for (let wait = 2000; ; wait = Math.min(wait * 2, 30000)) {
    try {
      const [options] = await Promise.all([api.options(), reload()]);
      renderChannels(options);
      showError("");
      render();
      break;
    } catch (error) {
      showError(explain(error).text, error.code);
      if (error.status >= 400 && error.status < 500) return; // asking again will not help
      await new Promise((resolve) => setTimeout(resolve, wait)); // a blip, a restart: again
    }
  }
  follow({
    orderId, secret, api,
    version: () => state.version,
    done: () => state.status === "READY_FOR_SHIPMENT", // paid is final: nothing more to hear
    onNews,
    onMode: (mode) => {
      $("live").dataset.mode = mode;
      $("live").textContent = "live: " + mode;
    },
  });
  const pending = api.pendingIntent(); // refreshed while a pay request was on its way
  if (pending && state.status === "UNPAID") pursue(pending);
}

start();
