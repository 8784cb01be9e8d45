// The organiser's feed status panel (templates/organise/feeds.html): one row per source, kept
// live from GET /api/v1/events/{id}/feeds/status/stream (Server-Sent Events).

const root = document.getElementById("feeds");
const event = root.dataset.event;
const body = document.getElementById("feed-sources");
const summary = document.getElementById("feed-summary");

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

const STATES = { running: "running", idle: "idle (no session collecting)", waiting: "waiting for the rate limit", failing: "failing", capped: "stopped at the read cap", off: "off", starting: "starting" };

function show(data) {
  const rows = data.sources.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.network = s.network;
    tr.dataset.state = s.state;
    let state = STATES[s.state] || s.state;
    if (s.state === "waiting" && s.until) state += ` until ${when(s.until)}`;
    if (s.detail && s.state !== "running" && s.state !== "idle") state += `: ${s.detail}`;
    const reads = s.read_cap === null ? "—" : `${s.reads} / ${s.read_cap}`;
    const cost = s.cost_usd === null ? "—" : `$${s.cost_usd.toFixed(2)}`;
    const error = s.last_error ? `${s.last_error} (${when(s.last_error_at)})` : "";
    tr.append(cell(`${s.network} · ${s.name}`), cell(state), cell(when(s.since)), cell(String(s.posts)), cell(reads), cell(cost), cell(error));
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const why = !data.enabled ? "Feeds are switched off (feeds.enabled)."
      : data.runs_elsewhere ? "The sources run in another app process, which has not reported their status yet."
      : "No source is configured (docs/feeds.md).";
    tr.append(cell(why));
    tr.firstChild.colSpan = 7;
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  const e = data.event;
  const collected = Object.entries(e.collected).map(([n, c]) => `${n} ${c}`).join(", ") || "none";
  summary.textContent = `Collected for this event: ${collected}. Waiting for moderation: ${e.pending}. X reads: ${e.x_reads} of ${e.x_read_cap} (about $${e.x_cost_usd.toFixed(2)}).`;
}

const source = new EventSource(`/api/v1/events/${encodeURIComponent(event)}/feeds/status/stream`);
source.addEventListener("status", (msg) => { try { show(JSON.parse(msg.data)); } catch { /* a bad frame: wait for the next */ } });

// Ask every source to poll now (on whichever process runs them), e.g. after a session went live.
document.getElementById("poll-now").addEventListener("click", async () => {
  const status = document.getElementById("poll-status");
  const response = await fetch(`/api/v1/events/${encodeURIComponent(event)}/feeds/poll`, {
    method: "POST", credentials: "same-origin",
    headers: { "x-csrf-token": document.querySelector('meta[name="csrf-token"]').content },
  }).catch(() => null);
  status.textContent = response && response.ok ? "Asked: the panel updates as the sources answer." : "Could not ask: try again.";
});

document.getElementById("event-moderate").addEventListener("change", async (ev) => {
  await fetch(`/api/v1/events/${encodeURIComponent(event)}/feeds/policy`, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": document.querySelector('meta[name="csrf-token"]').content },
    body: JSON.stringify({ moderate: ev.target.checked }),
  });
});
