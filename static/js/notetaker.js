// The note-taker page (/n/{token}/sessions/{id}): keyboard-first composer, offline-first sending.
//
// Every note, edit and delete is a capture message with its own client_id. It is written to the
// IndexedDB outbox first, then shown as waiting, then sent over the capture socket when that is
// live. It leaves the outbox only when the server acknowledges it (or refuses it for good: then
// it stays on the page, and in the outbox as "failed", with its text). After every (re)connect
// the whole outbox is sent again in typed order with the same client_ids; the server answers a
// message it already has with duplicate:true, so nothing is lost and nothing is doubled.

import { LiveStream } from "./stream.js";
import { renderItem, localiseTimes, enableEmbeds, timeLabel } from "./items.js";
import { Outbox } from "./outbox.js";
import { asker } from "./confirm.js";
import { renderPreview, setImageSource } from "./mdpreview.js";

const root = document.getElementById("capture");
const $ = (id) => document.getElementById(id);
const composer = $("composer");
const note = $("note");
const postButton = $("post");
const keyButton = $("key-point");
const photoButton = $("add-photo");
const photoInput = $("photo-input");
const preview = $("preview");
const previewKey = $("preview-key");
const message = $("composer-message");
const itemsEl = $("items");
const noItems = $("no-items");
const connection = $("connection");
const connectionText = $("connection-text");
const outboxStatus = $("outbox-status");
const outboxCount = $("outbox-count");
const presenceList = $("presence-list");
const editingBar = $("editing");
const editingText = $("editing-text");
const failedBox = $("failed");
const failedList = $("failed-list");
const dialog = $("confirm-delete");

const session = root.dataset.session;
const token = root.dataset.token;
const myName = root.dataset.name;
const noteBytes = Number(root.dataset.noteBytes) || 65536;
const uploadBytes = Number(root.dataset.uploadBytes) || 10485760;
const scope = `${session}:${root.dataset.invite}`;
const MINE_KEY = `liveblog.mine.${scope}`;

// Errors after which a resend could succeed; any other refusal of a message is final.
const TRANSIENT = new Set(["internal", "unavailable", "overloaded", "rate_limited"]);

const outbox = new Outbox(scope);
const queue = [];           // outbox records in typed order (mirror of IndexedDB)
const notes = new Map();    // item id -> {id, client_id, body, key_point, author, typed_at}
const idByClient = new Map();
const mine = new Set(JSON.parse(localStorage.getItem(MINE_KEY) || "[]"));
let connectionNo = 0;       // increments on every "synced": a record is sent once per connection
let keyPoint = false;
let editing = null;         // {id, client_id} of the note being edited
let tabEscapes = false;     // after Esc, Tab leaves the text box instead of indenting
let stream = null;
let writes = Promise.resolve();
let writing = 0;            // messages typed but not yet in the outbox (a few ms): counted as waiting

// -- small helpers -----------------------------------------------------------------------------

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// What this page has seen since it was drawn: the stream's changes, with their seq, kept on the
// device. The service worker's offline copy of the page is from the last online load, so a reload
// while offline draws that copy and then replays these on top: a note deleted (or edited) since
// that copy was made stays deleted (or edited), never brought back. Changes the page already
// holds (seq up to its data-seq) are dropped at every load. Each change carries its item whole,
// so replaying the latest ones is right even when older ones were dropped for room.
const SEEN_KEY = `liveblog.seen.${root.dataset.session}`;
const SEEN_MAX = 2000;
const SEEN_WRITE_MS = 1000;  // the log is written to the device at most this often (and as the page goes)
let seen = null;             // the log in memory: read from the device once
let seenTimer = null;
function seenLog() {
  if (seen) return seen;
  try {
    const log = JSON.parse(localStorage.getItem(SEEN_KEY) || "null");
    if (log && log.epoch === root.dataset.epoch && Array.isArray(log.changes)) seen = log;
  } catch { /* unreadable: start again */ }
  if (!seen) seen = { epoch: root.dataset.epoch, changes: [] };
  return seen;
}
function writeSeen() {
  clearTimeout(seenTimer);
  seenTimer = null;
  if (!seen) return;
  for (let tries = 0; tries < 3; tries += 1) {
    try { localStorage.setItem(SEEN_KEY, JSON.stringify(seen)); return; } catch {
      seen.changes.splice(0, Math.ceil(seen.changes.length / 2));  // the device is full: keep the newest half
    }
  }
}
// A busy stream (posts arriving several a second) costs one write a second, not one per change.
function keepSeen(log) {
  seen = log;
  if (seenTimer === null) seenTimer = setTimeout(writeSeen, SEEN_WRITE_MS);
}
window.addEventListener("pagehide", writeSeen);
function rememberChange(msg) {
  // Only what this page shows (notes and posts; polls and questions live on the moderation page).
  if (!msg.item || typeof msg.seq !== "number" || !["note", "social", undefined].includes(msg.item.kind)) return;
  const log = seenLog();
  log.changes.push({ seq: msg.seq, item: msg.item });
  if (log.changes.length > SEEN_MAX) log.changes.splice(0, log.changes.length - SEEN_MAX);
  keepSeen(log);
}
// On load: forget what the page holds already, and replay what it missed since it was drawn.
// The stream still resumes from the page's own seq: showing an item again changes nothing.
function replaySeen(pageSeq) {
  const log = seenLog();
  log.changes = log.changes.filter((c) => c.seq > pageSeq).sort((a, b) => a.seq - b.seq);
  writeSeen();
  for (const change of log.changes) showItem(change.item);
}

