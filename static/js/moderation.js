// Moderation of a session's polls and questions (templates/organise/moderation.html), for
// organisers (login cookie) and note-takers (their invite token, sent as a Bearer token).
// Refreshes from GET /api/v1/sessions/{id}/moderation whenever the stream says something changed.

import { LiveStream } from "./stream.js";
import { el, mergedText, plural, voterText } from "./audience-model.js";

const root = document.getElementById("moderation");
const session = root.dataset.session;
const token = root.dataset.token;
const status = document.getElementById("mod-status");

async function api(method, url, body) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  else headers["x-csrf-token"] = document.querySelector('meta[name="csrf-token"]').content;  // a login cookie is ambient
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
  return data;
}

function action(label, handler, cls = "button secondary") {
  const button = el("button", { type: "button", class: cls, text: label });
  button.addEventListener("click", async () => {
    try { await handler(); status.textContent = `${label}: done.`; await refresh(); } catch (err) { status.textContent = err.message; }
  });
  return button;
}

function renderPoll(poll) {
  const d = poll.data;
  const summary = d.poll_kind === "text"
    ? Object.entries(d.tally || {}).slice(0, 8).map(([w, n]) => `${w} ${n}`).join(", ")
    : d.options.map((o) => `${o.label}: ${(d.tally || {})[o.id] || 0}`).join(" · ");
  const actions = el("div", { class: "mod-actions" });
  if (d.state !== "open") actions.append(action("Open", () => api("POST", `/api/v1/polls/${poll.id}/state`, { state: "open" })));
  if (d.state === "open") actions.append(action("Close", () => api("POST", `/api/v1/polls/${poll.id}/state`, { state: "closed" })));
  // Votes cast while their address was over a burst limit are flagged (docs/protocol-votes.md):
  // the result can leave them out, or count them again; the ledger logs either.
  const discount = (on) => () => api("POST", `/api/v1/polls/${poll.id}/discount`,
    { discount: on, reason: (root.querySelector(`[data-poll="${poll.id}"] .discount-reason`) || {}).value || "" });
  let flagged = null;
  if (d.flagged) {
    const reason = el("input", { type: "text", class: "discount-reason", maxLength: 500, "aria-label": "Reason (optional, shown in the moderation log)", placeholder: "Reason (optional)" });
    actions.append(reason, d.discount_flagged
      ? action("Count flagged votes again", discount(false))
      : action(`Discount ${plural(d.flagged, "flagged vote")}`, discount(true), "button danger"));
    flagged = el("p", { class: "muted flagged", text: d.discount_flagged
      ? `${plural(d.flagged, "flagged vote")} discounted from the result`
      : `${plural(d.flagged, "vote")} flagged (cast in a burst from one address): counted` });
  }
  return el("li", { "data-poll": poll.id },
    el("span", { class: "mod-state", text: d.state }), " ", el("strong", { text: d.question }),
    el("p", { class: "muted", text: `${voterText(d.voters || 0, d.discounted)} · ${summary}` }), flagged, actions);
}

function renderQuestion(q, all) {
  const d = q.data;
  const actions = el("div", { class: "mod-actions" });
  const post = (body) => () => api("POST", `/api/v1/questions/${q.id}/moderation`, body);
  if (d.state === "merged") {
    return el("li", { "data-question": q.id },
      el("span", { class: "mod-state", text: `merged into #${d.merged_into}` }), el("p", { class: "muted", text: q.body }));
  }
  // A duplicate is merged into a question the audience sees: their upvotes combine.
  const targets = all.filter((o) => o.id !== q.id && (o.data.state === "visible" || o.data.state === "answered"));
  if (targets.length) {
    const select = el("select", { class: "merge-into", "aria-label": "Merge this question into" },
      ...targets.map((o) => el("option", { value: String(o.id), text: `#${o.id}: ${o.body.slice(0, 60)}` })));
    actions.append(select, action("Merge as duplicate", () => api("POST", `/api/v1/questions/${q.id}/moderation`, { action: "merge", into: Number(select.value) })));
  }
  if (d.state === "pending" || d.state === "hidden") actions.append(action("Approve", post({ action: "approve" })));
  if (d.state !== "hidden") actions.append(action("Hide", post({ action: "hide" }), "button danger"));
  if (d.state !== "answered") actions.append(action("Mark answered", post({ action: "answer" })));
  actions.append(d.pinned ? action("Unpin", post({ action: "unpin" })) : action("Pin: answering now", post({ action: "pin" })));
  return el("li", { "data-question": q.id },
    el("span", { class: "mod-state", text: `${d.state}${d.pinned ? " · pinned" : ""} · ${plural(d.votes, "vote")}` }),
    el("p", { text: q.body }), el("p", { class: "muted", text: q.name || "Anonymous" }),
    d.merged && d.merged.length ? el("p", { class: "muted merged-note", text: `${mergedText(d.merged.length)} (#${d.merged.join(", #")})` }) : null, actions);
}

async function refresh() {
  const data = await api("GET", `/api/v1/sessions/${encodeURIComponent(session)}/moderation`);
  // A reason being typed survives the refresh that every vote brings.
  const typed = [...root.querySelectorAll("[data-poll] .discount-reason")].map((input) => [input.closest("[data-poll]").dataset.poll, input.value, input === document.activeElement]);
  document.getElementById("mod-polls").replaceChildren(...data.polls.slice().reverse().map(renderPoll));
  for (const [poll, value, focused] of typed) {
    const input = root.querySelector(`[data-poll="${poll}"] .discount-reason`);
    if (!input) continue;
    input.value = value;
    if (focused) input.focus();
  }
  const order = { pending: 0, visible: 1, answered: 2, hidden: 3, merged: 4 };
  const questions = data.questions.slice().sort((a, b) => (order[a.data.state] - order[b.data.state]) || (b.data.votes - a.data.votes));
  document.getElementById("mod-questions").replaceChildren(...questions.map((q) => renderQuestion(q, questions)));
  document.getElementById("mod-flags").replaceChildren(...data.flags.map((f) =>
    el("li", { text: f.kind === "fresh_ids"
      ? `${f.at.slice(11, 19)}: more than ${f.limit} votes in a minute from brand-new participants at ${f.ip} (a script?)`
      : `${f.at.slice(11, 19)}: more than ${f.limit} votes in a minute from ${f.ip}` })));
  document.getElementById("no-flags").hidden = data.flags.length > 0;
}

document.getElementById("poll-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { question: form.question.value, kind: form.kind.value, audience: form.audience.value, open: true };
  if (body.kind === "single" || body.kind === "multiple") body.options = form.options.value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (form.duration_seconds.value) body.duration_seconds = Number(form.duration_seconds.value);
  try {
    await api("POST", `/api/v1/sessions/${encodeURIComponent(session)}/polls`, body);
    form.reset();
    status.textContent = "Poll created and opened.";
    await refresh();
  } catch (err) { status.textContent = err.message; }
});

let timer = null;
function soon() { clearTimeout(timer); timer = setTimeout(() => refresh().catch(() => {}), 300); }

refresh().catch((err) => { status.textContent = err.message; });
const stream = new LiveStream({ session });
stream.addEventListener("change", soon);
stream.addEventListener("flag", soon);
stream.addEventListener("reload", soon);
stream.start();
