// Moderating a session's social posts (templates/organise/social.html), for organisers (login
// cookie) and note-takers (invite token as a Bearer token). The queue refreshes whenever the
// session's stream says it changed (an unsequenced `feed.queue` message) and after each action.
// One key per decision: a approve, r reject, u approve the author, b block the account, j/k move.

import { LiveStream } from "./stream.js";
import { el } from "./audience-model.js";
import { confirmAction } from "./confirm.js";

const root = document.getElementById("social");
const session = root.dataset.session;
const eventId = root.dataset.event;
const token = root.dataset.token;
const quotable = token && !root.dataset.feed;  // nobody writes notes into the event's own feed
const status = document.getElementById("social-status");
const list = document.getElementById("social-queue");
let pending = [];
let focus = 0;

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function api(method, url, body) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  else headers["x-csrf-token"] = csrfToken();  // a login cookie is ambient: prove this is our page
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
  return data;
}

const base = `/api/v1/sessions/${encodeURIComponent(session)}/feeds`;
const account = (p) => `${p.network}:${p.author_handle.toLowerCase()}`;

async function act(label, fn) {
  try { await fn(); status.textContent = `${label}: done.`; } catch (err) { status.textContent = `${label}: ${err.message}`; }
  await refresh();
}

const actions = {
  approve: (r) => act("Approved", () => api("POST", `${base}/posts/${r.post_row}`, { action: "approve" })),
  reject: (r) => act("Rejected", () => api("POST", `${base}/posts/${r.post_row}`, { action: "reject" })),
  author: (r) => act(`Approved ${r.post.author_handle} for the event`, () => api("POST", `/api/v1/events/${encodeURIComponent(eventId)}/feeds/rules`, { kind: "allow_author", value: account(r.post) })),
  block: async (r) => await confirmAction(`Block ${r.post.author_handle} for the whole event?`, "Block",
    "Their posts no longer reach any session of this event.") && act(`Blocked ${r.post.author_handle}`, () => api("POST", `/api/v1/events/${encodeURIComponent(eventId)}/feeds/rules`, { kind: "block_author", value: account(r.post) })),
  quote: async (r) => {
    try {
      const { markdown } = await api("GET", `${base}/posts/${r.post_row}/quote`);
      await api("POST", `/api/v1/sessions/${encodeURIComponent(session)}/capture`, { type: "note.create", client_id: crypto.randomUUID(), body: markdown });
      status.textContent = "Quoted into a note.";
    } catch (err) { status.textContent = `Quote: ${err.message}`; }
  },
};

function button(label, handler, cls = "button secondary") {
  const b = el("button", { type: "button", class: cls, text: label });
  b.addEventListener("click", handler);
  return b;
}

function postView(r) {
  const p = r.post;
  const media = p.media.map((m) => el("span", { class: "muted", text: ` [${m.type}${m.alt ? `: ${m.alt}` : ""}]` }));
  return el("div", { class: "social-mod-post" },
    el("p", {}, el("strong", { text: p.author_name || p.author_handle }), " ", el("span", { class: "muted", text: `@${p.author_handle} · ${p.network}` })),
    el("p", { class: "social-mod-text", text: p.text }), ...media);
}

function renderQueue() {
  document.getElementById("queue-count").textContent = pending.length ? `(${pending.length})` : "";
  document.getElementById("queue-empty").hidden = pending.length > 0;
  focus = Math.min(focus, Math.max(0, pending.length - 1));
  list.replaceChildren(...pending.map((r, i) => {
    const row = el("li", { "data-post": r.post_row, class: i === focus ? "focused" : "", tabIndex: -1 }, postView(r),
      el("div", { class: "mod-actions" },
        button("Approve (a)", () => actions.approve(r)),
        button("Reject (r)", () => actions.reject(r), "button danger"),
        button("Approve author (u)", () => actions.author(r)),
        button("Block account (b)", () => actions.block(r), "button danger"),
        quotable ? button("Quote into a note", () => actions.quote(r)) : null));
    return row;
  }));
}

// Reads can be answered out of order (a hint's and an action's, on a loaded server): an answer
// older than the one shown is dropped, or a post just blocked or approved would wait again.
let asked = 0;
let shown = 0;

async function refresh() {
  const mine = ++asked;
  const data = await api("GET", `${base}/queue`);
  if (mine < shown) return;
  shown = mine;
  pending = data.pending;
  document.getElementById("social-mode").textContent = data.moderate
    ? "New posts wait here for a moderator." : "New posts go straight into the stream; remove any that should not be there.";
  renderQueue();
  const toggle = document.getElementById("session-moderate");
  if (toggle) toggle.checked = data.moderate;
  document.getElementById("social-recent").replaceChildren(...data.recent.map((r) => el("li", { "data-post": r.post_row },
    el("span", { class: "mod-state", text: r.state + (r.deleted_upstream ? " · deleted upstream" : "") }), postView(r),
    r.state === "approved" ? el("div", { class: "mod-actions" }, button("Remove from the stream", () => act("Removed", () => api("POST", `${base}/posts/${r.post_row}`, { action: "remove" })), "button danger"),
      quotable ? button("Quote into a note", () => actions.quote(r)) : null) : null)));
}

document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input, textarea, select") || document.querySelector("dialog[open]") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const current = pending[focus];
  const key = ev.key.toLowerCase();
  if (key === "j") { focus = Math.min(focus + 1, pending.length - 1); renderQueue(); return; }
  if (key === "k") { focus = Math.max(focus - 1, 0); renderQueue(); return; }
  if (!current) return;
  const handler = { a: actions.approve, r: actions.reject, u: actions.author, b: actions.block }[key];
  if (handler) { ev.preventDefault(); handler(current); }
});

document.getElementById("block-word").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const word = ev.target.word.value.trim();
  if (!word) return;
  act(`Blocked "${word}"`, () => api("POST", `/api/v1/events/${encodeURIComponent(eventId)}/feeds/rules`, { kind: "block_word", value: word }));
  ev.target.reset();
});

const moderateToggle = document.getElementById("session-moderate");
if (moderateToggle) {
  moderateToggle.addEventListener("change", () => act(moderateToggle.checked ? "Posts now wait for a moderator" : "Posts now go straight in",
    () => api("POST", `${base}/policy`, { moderate: moderateToggle.checked })));
}

let timer = null;
function soon() { clearTimeout(timer); timer = setTimeout(() => refresh().catch(() => {}), 200); }

refresh().catch((err) => { status.textContent = err.message; });
const stream = new LiveStream({ session });
stream.addEventListener("feed.queue", soon);
stream.addEventListener("synced", soon);  // after every (re)connect: hints sent while away are not replayed
stream.addEventListener("change", soon);
stream.addEventListener("reload", soon);
stream.start();