function remember(clientId) {
  mine.add(clientId);
  try { localStorage.setItem(MINE_KEY, JSON.stringify(Array.from(mine).slice(-2000))); } catch { /* full */ }
}

const myRef = root.dataset.invite;
// Exact: the server says whose invite wrote each note. The local client-id list covers notes
// still waiting in the outbox, which the server has not seen yet.
function isMine(n) {
  if (!n) return false;
  if (n.author_ref) return n.author_ref === myRef;
  return Boolean(n.client_id && mine.has(n.client_id));
}

function say(text, kind = "info") {
  message.textContent = text;
  message.dataset.kind = kind;
}

function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

// -- status line -------------------------------------------------------------------------------

const STATE_TEXT = {
  connecting: "Connecting…",
  reconnecting: "Reconnecting… Your notes are kept on this device meanwhile.",
  offline: "Offline. Keep typing: notes are kept on this device and sent when the connection is back.",
  live: "Connected. Notes are sent as you post them.",
  reloading: "Catching up with the stream…",
  stopped: "Stopped.",
};
const FAILED_TEXT = {
  4401: "Your invite link is no longer valid (it may have been revoked). Your notes are kept on this device; ask the organiser for a new link.",
  4403: "Your invite does not cover this session. Your notes are kept on this device.",
  4404: "This session no longer exists. Your notes are kept on this device.",
  4410: "The organiser revoked your invite: notes are no longer sent. Your notes are kept on this device; ask the organiser for a new link.",
};

let connectionDetail = { state: "idle" };

function showState(detail) {
  connectionDetail = detail;
  const state = detail.state;
  const ended = root.dataset.state === "ended";
  connection.dataset.state = state;
  connection.dataset.sessionState = root.dataset.state;
  connectionText.textContent = state === "failed"
    ? FAILED_TEXT[detail.code] || `The server refused the connection (${detail.code}).`
    : state === "live" && ended ? "Session ended: posting is closed."
    : STATE_TEXT[state] || state;
  root.dataset.connection = state;
}

// An ended session takes no more notes: say so, and stop offering to post (and to edit). It is
// learnt live from the stream's session.updated change, and undone if the session is reopened.
function showSessionState(state) {
  root.dataset.state = state;
  const badge = $("session-state");
  badge.className = `state-badge state-${state}`;
  badge.textContent = { live: "Live", ended: "Ended" }[state] || "Scheduled";
  const ended = state === "ended";
  $("ended-notice").hidden = !ended;
  for (const el of [note, postButton, keyButton, photoButton]) el.disabled = ended;
  if (ended && editing) stopEditing(true);
  showState(connectionDetail);
}

function updateCount() {
  const live = queue.filter((r) => r.status !== "failed");
  const photos = live.filter((r) => r.message.type === "media.upload").length;
  const waiting = live.length + writing;
  const failed = queue.filter((r) => r.status === "failed").length;
  outboxStatus.dataset.count = String(waiting);
  root.dataset.waiting = String(waiting);
  // Only what is on disk is "waiting"; what is still being written says so (a reload or a closed
  // tab in those few milliseconds would lose it), so the note-taker is never told early.
  const notesWaiting = live.length - photos;
  const parts = [];
  if (notesWaiting) parts.push(plural(notesWaiting, "note", "notes"));
  if (photos) parts.push(plural(photos, "photo", "photos"));
  let text = waiting === 0 ? (failed ? "" : "All notes sent") : parts.length ? `${parts.join(" and ")} waiting to be sent` : "";
  if (writing) text += `${text ? " · " : ""}${plural(writing, "note", "notes")} being saved on this device`;
  if (failed) text += `${text ? " · " : ""}${plural(failed, "note", "notes")} not saved`;
  outboxStatus.dataset.saving = String(writing);
  outboxStatus.dataset.failed = String(failed);
  if (!outbox.durable) text += " · this browser is not keeping them if the tab closes";
  outboxCount.textContent = text;
  failedBox.hidden = failed === 0;
}

