// Live badges on the programme page. A small poll (every 30 s, paused while the tab is hidden)
// rather than a websocket per session: a programme can list dozens of sessions, state changes a
// few times a day, and a badge half a minute late costs nobody anything.

const POLL_MS = 30000;
const programme = document.getElementById("programme");
const liveList = document.getElementById("live-list");
const liveEmpty = document.getElementById("live-empty");
const LABELS = { live: "Live", ended: "Ended", scheduled: "" };
// The poll asks for ids and states only (a congress's ~1,000 sessions in full were 1.5 MB a
// poll); a live session's title and room come from its card, the live list, or once from the API.
const FIELDS = "id,state";
const named = new Map();
for (const li of liveList.querySelectorAll("li[data-session]")) {
  named.set(li.dataset.session, { title: li.dataset.title, room: li.dataset.room || "" });
}

async function nameOf(id) {
  if (named.has(id)) return named.get(id);
  const card = programme.querySelector(`a.session-card[data-session="${CSS.escape(id)}"]`);
  let found = null;
  if (card) {
    found = {
      title: card.querySelector(".session-card-title").textContent,
      room: card.querySelector(".session-card-room")?.textContent || "",
    };
  } else {
    const response = await fetch(`/api/v1/sessions/${encodeURIComponent(id)}`);
    if (response.ok) found = await response.json();
  }
  if (found) named.set(id, { title: found.title, room: found.room || "" });
  return found;
}

async function apply(sessions) {
  const live = [];
  for (const s of sessions) {
    const card = programme.querySelector(`a.session-card[data-session="${CSS.escape(s.id)}"]`);
    const badge = card?.querySelector("[data-state-badge]");  // a cancelled card keeps its own
    if (badge) {
      card.classList.remove("state-scheduled", "state-live", "state-ended");
      card.classList.add(`state-${s.state}`);
      badge.className = `state-badge state-${s.state}`;
      badge.textContent = LABELS[s.state] || "";
      badge.hidden = s.state === "scheduled";
    }
    if (s.state === "live") {
      const name = await nameOf(s.id);
      if (name) live.push({ id: s.id, ...name });
    }
  }
  liveList.replaceChildren(...live.map((s) => {
    const li = document.createElement("li");
    li.dataset.session = s.id;
    li.dataset.title = s.title;
    li.dataset.room = s.room;
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
    // Revalidated: an unchanged programme is a 304 (the browser's cache answers with its copy).
    const url = `/api/v1/events/${encodeURIComponent(programme.dataset.event)}/sessions?fields=${FIELDS}`;
    const response = await fetch(url, { cache: "no-cache" });
    if (response.ok) await apply((await response.json()).sessions);
  } catch { /* offline: try again next time */ }
}

if (programme) {
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
}
