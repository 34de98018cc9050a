// Follows an order live: a WebSocket first (reconnected with backoff), long-polling when sockets
// do not get through, plain polling when long-polls do not either. Every message carries
// status_version; the caller ignores what is not newer than what it has shown.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const TIMING = {
  firstBackoffMs: 1000,
  maxBackoffMs: 30000,
  socketFailuresBeforeLongPoll: 2, // sockets that closed before their first message
  handshakeTimeoutMs: 5000,
  longPollWaitS: 25,
  longPollGraceS: 10, // a long-poll unanswered this long after its wait is given up
  silentSocketMs: 40000, // the server speaks at least every 15 s: a socket this quiet is dead
  longPollFailuresBeforePolling: 3,
  pollEveryMs: 2000,
  retrySocketAfterMs: 120000, // from long-poll or polling, try a socket again now and then
};

export function follow({ orderId, secret, api, version, done, onNews, onMode }) {
  let backoff = TIMING.firstBackoffMs;
  let socketFailures = 0;
  let mode = null;

  const setMode = (next) => {
    if (next !== mode) onMode((mode = next));
  };

  function socket() {
    if (typeof WebSocket === "undefined") return longPoll();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + location.host + "/api/orders/" + orderId + "/events?client_secret=" + encodeURIComponent(secret);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      return longPoll();
    }
    let heard = false; // the server always speaks first: the state at connect
    const handshake = setTimeout(() => heard || ws.close(), TIMING.handshakeTimeoutMs);
    let watchdog = null;
    ws.onmessage = (message) => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ws.close(), TIMING.silentSocketMs); // half-open: start again
      if (!heard) {
        heard = true;
        clearTimeout(handshake);
        socketFailures = 0;
        backoff = TIMING.firstBackoffMs;
        setMode("websocket");
      }
      try {
        onNews(JSON.parse(message.data));
      } catch (error) {
        console.warn("payonce: unreadable message", error);
      }
      if (done()) ws.close();
    };
    ws.onclose = () => {
      clearTimeout(handshake);
      clearTimeout(watchdog);
      if (done()) return setMode("done");
      if (!heard) socketFailures += 1;
      if (socketFailures >= TIMING.socketFailuresBeforeLongPoll) {
        longPoll();
        return;
      }
      setMode("reconnecting");
      const wait = backoff + Math.random() * (backoff / 2);
      backoff = Math.min(backoff * 2, TIMING.maxBackoffMs);
      setTimeout(socket, wait);
    };
  }

  async function longPoll() {
    setMode("long-poll");
    const started = Date.now();
    let failures = 0;
    while (failures < TIMING.longPollFailuresBeforePolling) {
      if (done()) return setMode("done");
      if (Date.now() - started > TIMING.retrySocketAfterMs) return retrySocket();
      try {
        const query = "?after_version=" + version() + "&wait=" + TIMING.longPollWaitS;
        const limit = (TIMING.longPollWaitS + TIMING.longPollGraceS) * 1000;
        onNews(await api.order(query, { signal: AbortSignal.timeout(limit) }));
        failures = 0;
      } catch (error) {
        failures += 1;
        await sleep(1000 * failures);
      }
    }
    return poll();
  }

  async function poll() {
    setMode("polling");
    const started = Date.now();
    while (Date.now() - started < TIMING.retrySocketAfterMs) {
      if (done()) return setMode("done");
      try {
        onNews(await api.order("", { signal: AbortSignal.timeout(TIMING.pollEveryMs * 5) }));
      } catch {
        // the next round asks again; the page keeps what it last showed
      }
      await sleep(TIMING.pollEveryMs);
    }
    return retrySocket();
  }

  function retrySocket() {
    socketFailures = 0;
    backoff = TIMING.firstBackoffMs;
    socket();
  }

  socket();
}