function showPresence(msg) {
  presenceList.replaceChildren();
  const names = msg.note_takers || [];
  for (const name of names) {
    const chip = document.createElement("span");
    chip.className = "nt-person";
    chip.textContent = name === myName ? `${name} (you)` : name;
    presenceList.append(chip);
  }
  if (!names.length) presenceList.append("No note-taker connected");
  const viewers = Math.max(0, (msg.viewers || 0) - names.length);
  const v = document.createElement("span");
  v.className = "nt-viewers";
  v.textContent = ` · ${plural(viewers, "viewer", "viewers")}`;
  presenceList.append(v);
}

// -- the list of notes -------------------------------------------------------------------------

function articles() { return Array.from(itemsEl.querySelectorAll(":scope > article.item")); }

// Newest first: by typed time, then id; pending notes (no id yet) count as newest for their time.
function newer(a, b) {
  if (a.dataset.sort !== b.dataset.sort) return a.dataset.sort > b.dataset.sort;
  return Number(a.dataset.id || Infinity) > Number(b.dataset.id || Infinity);
}

function place(el) {
  const next = articles().find((kid) => kid !== el && newer(el, kid));
  if (next) next.before(el); else itemsEl.append(el);
  noItems.hidden = true;
}

function ownActions(el, n) {
  if (!isMine(n) || el.querySelector(".nt-own")) return;
  const box = document.createElement("div");
  box.className = "nt-own";
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "button small secondary";
  edit.dataset.action = "edit";
  edit.textContent = "Edit";
  const del = document.createElement("button");
  del.type = "button";
  del.className = "button small danger";
  del.dataset.action = "delete";
  del.textContent = "Delete";
  box.append(edit, " ", del);
  el.append(box);
}

function setBadge(el, text, kind) {
  let badge = el.querySelector(".nt-badge");
  if (!text) { if (badge) badge.remove(); return; }
  if (!badge) {
    badge = document.createElement("span");
    badge.className = "nt-badge";
    el.querySelector(".item-meta").prepend(badge, " ");
  }
  badge.dataset.kind = kind;
  badge.textContent = text;
}

// A note still in the outbox: the same card, with the composer's preview of its text.
function pendingCard(record) {
  const m = record.message;
  const el = renderItem({ id: null, kind: "note", client_id: m.client_id, key_point: m.key_point, author: myName, typed_at: m.typed_at, html: "" });
  el.classList.add("pending");
  el.querySelector(".item-body").append(renderPreview(m.body));
  return el;
}

function cardFor(record) {
  const m = record.message;
  if (m.type === "note.create") {
    // Once the stream has shown the note, its card is the real one (the ack may still be due).
    const id = idByClient.get(m.client_id);
    return (id !== undefined && document.getElementById(`item-${id}`))
      || itemsEl.querySelector(`article.pending[data-client-id="${CSS.escape(m.client_id)}"]`);
  }
  const id = m.item_id ?? idByClient.get(m.target_client_id);
  if (id !== undefined) return document.getElementById(`item-${id}`);
  return itemsEl.querySelector(`article[data-client-id="${CSS.escape(m.target_client_id)}"]`);
}

function showRecord(record) {
  const m = record.message;
  if (record.status === "failed") { showFailed(record); return; }
  if (m.type === "media.upload") return;  // shown inside the notes that use it
  let el = cardFor(record);
  if (m.type === "note.create" && !el) { el = pendingCard(record); place(el); }
  if (!el) return;
  const label = { "note.create": "Waiting", "note.update": "Edit waiting", "note.delete": "Delete waiting" }[m.type];
  setBadge(el, record.sentOn === connectionNo && stream && stream.isOpen ? "Sending…" : label, "waiting");
  el.classList.toggle("deleting", m.type === "note.delete");
}

function showItem(item) {
  // Polls and questions belong to the moderation page, not among the notes.
  if (item.kind && item.kind !== "note" && item.kind !== "social") return;
  const old = document.getElementById(`item-${item.id}`)
    || (item.client_id && itemsEl.querySelector(`article.pending[data-client-id="${CSS.escape(item.client_id)}"]`));
  if (item.deleted) {
    notes.delete(item.id);
    if (old) old.remove();
    noItems.hidden = articles().length > 0;
    return;
  }
  const n = { id: item.id, client_id: item.client_id, body: item.body, key_point: item.key_point, author: item.author, author_ref: item.author_ref, typed_at: item.typed_at };
  notes.set(item.id, n);
  if (item.client_id) idByClient.set(item.client_id, item.id);
  const el = renderItem(item);
  ownActions(el, n);
  if (old) {
    const hadFocus = old.contains(document.activeElement);
    old.replaceWith(el);
    if (old.dataset.sort !== el.dataset.sort) place(el);
    if (hadFocus) el.focus();
  } else {
    place(el);
  }
  // An edit or delete of this note may still be waiting.
  for (const r of queue) if (r.status !== "failed" && r.message.type !== "note.create" && cardFor(r) === el) showRecord(r);
}

// -- the outbox --------------------------------------------------------------------------------

