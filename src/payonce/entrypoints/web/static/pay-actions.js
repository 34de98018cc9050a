// Shows a payment's action the way its platform wants it: a QR code with its countdown, a wallet
// launch with a fallback, an in-app wallet sheet, a PayPal window, a Boleto voucher.

const $ = (id) => document.getElementById(id);

export const WALLETS = { alipay: "Alipay", wechat: "WeChat", paypal: "PayPal", boleto: "your bank" };
export const CHANNEL_NAMES = { alipay: "Alipay", wechat: "WeChat Pay", paypal: "PayPal", boleto: "Boleto" };
export const PLATFORM_NAMES = { pc: "a computer", wap: "a phone's browser", app: "the shop's app" };
const PANELS = ["qr", "launch", "fallback", "paypal", "voucher", "sandbox-phone"];
// How long a wallet has to open before the page offers the fallback (the page is still in view).
export const LAUNCH_WAIT_MS = 2500;

const svgCache = new Map();

export async function qrSvg(api, payment) {
  if (!svgCache.has(payment.id)) svgCache.set(payment.id, await api.svg(payment.action.qr_svg_url));
  return svgCache.get(payment.id);
}

export function hidePanels() {
  for (const id of PANELS) $(id).hidden = true;
  clearInterval(hidePanels.countdown);
  clearTimeout(hidePanels.launch);
}

function sandboxPhone(code) {
  if (document.getElementById("pay").dataset.sandbox !== "yes" || !code) return;
  $("phone-link").href = "/sandbox/phone?code=" + encodeURIComponent(code);
  $("sandbox-phone").hidden = false;
}

function countdown(expiresAt) {
  const expires = Date.parse(expiresAt);
  const tick = () => {
    const left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    $("countdown").textContent = left
      ? Math.floor(left / 60) + "m " + String(left % 60).padStart(2, "0") + "s"
      : "expired — press Refresh";
  };
  tick();
  hidePanels.countdown = setInterval(tick, 1000);
}

export async function showQr(api, payment) {
  $("qr-image").innerHTML = await qrSvg(api, payment); // rendered by payonce itself (segno)
  $("qr").hidden = false;
  countdown(payment.action.expires_at);
  sandboxPhone(payment.action.qr_code);
}

// Mobile web: hand over to the wallet. When it opens, this page leaves the screen; when it is
// still in view a moment later (no wallet, or a blocked link), the fallback takes over.
export function launch(payment, onFallback) {
  $("launch").hidden = false;
  let left = false;
  const gone = () => (left = true);
  document.addEventListener("visibilitychange", gone, { once: true });
  window.addEventListener("pagehide", gone, { once: true });
  hidePanels.launch = setTimeout(() => {
    if (!left && document.visibilityState === "visible") onFallback();
  }, LAUNCH_WAIT_MS);
  location.assign(payment.action.launch_url);
}

export async function showFallback(api, payment) {
  $("launch").hidden = true;
  $("fallback-qr").innerHTML = await qrSvg(api, payment);
  $("open-wallet").href = payment.action.launch_url;
  $("fallback").hidden = false;
  sandboxPhone(payment.action.launch_url);
}

export function showPayPal(payment) {
  $("paypal-here").href = payment.action.redirect_url;
  $("paypal").hidden = false;
}

export function openPayPal(payment) {
  const popup = window.open(payment.action.redirect_url, "payonce-paypal", "popup,width=480,height=720");
  return popup !== null;
}

export function showVoucher(payment) {
  const action = payment.action;
  $("digitable-line").textContent = action.digitable_line;
  $("due-date").textContent = new Date(action.due_date + "T12:00:00").toLocaleDateString(undefined, {
    weekday: "long", year: "numeric", month: "long", day: "numeric",
  });
  $("voucher-link").href = action.voucher_url;
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
