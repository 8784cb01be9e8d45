// Live badges on the programme page. A small poll (every 30 s, paused while the tab is hidden)
// rather than a websocket per session: a programme can list dozens of sessions, state changes a
// few times a day, and a badge half a minute late costs nobody anything.

const POLL_MS = 30000;
const programme = document.getElementById("programme");
const liveList = document.getElementById("live-list");
const liveEmpty = document.getElementById("live-empty");
const LABELS = { live: "Live", ended: "Ended", scheduled: "" };

function apply(sessions) {
  const live = [];
  for (const s of sessions) {
    const card = programme.querySelector(`a.session-card[data-session="${CSS.escape(s.id)}"]`);
    if (card) {
      card.className = `session-card state-${s.state}`;
      const badge = card.querySelector("[data-state-badge]");
      badge.className = `state-badge state-${s.state}`;
      badge.textContent = LABELS[s.state] || "";
      badge.hidden = s.state === "scheduled";
    }
    if (s.state === "live") live.push(s);
  }
  liveList.replaceChildren(...live.map((s) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/sessions/${encodeURIComponent(s.id)}`;
    const badge = document.createElement("span");
    badge.className = "state-badge state-live";
    badge.textContent = "Live";
    a.append(badge, ` ${s.title}`);
    li.append(a);
    if (s.room) {
      const room = document.createElement("span");
      room.className = "muted";
      room.textContent = ` · ${s.room}`;
      li.append(room);
    }
    return li;
  }));
  liveEmpty.hidden = live.length > 0;
  document.getElementById("live-now").classList.toggle("is-empty", live.length === 0);
}

async function poll() {
  if (document.hidden) return;
  try {
    const response = await fetch(`/api/v1/events/${encodeURIComponent(programme.dataset.event)}/sessions`, { cache: "no-store" });
    if (response.ok) apply((await response.json()).sessions);
  } catch { /* offline: try again next time */ }
}

if (programme) {
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
}