function send(record) {
  if (!stream || !stream.isOpen || record.status === "failed" || record.sentOn === connectionNo) return;
  if (record.message.type === "media.upload") { uploadPhoto(record); return; }
  if (stream.send(record.message)) {
    record.sentOn = connectionNo;
    showRecord(record);
  }
}

// Everything waiting, in typed order. A note that shows a photo not yet uploaded waits for it,
// and so does any edit or delete of that note, so the server sees them in the order they were made.
function flush() {
  const held = new Set();
  for (const record of queue) {
    const m = record.message;
    if (m.type !== "media.upload" && record.status !== "failed"
        && (LOCAL_PHOTO.test(m.body || "") || (m.target_client_id && held.has(m.target_client_id)))) {
      held.add(m.client_id);
      const orphan = orphanPhoto(m.body || "");
      if (orphan) rewriteWaiting(orphan, null).then(flush);  // its file is gone: send the words
      continue;
    }
    send(record);
  }
}

// A photo a note refers to whose file is no longer in the outbox (a draft restored from another
// tab, say). Photo records are written before the notes that use them, so this is never a photo
// still on its way in.
function orphanPhoto(body) {
  for (const [path] of body.matchAll(new RegExp(LOCAL_PHOTO, "g"))) {
    const id = path.slice("/media/local-".length);
    if (!queue.some((r) => r.client_id === id && r.message.type === "media.upload" && r.status !== "failed")) return id;
  }
  return null;
}

// -- photos in the outbox ----------------------------------------------------------------------
// A photo is written to the outbox (the file itself, in IndexedDB) the moment it is added, and
// the note refers to it as /media/local-<client id>. It is uploaded whenever the page is
// connected; then every waiting note (and the text box) gets the real /media/<id>. The server
// keeps one copy per content hash, so an upload repeated after a crash or a lost answer is
// stored once.

const LOCAL_PHOTO = /\/media\/local-[0-9a-f-]{36}/;
const localPhotoPath = (clientId) => `/media/local-${clientId}`;
const localPhotos = new Map();  // client id -> object URL of the file on this device

setImageSource((path) => {
  const id = path.startsWith("/media/local-") ? path.slice("/media/local-".length) : null;
  if (id === null) return path;
  return localPhotos.get(id) || "data:,";  // gone: an empty image rather than a request
});

function rememberPhoto(record) {
  if (!localPhotos.has(record.client_id) && record.message.blob) {
    localPhotos.set(record.client_id, URL.createObjectURL(record.message.blob));
  }
}

// Transient: try again later (no connection, server busy). Anything else is a refusal for good.
const UPLOAD_RETRY = new Set([0, 408, 429, 500, 502, 503, 504]);

async function uploadPhoto(record) {
  if (record.uploading) return;
  record.uploading = true;
  const m = record.message;
  let status = 0;
  let data = {};
  try {
    const response = await fetch(`/api/v1/sessions/${encodeURIComponent(session)}/media`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": m.content_type },
      body: m.blob,
    });
    status = response.status;
    data = await response.json().catch(() => ({}));
  } catch (err) {
    status = 0;  // offline or the connection dropped: the next connection tries again
  }
  record.uploading = false;
  if (status === 201 && data.url) {
    await photoUploaded(record, data.url);
  } else if (UPLOAD_RETRY.has(status)) {
    // Again on the next connection, or after a back-off if this one stays up.
    record.sentOn = connectionNo;
    record.tries = (record.tries || 0) + 1;
    const retryOn = connectionNo;
    setTimeout(() => {
      if (record.sentOn === retryOn && connectionNo === retryOn) { record.sentOn = -1; flush(); }
    }, Math.min(60000, 1000 * 2 ** record.tries));
  } else {
    await photoRefused(record, (data.error && data.error.message) || `the upload failed (${status})`);
  }
}

function replacePhoto(text, clientId, replacement) {
  const path = localPhotoPath(clientId);
  if (replacement !== null) return text.split(path).join(replacement);
  // Refused: take the whole ![...](path) out.
  return text.split(new RegExp(String.raw`!\[[^\]]*\]\(${path}\)\n?`)).join("");
}

async function rewriteWaiting(clientId, replacement) {
  for (const r of queue) {
    if (r.message.body && r.message.body.includes(localPhotoPath(clientId))) {
      r.message = { ...r.message, body: replacePhoto(r.message.body, clientId, replacement) };
      try { await outbox.put(r); } catch { /* kept in memory; sent while the tab is open */ }
    }
  }
  if (note.value.includes(localPhotoPath(clientId))) {
    const { selectionStart: s, selectionEnd: e } = note;
    const before = note.value.length;
    note.value = replacePhoto(note.value, clientId, replacement);
    const shift = note.value.length - before;
    note.setSelectionRange(Math.max(0, s + shift), Math.max(0, e + shift));
    saveDraft();
    refreshPreview();
  }
}

async function photoUploaded(record, url) {
  // Notes first, then the photo's record: a crash in between uploads it again, harmlessly.
  await rewriteWaiting(record.client_id, url);
  await outbox.remove(record.client_id);
  takeRecord(record.client_id);
  updateCount();
  flush();
}

