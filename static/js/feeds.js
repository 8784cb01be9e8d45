// The organiser's feed status panel (templates/organise/feeds.html): one row per source, kept
// live from GET /api/v1/events/{id}/feeds/status/stream (Server-Sent Events).

const root = document.getElementById("feeds");
const event = root.dataset.event;
const body = document.getElementById("feed-sources");
const summary = document.getElementById("feed-summary");

// Each cell carries its column's name: on a phone the table is a list of cards, one per source.
const LABELS = [...document.querySelectorAll(".feed-status thead th")].map((th) => th.textContent);
function cell(text, column) {
  const td = document.createElement("td");
  td.textContent = text;
  if (column !== undefined && LABELS[column]) td.dataset.label = LABELS[column];
  return td;
}
const money = (usd) => `$${usd.toFixed(2)}`;

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
    // This event's numbers first; the source's own counters run over every event since start.
    const e = s.event || { posts: 0, reads: null, read_cap: null, cost_usd: null };
    const posts = `${e.posts} for this event (all events since start: ${s.posts})`;
    const reads = e.read_cap === null ? "—" : `${e.reads} of ${e.read_cap} for this event (all events: ${s.reads})`;
    const cost = e.cost_usd === null ? "—" : `${money(e.cost_usd)} for this event (all events: ${money(s.cost_usd || 0)})`;
    // A failing source shows its error; one that recovered shows healthy, its recent errors kept.
    const recent = s.recent_errors || [];
    let error = "";
    if (s.state === "failing" && s.last_error) error = `${s.last_error} (${when(s.last_error_at)})`;
    else if (recent.length) {
      const last = recent[recent.length - 1];
      error = `Recovered. ${recent.length} recent error${recent.length === 1 ? "" : "s"}, the last: ${last.error} (${when(last.at)})`;
    }
    tr.append(cell(`${s.network} · ${s.name}`, 0), cell(state, 1), cell(when(s.since), 2), cell(posts, 3), cell(reads, 4),
      cell(cost, 5), cell(error, 6));
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
