// The annotation socket (ws/annotate/, contract: annotation/labeling/protocol.schema.json):
// numbered messages, replies matched by `seq`, automatic reconnect with backoff and a ping
// that keeps idle proxies from closing the line.
//
// Nothing is queued or replayed here. The server is the source of truth: after a reconnect the
// caller sends `open` again (from `onOpen`) and rebuilds its state from `opened`. A message
// sent while the line is down is refused (send returns null) rather than delivered late
// against state that may have changed.

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 10000;
const PING_MS = 20000;
// Close codes after which retrying cannot help: the session is gone or the user may not annotate.
const FINAL_CLOSE_CODES = new Set([4401, 4403]);

/** Raised for a request whose line closed before it was answered. */
export class SocketClosed extends Error {
  constructor(message = "the connection to the server was lost") {
    super(message);
    this.name = "SocketClosed";
  }
}

/** An `error` reply to a request, carrying the server's code. */
export class ServerError extends Error {
  constructor(reply) {
    super(reply.message || reply.code || "server error");
    this.name = "ServerError";
    this.code = reply.code || "server_error";
    this.seq = reply.seq;
  }
}

export class AnnotateSocket {
  /**
   * onMessage(msg): every parsed server message, after any request promise settled.
   * onOpen(): the line is (re)open; send `open` here.
   * onStatus({state: "connecting" | "open" | "retrying" | "closed" | "denied", retryIn, pingMs, code}).
   */
  constructor({ path = "/ws/annotate/", onMessage, onOpen, onStatus }) {
    this.path = path;
    this.onMessage = onMessage;
    this.onOpen = onOpen;
    this.onStatus = onStatus;
    this.seq = 0; // grows across reconnects: the contract asks for an ever-increasing seq
    this.socket = null;
    this.closed = false;
    this.retry = RETRY_FIRST_MS;
    this.timer = null;
    this.pingTimer = null;
    this.pingMs = null;
    // seq -> {type, objectId, t0, resolve, reject}: every client message gets a reply.
    this.pending = new Map();
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.closed) return;
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.status("connecting");
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    } catch (error) {
      console.warn("websocket unavailable", error);
      this.schedule();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.retry = RETRY_FIRST_MS;
      this.status("open");
      this.startPing();
      this.onOpen();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.stopPing();
      this.failPending();
      if (FINAL_CLOSE_CODES.has(event?.code)) {
        this.closed = true;
        this.status("denied", 0, event.code);
        return;
      }
      this.schedule();
    };
    socket.onerror = () => {}; // onclose follows and schedules the retry
  }

  /** Reconnect now instead of waiting for the timer (the "retry now" button). */
  reconnect() {
    if (this.closed || this.socket) return;
    this.retry = RETRY_FIRST_MS;
    this.connect();
  }

  schedule() {
    if (this.closed) return;
    const delay = this.retry;
    this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
    this.status("retrying", Math.round(delay / 1000));
    this.timer = setTimeout(() => this.connect(), delay);
  }

  status(state, retryIn = 0, code = null) {
    this.onStatus?.({ state, retryIn, pingMs: this.pingMs, code });
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      const t0 = performance.now();
      this.request("ping").then(
        () => {
          this.pingMs = Math.round(performance.now() - t0);
          if (this.isOpen) this.status("open");
        },
        () => {},
      );
    }, PING_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /**
   * Send {type, seq, ...fields}. Returns the seq, or null when the line is down.
   * `objectId` only labels the pending entry (for the caller's bookkeeping).
   */
  send(type, fields = {}, { objectId = null } = {}) {
    return this.sendTracked(type, fields, objectId, null);
  }

  /** Send and wait for the reply with the same seq (the final one, for masks). */
  request(type, fields = {}, { objectId = null } = {}) {
    return new Promise((resolve, reject) => {
      const seq = this.sendTracked(type, fields, objectId, { resolve, reject });
      if (seq === null) reject(new SocketClosed("not connected to the server"));
    });
  }

  sendTracked(type, fields, objectId, waiter) {
    if (!this.isOpen) return null;
    this.seq += 1;
    const seq = this.seq;
    this.pending.set(seq, { type, objectId, t0: performance.now(), ...waiter });
    this.socket.send(JSON.stringify({ ...fields, type, seq }));
    return seq;
  }

  /** The pending entry of `seq` (its type, object and send time), if still unanswered. */
  sent(seq) {
    return this.pending.get(seq);
  }

  /** Forget a pending seq that will never be answered (a prompt the server superseded). */
  forget(seq) {
    const entry = this.pending.get(seq);
    if (!entry) return;
    this.pending.delete(seq);
    entry.resolve?.(null);
  }

  /** Messages still waiting for their answer (pings left out: they come and go on a timer). */
  get pendingCount() {
    let n = 0;
    for (const entry of this.pending.values()) if (entry.type !== "ping") n += 1;
    return n;
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn("unreadable message from the annotation socket", text);
      return;
    }
    if (!msg || typeof msg !== "object") return;
    const entry = typeof msg.seq === "number" ? this.pending.get(msg.seq) : undefined;
    // A mask answer may come in several messages (one per changed object); `final` ends it.
    const done = entry && (msg.type !== "mask" || msg.final !== false);
    if (done) this.pending.delete(msg.seq);
    try {
      this.onMessage(msg, entry);
    } finally {
      if (done) {
        if (msg.type === "error") entry.reject?.(new ServerError(msg));
        else entry.resolve?.(msg);
      }
    }
  }

  failPending() {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) entry.reject?.(new SocketClosed());
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.stopPing();
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
      this.socket = null;
    }
    this.failPending();
    this.status("closed");
  }
}