async function photoRefused(record, reason) {
  await rewriteWaiting(record.client_id, null);
  record.status = "failed";
  record.error = { code: "photo_refused", message: reason };
  await outbox.markFailed(record.client_id, record.error);
  say(`A photo could not be added: ${reason}. The note is sent without it.`, "error");
  showFailed(record);
  updateCount();
  flush();
}

// Write first, then show, then send. Writes are serialised so the outbox keeps typed order.
function enqueue(msg) {
  if (msg.type === "note.create") remember(msg.client_id);
  writing += 1;
  updateCount();
  writes = writes.then(async () => {
    let record;
    try {
      record = await outbox.add(msg.client_id, msg);
    } catch (err) {
      // Could not write to disk (quota?): keep it in memory rather than lose it.
      record = { client_id: msg.client_id, message: msg, status: "waiting" };
      say("This note could not be saved on this device; it will still be sent while this tab stays open.", "error");
    }
    queue.push(record);
    writing -= 1;
    if (msg.type === "media.upload") rememberPhoto(record);
    updateCount();
    showRecord(record);
    flush();
  }).catch((err) => {
    // Keep the chain alive: one failure must not hold up every later note.
    console.error("outbox", err);
  });
  return writes;
}

function takeRecord(clientId) {
  const i = queue.findIndex((r) => r.client_id === clientId);
  return i < 0 ? null : queue.splice(i, 1)[0];
}

async function onAck(ack) {
  const record = queue.find((r) => r.client_id === ack.client_id);
  if (!record) return;
  if (record.message.type === "note.create") idByClient.set(ack.client_id, ack.item_id);
  await outbox.remove(ack.client_id);
  takeRecord(ack.client_id);
  updateCount();
  const el = document.getElementById(`item-${ack.item_id}`) || cardFor(record);
  if (el && el.classList.contains("pending")) setBadge(el, "Saved", "saved");
  else if (el) setBadge(el, null);
}

async function onError(err) {
  const record = err.client_id && queue.find((r) => r.client_id === err.client_id);
  if (!record) {
    if (err.code) say(`The server said: ${err.message || err.code}`, "error");
    return;
  }
  if (TRANSIENT.has(err.code)) {
    record.sentOn = -1;  // send again on this connection, a little later
    setTimeout(() => send(record), 3000);
    return;
  }
  record.status = "failed";
  record.error = { code: err.code, message: err.message };
  await outbox.markFailed(record.client_id, record.error);
  const el = cardFor(record);
  if (el && el.classList.contains("pending")) el.remove();
  else if (el) { setBadge(el, null); el.classList.remove("deleting"); }
  noItems.hidden = articles().length > 0;
  showFailed(record);
  updateCount();
}

function showFailed(record) {
  if (failedList.querySelector(`[data-client-id="${CSS.escape(record.client_id)}"]`)) return;
  const m = record.message;
  const li = document.createElement("li");
  li.dataset.clientId = record.client_id;
  const why = document.createElement("p");
  why.className = "nt-why";
  const what = { "note.create": "Note", "note.update": "Edit", "note.delete": "Delete", "media.upload": "Photo" }[m.type] || "Message";
  why.textContent = `${what} not saved: ${(record.error && (record.error.message || record.error.code)) || "refused"}`;
  li.append(why);
  if (m.body) {
    const text = document.createElement("textarea");
    text.readOnly = true;
    text.rows = Math.min(6, m.body.split("\n").length + 1);
    text.value = m.body;
    text.className = "nt-failed-text";
    text.setAttribute("aria-label", "Text of the note that was not saved");
    li.append(text);
  }
  const actions = document.createElement("div");
  actions.className = "nt-actions";
  if (m.body) {
    for (const [action, label] of [["copy", "Copy text"], ["restore", "Put back in the box"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "button small secondary";
      b.dataset.action = action;
      b.textContent = label;
      actions.append(b);
    }
  }
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "button small secondary";
  dismiss.dataset.action = "dismiss";
  dismiss.textContent = "Dismiss";
  actions.append(dismiss);
  li.append(actions);
  failedList.append(li);
  failedBox.hidden = false;
}

failedList.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const li = button.closest("li");
  const record = queue.find((r) => r.client_id === li.dataset.clientId);
  const body = record ? record.message.body || "" : "";
  if (button.dataset.action === "copy") {
    const text = li.querySelector("textarea");
    text.select();
    try { await navigator.clipboard.writeText(body); say("Copied."); } catch { say("Selected: press Ctrl+C to copy."); }
    return;
  }
  if (button.dataset.action === "restore") {
    note.value = note.value ? `${note.value}\n${body}` : body;
    refreshPreview();
    note.focus();
  }
  // restore and dismiss both forget the failed record (its text is now in the box, or unwanted)
  if (record) { await outbox.remove(record.client_id); takeRecord(record.client_id); }
  li.remove();
  updateCount();
  if (!failedList.children.length) failedBox.hidden = true;
});

