// How the pay page talks to payonce: the order's client_secret, problem+json refusals turned into
// words a shopper understands, and one Idempotency-Key per pay intention that outlives a refresh.

export class Refusal extends Error {
  constructor(status, problem, retryAfterS) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status;
    this.code = (problem && problem.code) || "http_" + status;
    this.retryAfterS = retryAfterS;
  }
}

// What the shopper reads for each refusal code; `retry` says whether the page asks again itself.
const EXPLAINED = {
  order_already_paid: { text: "This order is already paid; nothing more will be charged." },
  order_closed: { text: "This order is closed, so it can no longer be paid. Nothing was charged for it." },
  order_expired: { text: "This order has expired, so it can no longer be paid." },
  payment_outcome_unknown: {
    text: "Checking with the provider whether your earlier payment went through…",
    retry: "fresh",
  },
  idempotency_key_in_flight: { text: "Still working on your last request…", retry: "same" },
  order_busy: { text: "Your order is busy with another request; trying again…", retry: "fresh" },
  channel_unsupported: { text: "This way of paying cannot be used for this order. Please pick another." },
  provider_unavailable: { text: "The payment provider did not answer. Please try again in a moment." },
  provider_busy: { text: "The payment provider is busy. Please try again in a moment." },
  provider_error: { text: "The payment provider refused the request. Please try another way of paying." },
  provider_rejected: { text: "The payment provider refused the request. Please try another way of paying." },
  rate_limited: { text: "Too many attempts; please wait a moment.", retry: "same" },
  unauthorized: { text: "This page's link is no longer valid. Please open it again from the shop." },
  network: { text: "No connection to the shop. Trying again…", retry: "same" },
};

export function explain(refusal) {
  const known = EXPLAINED[refusal.code] || (refusal.status === 429 ? EXPLAINED.rate_limited : null);
  return known || { text: refusal.message };
}

export function newKey() {
  return crypto.randomUUID
    ? crypto.randomUUID()
    : Date.now().toString(16) + "-" + Math.random().toString(16).slice(2);
}

export class PayonceApi {
  constructor(orderId, secret) {
    this.orderId = orderId;
    this.auth = { Authorization: "Bearer " + secret };
    this.intentKey = "payonce:intent:" + orderId;
  }

  async call(path, options = {}) {
    let response;
    try {
      response = await fetch(path, { ...options, headers: { ...this.auth, ...(options.headers || {}) } });
    } catch (error) {
      throw new Refusal(0, { code: "network", detail: String(error) });
    }
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const retryAfter = Number(response.headers.get("retry-after")) || undefined;
      throw new Refusal(response.status, typeof body === "object" ? body : null, retryAfter);
    }
    return body;
  }

  order(query = "", options = {}) {
    return this.call("/api/orders/" + this.orderId + query, options);
  }

  payments() {
    return this.call("/api/orders/" + this.orderId + "/payments").then((b) => b.payments);
  }

  options() {
    return this.call("/api/orders/" + this.orderId + "/payment-options").then((b) => b.options);
  }

  payment(id) {
    return this.call("/api/payments/" + id); // an open trade is asked about at the provider
  }

  svg(url) {
    return this.call(url);
  }

  // One pay intention, one key: kept in the tab until its answer arrives, so a refresh in the
  // middle sends the same request again (and gets the first one's answer) instead of a second.
  pendingIntent() {
    try {
      return JSON.parse(sessionStorage.getItem(this.intentKey) || "null");
    } catch {
      return null;
    }
  }

  async apply(intent) {
    sessionStorage.setItem(this.intentKey, JSON.stringify(intent));
    try {
      const payment = await this.call("/api/orders/" + this.orderId + "/payments", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": intent.key },
        body: JSON.stringify({ channel: intent.channel, platform: intent.platform }),
      });
      sessionStorage.removeItem(this.intentKey);
      return payment;
    } catch (error) {
      // A refusal is this intention's answer; an unanswered request is still pending.
      if (error.status >= 400 && error.status < 500 && error.code !== "idempotency_key_in_flight") {
        sessionStorage.removeItem(this.intentKey);
      }
      throw error;
    }
  }
}
