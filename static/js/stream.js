// LiveStream: the browser side of docs/protocol.md. Resumes from the last seq it saw, detects
// gaps, reconnects with exponential back-off and jitter, reloads a snapshot when told to.
// Events (detail = the message): hello, change, synced, presence, heartbeat, ack, error, pong,
// reload (detail = snapshot from /api/v1/sessions/{id}/items), state (detail = {state, attempt, delay}).

const FATAL = new Set([4400, 4401, 4403, 4404, 4410]);
const TRY_AGAIN_LATER = 1013;  // the server is full: its reason says "retry after N s"

// The wait a 1013's reason asks for, in ms (0 if it names none).
export function retryAfterMs(reason) {
  const match = /retry after (\d+(?:\.\d+)?) s/.exec(reason || "");
  return match ? Number(match[1]) * 1000 : 0;
}

export class LiveStream extends EventTarget {
  constructor({ session, path, epoch = "", seq = null, protocols = () => ["liveblog.v1"] }) {
    super();
    this.session = session;
    this.path = path || `/ws/v1/sessions/${encodeURIComponent(session)}`;
    this.epoch = epoch;
    this.seq = seq === null || seq === "" ? null : Number(seq);
    this.protocols = protocols;
    this.state = "idle";
    this.ws = null;
    this.attempt = 0;
    this.heartbeatMs = 15000;
    this.stopped = false;
    this.synced = false;
    this._timer = null;
    this._watchdog = null;
    this._online = () => this._reconnectNow();
    this._offline = () => { this._setState("offline"); if (this.ws) this.ws.close(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this._online);
    window.addEventListener("offline", this._offline);
    this._connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this._online);
    window.removeEventListener("offline", this._offline);
    clearTimeout(this._timer);
    clearTimeout(this._watchdog);
    if (this.ws) this.ws.close(1000);
    this._setState("stopped");
  }

  get isOpen() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.synced; }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  _url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams();
    if (this.seq !== null) params.set("since", String(this.seq));
    if (this.epoch) params.set("epoch", this.epoch);
    const query = params.toString();
    return `${scheme}//${location.host}${this.path}${query ? "?" + query : ""}`;
  }

  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, attempt: this.attempt, ...extra } }));
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  _connect() {
    if (this.stopped) return;
    clearTimeout(this._timer);
    this.synced = false;
    // While the browser knows it is offline, say so rather than flicker "reconnecting" on each try.
    this._setState(navigator.onLine === false ? "offline" : this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this._url(), this.protocols());
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event);
    ws.onerror = () => {};  // onclose follows and decides
  }

  _armWatchdog(ws) {
    clearTimeout(this._watchdog);
    // Nothing heard for 2.5 heartbeats: the connection is dead even if the socket says open.
    this._watchdog = setTimeout(() => { if (this.ws === ws) ws.close(4000); }, this.heartbeatMs * 2.5);
  }

  _onMessage(ws, event) {
    if (this.ws !== ws) return;
    this._armWatchdog(ws);
    let msg;
    try { msg = JSON.parse(event.data); } catch { return; }
    switch (msg.type) {
      case "hello":
        this.heartbeatMs = (msg.heartbeat || 15) * 1000;
        if (this.seq === null) this.seq = msg.since;
        this.epoch = msg.epoch;
        this._emit("hello", msg);
        break;
      case "change":
        if (this.seq !== null && msg.seq <= this.seq) return;  // already have it
        if (this.seq !== null && msg.seq !== this.seq + 1) {  // a hole: resume from what we have
          ws.close(4001);
          return;
        }
        this.seq = msg.seq;
        this._emit("change", msg);
        break;
      case "synced":
        this.synced = true;
        this.attempt = 0;
        this._setState("live");
        this._emit("synced", msg);
        break;
      case "heartbeat":
        if (this.synced && this.seq !== null && msg.seq > this.seq) { ws.close(4001); return; }
        this._emit("heartbeat", msg);
        break;
      case "reload":
        this._reload(msg);
        break;
      default:
        this._emit(msg.type, msg);
    }
  }

  async _reload(msg) {
    this._setState("reloading", { reason: msg.reason });
    try {
      const response = await fetch(`/api/v1/sessions/${encodeURIComponent(this.session)}/items`, { cache: "no-store" });
      if (!response.ok) throw new Error(`snapshot ${response.status}`);
      const snapshot = await response.json();
      this.epoch = snapshot.epoch;
      this.seq = snapshot.seq;
      this._emit("reload", snapshot);
    } catch (err) {
      // Try again on the next connection attempt.
    }
  }

  _onClose(ws, event) {
    if (this.ws !== ws) return;
    clearTimeout(this._watchdog);
    this.ws = null;
    this.synced = false;
    if (this.stopped) return;
    if (FATAL.has(event.code)) {
      this._setState("failed", { code: event.code, reason: event.reason });
      return;
    }
    // A full server names how long to stay away: at least that, and up to twice it, so the
    // room it shed does not come back in one wave.
    const hint = event.code === TRY_AGAIN_LATER ? retryAfterMs(event.reason) || 5000 : 0;
    this._scheduleReconnect(hint);
  }

  _scheduleReconnect(atLeast = 0) {
    if (this.stopped) return;
    this.attempt += 1;
    // Exponential back-off capped at 30 s, with full jitter so a room of clients does not
    // reconnect in lockstep after the wifi comes back.
    const base = Math.min(30000, 500 * 2 ** Math.min(this.attempt - 1, 6));
    const backoff = Math.round(base / 2 + Math.random() * base / 2);
    const delay = atLeast ? Math.max(backoff, Math.round(atLeast * (1 + Math.random()))) : backoff;
    this._setState(navigator.onLine === false ? "offline" : "reconnecting", { delay });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay);
  }

  _reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    this.attempt = 0;
    this._connect();
  }
}