// -- composing ---------------------------------------------------------------------------------

function refreshPreview() {
  preview.replaceChildren();
  if (note.value.trim() === "") {
    const p = document.createElement("p");
    p.className = "nt-muted";
    p.textContent = editing ? "Empty: an empty note cannot be saved (use Delete instead)." : "Your note will look like this.";
    preview.append(p);
  } else {
    preview.append(renderPreview(note.value));
  }
  previewKey.hidden = !keyPoint;
}

function setKeyPoint(on) {
  keyPoint = on;
  keyButton.setAttribute("aria-pressed", String(on));
  refreshPreview();
  saveDraft();
}

// The note being typed is kept on this device at every keystroke, so a reload, a crash or a
// sleeping laptop never loses half a thought. Only new notes: an edit in progress leaves the
// draft alone, and the draft comes back when the edit ends.
const DRAFT_KEY = `liveblog.draft.${scope}`;

function saveDraft() {
  if (editing) return;
  try {
    if (note.value.trim() === "") localStorage.removeItem(DRAFT_KEY);
    else localStorage.setItem(DRAFT_KEY, JSON.stringify({ body: note.value, key_point: keyPoint }));
  } catch { /* storage full or blocked: the outbox still protects posted notes */ }
}

function restoreDraft() {
  let draft = null;
  try { draft = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null"); } catch { draft = null; }
  if (!draft || typeof draft.body !== "string") return;
  note.value = draft.body;
  keyPoint = Boolean(draft.key_point);
  keyButton.setAttribute("aria-pressed", String(keyPoint));
  refreshPreview();
}

function startEditing(n) {
  editing = { id: n.id, client_id: n.client_id };
  note.value = n.body;
  setKeyPoint(Boolean(n.key_point));
  editingBar.hidden = false;
  editingText.textContent = `Editing your note from ${timeLabel(n.typed_at)}: Enter saves, Esc cancels`;
  root.dataset.editing = "1";
  postButton.textContent = "Save edit";
  note.focus();
  note.setSelectionRange(note.value.length, note.value.length);
  refreshPreview();
}

function stopEditing(clear = true) {
  editing = null;
  editingBar.hidden = true;
  delete root.dataset.editing;
  postButton.textContent = "Post";
  if (clear) {
    note.value = "";
    keyPoint = false;  // not setKeyPoint(): that would save the empty box over the kept draft
    keyButton.setAttribute("aria-pressed", "false");
    restoreDraft();
  }
  refreshPreview();
}

// The body and flags of a note, including ones still in the outbox.
function lookup(el) {
  if (el.dataset.id) {
    const n = notes.get(Number(el.dataset.id));
    if (n) return n;
  }
  const record = el.dataset.clientId && queue.find((r) => r.client_id === el.dataset.clientId);
  if (record) {
    const m = record.message;
    return { id: null, client_id: m.client_id, body: m.body, key_point: m.key_point, author: myName, typed_at: m.typed_at };
  }
  return null;
}

function lastOwnNote() {
  for (const el of articles()) {  // newest first
    if (el.classList.contains("deleting")) continue;
    const n = lookup(el);
    if (n && isMine(n)) return n;
  }
  return null;
}

function target(n) {
  return n.id ? { item_id: n.id } : { target_client_id: n.client_id };
}

function submit() {
  if (root.dataset.state === "ended") { say("This session has ended: posting is closed."); return; }
  const body = note.value;
  if (body.trim() === "") {
    say(editing ? "An empty note cannot be saved: use Delete to remove it." : "Type something first.");
    return;
  }
  const size = new TextEncoder().encode(body).length;
  if (size > noteBytes) {
    say(`This note is too long (${size} bytes; the limit is ${noteBytes}). Split it into two.`, "error");
    return;
  }
  const client_id = uuid();
  const msg = editing
    ? { type: "note.update", client_id, ...target(editing), body, key_point: keyPoint }
    : { type: "note.create", client_id, body, key_point: keyPoint, typed_at: new Date().toISOString() };
  say("");
  if (!editing) {
    note.value = "";
    saveDraft();  // posted: the draft is now in the outbox
  }
  stopEditing(true);
  enqueue(msg);
}

const askDeleteDialog = asker(dialog, "delete");  // each question its own answer (confirm.js)

async function askDelete(n) {
  if (!n) return;
  $("confirm-text").textContent = n.body;
  const returnFocus = document.activeElement;
  if (await askDeleteDialog()) {
    if (editing) stopEditing(true);
    enqueue({ type: "note.delete", client_id: uuid(), ...target(n) });
    say("Note deleted.");
    note.focus();
  } else if (returnFocus && document.contains(returnFocus)) {
    returnFocus.focus();
  } else {
    note.focus();
  }
}

// Tab / Shift+Tab: indent or outdent every line the selection touches, two spaces per level.
function indent(outdent) {
  const { value, selectionStart: s, selectionEnd: e } = note;
  const start = value.lastIndexOf("\n", s - 1) + 1;
  const lastChar = e > s && value[e - 1] === "\n" ? e - 1 : e;
  let end = value.indexOf("\n", lastChar);
  if (end < 0) end = value.length;
  const lines = value.slice(start, end).split("\n");
  let firstDelta = 0;
  let total = 0;
  const changed = lines.map((line, i) => {
    let out = line;
    if (outdent) {
      if (line.startsWith("  ")) out = line.slice(2);
      else if (/^[-*+] /.test(line)) out = line.slice(2);
    } else if (/^ *[-*+] /.test(line)) {
      out = `  ${line}`;
    } else if (line.trim() !== "" || lines.length === 1) {
      out = `- ${line.replace(/^ +/, "")}`;
    }
    const delta = out.length - line.length;
    if (i === 0) firstDelta = delta;
    total += delta;
    return out;
  });
  note.setRangeText(changed.join("\n"), start, end, "preserve");
  const newStart = Math.max(start, s + firstDelta);
  note.setSelectionRange(newStart, s === e ? newStart : Math.max(newStart, e + total));
  refreshPreview();
}

// Shift+Enter inside a bullet starts the next bullet at the same depth.
function newLine() {
  const { value, selectionStart: s, selectionEnd: e } = note;
  const start = value.lastIndexOf("\n", s - 1) + 1;
  const bullet = /^( *)([-*+]) /.exec(value.slice(start, s));
  const insert = bullet ? `\n${bullet[1]}${bullet[2]} ` : "\n";
  note.setRangeText(insert, s, e, "end");
  refreshPreview();
}

note.addEventListener("keydown", (event) => {
  if (event.isComposing) return;
  const mod = event.ctrlKey || event.metaKey;
  if (event.key !== "Tab") tabEscapes = false;
  if (event.key === "Enter" && !event.shiftKey && !mod && !event.altKey) {
    event.preventDefault();
    submit();
  } else if (event.key === "Enter" && event.shiftKey && !mod && !event.altKey) {
    event.preventDefault();
    newLine();
  } else if (event.key === "Tab" && !mod && !event.altKey) {
    if (tabEscapes || note.value === "") return;  // let focus move on
    event.preventDefault();
    indent(event.shiftKey);
  } else if ((event.key === "k" || event.key === "K") && (mod || event.altKey) && !event.shiftKey) {
    event.preventDefault();
    setKeyPoint(!keyPoint);
    say(keyPoint ? "Marked as a key point." : "No longer a key point.");
  } else if (event.key === "ArrowUp" && ((note.value === "" && !editing && !mod && !event.shiftKey) || (event.altKey && !mod))) {
    const n = lastOwnNote();
    if (!n) { if (event.altKey) say("You have not posted a note yet."); return; }
    event.preventDefault();
    startEditing(n);
  } else if (event.key === "Escape") {
    tabEscapes = true;
    if (editing) { event.preventDefault(); stopEditing(true); say("Edit cancelled."); }
  }
});

note.addEventListener("input", () => { refreshPreview(); saveDraft(); });
composer.addEventListener("submit", (event) => { event.preventDefault(); submit(); note.focus(); });
keyButton.addEventListener("click", () => { setKeyPoint(!keyPoint); note.focus(); });
$("cancel-edit").addEventListener("click", () => { stopEditing(true); note.focus(); });
$("delete-edited").addEventListener("click", () => {
  if (!editing) return;
  const el = editing.id ? document.getElementById(`item-${editing.id}`)
    : itemsEl.querySelector(`article[data-client-id="${CSS.escape(editing.client_id)}"]`);
  askDelete(el && lookup(el));
});

itemsEl.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const n = lookup(button.closest("article"));
  if (!n) return;
  if (button.dataset.action === "edit") startEditing(n);
  else if (button.dataset.action === "delete") askDelete(n);
});

