// Shows a payment's action the way its platform wants it: a QR code with its countdown, a wallet
// launch with a fallback, an in-app wallet sheet, a PayPal window, a Boleto voucher.

const $ = (id) => document.getElementById(id);

export const WALLETS = { alipay: "Alipay", wechat: "WeChat", paypal: "PayPal", boleto: "your bank" };
export const CHANNEL_NAMES = { alipay: "Alipay", wechat: "WeChat Pay", paypal: "PayPal", boleto: "Boleto" };
export const PLATFORM_NAMES = { pc: "a computer", wap: "a phone's browser", app: "the shop's app" };
const PANELS = ["qr", "launch", "fallback", "paypal", "voucher", "sandbox-phone"];
// How long a wallet has to open before the page offers the fallback (the page is still in view).
export const LAUNCH_WAIT_MS = 2500;
// The name of PayPal's window: the pay page loaded in it hands over to its opener and closes.
export const POPUP = "payonce-paypal";

const svgCache = new Map();

// One fetch per payment, shared by everyone who asks meanwhile; a failed one is asked again.
export function qrSvg(api, payment) {
  if (!svgCache.has(payment.id)) {
    const fetching = api.svg(payment.action.qr_svg_url);
    fetching.catch(() => svgCache.delete(payment.id));
    svgCache.set(payment.id, fetching);
  }
  return svgCache.get(payment.id);
}

const timers = { countdown: null, launch: null, cleanup: null };

export function hidePanels() {
  for (const id of PANELS) $(id).hidden = true;
  clearInterval(timers.countdown);
  clearTimeout(timers.launch);
  if (timers.cleanup) timers.cleanup();
  timers.cleanup = null;
}

// Only addresses a browser may follow: the web, and the wallets' own app schemes.
const SCHEMES = new Set(["https:", "http:", "alipays:", "alipay:", "weixin:"]);

export function safeHref(address) {
  try {
    return SCHEMES.has(new URL(address, location.href).protocol) ? address : "#";
  } catch {
    return "#";
  }
}

function sandboxPhone(code) {
  if (document.getElementById("pay").dataset.sandbox !== "yes" || !code) return;
  $("phone-link").href = "/sandbox/phone?code=" + encodeURIComponent(code);
  $("sandbox-phone").hidden = false;
}

function countdown(expiresAt) {
  clearInterval(timers.countdown);
  const expires = Date.parse(expiresAt);
  const tick = () => {
    const left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    $("countdown").textContent = left
      ? Math.floor(left / 60) + "m " + String(left % 60).padStart(2, "0") + "s"
      : "expired — press Refresh";
  };
  tick();
  timers.countdown = setInterval(tick, 1000);
}

// Each show* that waits for something takes `current`: false once another payment (or none)
// took the screen meanwhile, and then it shows nothing.
export async function showQr(api, payment, current) {
  const svg = await qrSvg(api, payment);
  if (!current()) return;
  $("qr-image").innerHTML = svg; // rendered by payonce itself (segno)
  $("qr").hidden = false;
  countdown(payment.action.expires_at);
  sandboxPhone(payment.action.qr_code);
}

// Mobile web: hand over to the wallet. When it opens, this page leaves the screen; when it is
// still in view a moment later (no wallet, or a blocked link), the fallback takes over, as it
// does when the shopper comes back from the wallet without the page having seen a payment.
export function launch(payment, onFallback) {
  $("launch").hidden = false;
  let left = false;
  const fallback = () => {
    hidePanels();
    onFallback();
  };
  const seen = () => {
    if (document.visibilityState === "hidden") left = true;
    else if (left) fallback(); // back from the wallet
  };
  const restored = (event) => event.persisted && fallback(); // back, from the page cache
  document.addEventListener("visibilitychange", seen);
  window.addEventListener("pagehide", () => (left = true), { once: true });
  window.addEventListener("pageshow", restored);
  timers.cleanup = () => {
    document.removeEventListener("visibilitychange", seen);
    window.removeEventListener("pageshow", restored);
  };
  timers.launch = setTimeout(() => {
    if (!left && document.visibilityState === "visible") fallback();
  }, LAUNCH_WAIT_MS);
  location.assign(safeHref(payment.action.launch_url));
}

export async function showFallback(api, payment, current) {
  const svg = await qrSvg(api, payment);
  if (!current()) return;
  $("launch").hidden = true;
  $("fallback-qr").innerHTML = svg;
  $("open-wallet").href = safeHref(payment.action.launch_url);
  $("fallback").hidden = false;
  sandboxPhone(payment.action.launch_url);
}

export function showPayPal(payment) {
  $("paypal-here").href = safeHref(payment.action.redirect_url);
  $("paypal").hidden = false;
}

export function openPayPal(payment) {
  const popup = window.open(safeHref(payment.action.redirect_url), POPUP, "popup,width=480,height=720");
  return popup !== null;
}

export function showVoucher(payment) {
  const action = payment.action;
  $("digitable-line").textContent = action.digitable_line;
  $("due-date").textContent = new Date(action.due_date + "T12:00:00").toLocaleDateString(undefined, {
    weekday: "long", year: "numeric", month: "long", day: "numeric",
  });
  $("voucher-link").href = safeHref(action.voucher_url);
  $("voucher").hidden = false;
  sandboxPhone(action.digitable_line);
}

export async function copyLine() {
  const text = $("digitable-line").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange(); // no clipboard permission: select it for the shopper
    range.selectNodeContents($("digitable-line"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  $("copied").textContent = "Copied.";
}

// The in-app flow: the shop's app hands the order string to the wallet's SDK, which slides a
// sheet over the app. Beside the sandbox, that sheet is simulated here and pays the sandbox.
export function openSheet(payment, amountText) {
  const sandbox = document.getElementById("pay").dataset.sandbox === "yes";
  $("sheet-amount").textContent = amountText;
  $("sheet-note").textContent = sandbox
    ? "Sandbox wallet: paying moves sandbox money only."
    : "Continue in the shop's app: it hands this order to the wallet.";
  $("sheet-pay").hidden = !sandbox;
  if (!$("sheet").open) $("sheet").showModal();
}

export function appCode(payment) {
  const fields = { ...payment.action };
  delete fields.type;
  delete fields.expires_at;
  return fields.order_string || JSON.stringify(fields); // Alipay's order string, WeChat's PayReq
}