// -- photos ------------------------------------------------------------------------------------

function insertAtCaret(text) {
  const { value, selectionStart: s, selectionEnd: e } = note;
  const before = s > 0 && value[s - 1] !== "\n" ? "\n" : "";
  note.setRangeText(`${before}${text}`, s, e, "end");
  refreshPreview();
}

// Adding a photo works offline too: it goes into the outbox with the notes (see above).
function upload(file) {
  if (!file.type.startsWith("image/")) { say("Only photos (JPEG, PNG, WebP, GIF) can be added.", "error"); return; }
  if (file.size > uploadBytes) { say(`That photo is too large (limit ${Math.round(uploadBytes / 1048576)} MB).`, "error"); return; }
  if (root.dataset.state === "ended") { say("This session has ended: posting is closed."); return; }
  const client_id = uuid();
  localPhotos.set(client_id, URL.createObjectURL(file));
  insertAtCaret(`![](${localPhotoPath(client_id)})`);
  saveDraft();
  enqueue({ type: "media.upload", client_id, content_type: file.type, blob: file, typed_at: new Date().toISOString() });
  say(stream && stream.isOpen
    ? "Photo added. To describe it for people who cannot see it, type between the [ ]. Enter posts the note."
    : "Photo added: it is kept on this device and sent with the note when the connection is back. Type a description between the [ ].");
  note.focus();
}

photoButton.addEventListener("click", () => photoInput.click());
photoInput.addEventListener("change", () => {
  for (const file of photoInput.files) upload(file);
  photoInput.value = "";
});
note.addEventListener("paste", (event) => {
  const files = Array.from(event.clipboardData ? event.clipboardData.files : []).filter((f) => f.type.startsWith("image/"));
  if (!files.length) return;
  event.preventDefault();
  files.forEach(upload);
});
composer.addEventListener("dragover", (event) => {
  if (event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files")) {
    event.preventDefault();
    composer.classList.add("dropping");
  }
});
composer.addEventListener("dragleave", () => composer.classList.remove("dropping"));
composer.addEventListener("drop", (event) => {
  composer.classList.remove("dropping");
  const files = Array.from(event.dataTransfer ? event.dataTransfer.files : []).filter((f) => f.type.startsWith("image/"));
  if (!files.length) return;
  event.preventDefault();
  files.forEach(upload);
});

// -- offline page (service worker) -------------------------------------------------------------

async function enableOffline() {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/n/" });
    const registration = await navigator.serviceWorker.ready;
    if (!navigator.onLine) return;
    const assets = performance.getEntriesByType("resource")
      .map((entry) => entry.name)
      .filter((url) => new URL(url).origin === location.origin && new URL(url).pathname.startsWith("/static/"));
    const reply = new MessageChannel();
    const done = new Promise((resolve) => { reply.port1.onmessage = (event) => resolve(event.data); });
    registration.active.postMessage({ type: "cache-page", page: location.href, assets }, [reply.port2]);
    const result = await done;
    if (result && result.ok) {
      root.dataset.offlineReady = "1";
      $("offline-ready").hidden = false;
    }
  } catch (err) {
    // No offline page then; the outbox still works while the tab is open.
  }
}

// -- start -------------------------------------------------------------------------------------

async function start() {
  for (const n of JSON.parse($("notes-data").textContent || "[]")) {
    notes.set(n.id, n);
    if (n.client_id) idByClient.set(n.client_id, n.id);
  }
  for (const el of articles()) {
    const n = notes.get(Number(el.dataset.id));
    if (n) { el.dataset.clientId = n.client_id; ownActions(el, n); }
  }
  localiseTimes(itemsEl);
  enableEmbeds(itemsEl);

  try {
    await outbox.open();
  } catch (err) {
    say("This browser does not let the page keep notes on the device (private window?): keep this tab open until they are sent.", "error");
  }
  try {
    for (const record of await outbox.all()) queue.push(record);
  } catch (err) { /* empty outbox then */ }
  if (root.dataset.seq !== "") replaySeen(Number(root.dataset.seq));
  for (const record of queue) if (record.message.type === "media.upload") rememberPhoto(record);
  for (const record of queue) showRecord(record);
  updateCount();

  showSessionState(root.dataset.state);
  refreshPreview();
  note.focus();

  stream = new LiveStream({
    session,
    path: `/ws/v1/sessions/${encodeURIComponent(session)}/capture`,
    epoch: root.dataset.epoch,
    seq: root.dataset.seq,
    protocols: () => ["liveblog.v1", `liveblog.token.${token}`],
  });
  stream.addEventListener("state", (event) => {
    showState(event.detail);
    if (event.detail.state !== "live") for (const r of queue) showRecord(r);
  });
  stream.addEventListener("change", (event) => {
    const msg = event.detail;
    if (msg.item) { showItem(msg.item); rememberChange(msg); }
    if (msg.op === "session.updated" && msg.session) showSessionState(msg.session.state);
  });
  stream.addEventListener("synced", () => {
    connectionNo += 1;
    flush();
  });
  stream.addEventListener("ack", (event) => { onAck(event.detail); });
  stream.addEventListener("error", (event) => { onError(event.detail); });
  stream.addEventListener("presence", (event) => showPresence(event.detail));
  stream.addEventListener("reload", (event) => {
    // Too far behind to replay: draw the whole stream again from the snapshot. What was kept of
    // the changes seen no longer joins up with the page: an offline reload shows the last online copy.
    keepSeen({ epoch: root.dataset.epoch, changes: [] });
    for (const el of articles()) if (!el.classList.contains("pending")) el.remove();
    notes.clear();
    for (const item of event.detail.items) showItem(item);
    for (const r of queue) showRecord(r);
    if (event.detail.session) showSessionState(event.detail.session.state);
  });
  restoreDraft();
  stream.start();
  enableOffline();
}

start();
