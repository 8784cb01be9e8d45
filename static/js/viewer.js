// The public viewer (/sessions/{id}) and the embed (/embed/sessions/{id}).
// The page arrives with the items rendered on the server as of data-seq; LiveStream resumes from
// there, so nothing is shown twice. Items are kept in typed order (data-sort, then id); a reader
// who has scrolled away from the newest end gets an "N new items" button instead of a jump.
// A long stream arrives with its newest page only: older pages load as the reader scrolls
// (older.js), read from the server when they load; live changes to items on pages not loaded yet
// wait, with their seq, and apply on top of the page if it was read before them.

import { LiveStream } from "./stream.js";
import { renderItem, summary, localiseTimes, enableEmbeds, showReactions } from "./items.js";
import { enableCopyButtons } from "./copy.js";
import { followMore, parseCards } from "./older.js";

const ORDER_KEY = "liveblog.viewer.order";
const root = document.getElementById("stream");
const itemsEl = document.getElementById("items");
const connection = document.getElementById("connection");
const connectionText = connection ? connection.querySelector(".connection-text") : null;
const viewersEl = document.getElementById("viewers");
const newButton = document.getElementById("new-items");
const announcer = document.getElementById("announcer");
const keyPointsEl = document.getElementById("key-points");
const noKeyPoints = document.getElementById("no-key-points");
const noItems = document.getElementById("no-items");
const noMatch = document.getElementById("no-match");
const orderToggle = document.getElementById("order-toggle");
const pauseToggle = document.getElementById("pause-toggle");
const pausedCount = document.getElementById("paused-count");
const olderLink = document.getElementById("older-link");
const olderMore = document.getElementById("older-more");

let order = "newest";
let filter = "all";
let sessionState = root ? root.dataset.state || "live" : "live";
let connectionState = "idle";

// -- ordering ----------------------------------------------------------------------------------

function articles() { return Array.from(itemsEl.querySelectorAll(":scope > article.item")); }

// Chronological comparison: typed time (ISO strings of one format compare as text), then id.
function chrono(a, b) {
  if (a.dataset.sort !== b.dataset.sort) return a.dataset.sort < b.dataset.sort ? -1 : 1;
  return Number(a.dataset.id) - Number(b.dataset.id);
}

function before(a, b) { return order === "newest" ? chrono(a, b) > 0 : chrono(a, b) < 0; }

function place(el) {
  const kids = articles();
  if (order === "oldest") {
    // New items usually belong at the end: search from there.
    for (let i = kids.length - 1; i >= 0; i -= 1) {
      if (!before(el, kids[i])) { kids[i].after(el); return; }
    }
    itemsEl.prepend(el);
    return;
  }
  const next = kids.find((kid) => before(el, kid));
  if (next) next.before(el); else itemsEl.append(el);
}

function applyOrder() {
  itemsEl.dataset.order = order;
  const sorted = articles().sort((a, b) => (order === "newest" ? chrono(b, a) : chrono(a, b)));
  itemsEl.append(...sorted);
  if (orderToggle) orderToggle.textContent = order === "newest" ? "Newest first" : "Oldest first";
  // Older items load at the older end: below when newest first, above when oldest first.
  if (olderMore && olderMore.isConnected) {
    if (order === "newest") itemsEl.after(olderMore); else itemsEl.before(olderMore);
  }
}

// -- older pages -------------------------------------------------------------------------------
// `boundary`: the oldest card the server has sent (its place: data-sort, data-id). Items placed
// before it are on pages not loaded yet: their live changes wait in `deferred` (id -> {seq,
// item}; item null for a deletion) until the page that holds them is in.

let older = null;
let olderDone = false;
let boundary = null;
const deferred = new Map();

function olderLeft() { return older !== null && !olderDone; }

function placeOf(item) { return { dataset: { sort: item.typed_at || "", id: String(item.id) } }; }

function beyondLoaded(item) { return olderLeft() && boundary !== null && chrono(placeOf(item), boundary) < 0; }

// A change to an item on a page not loaded yet waits (true); any other applies now (false).
function holdForOlderPage(seq, item) {
  if (!olderLeft() || !CARD_KINDS.has(item.kind) || document.getElementById(`item-${item.id}`)) return false;
  if (item.deleted) { deferred.set(item.id, { seq, item: null }); return false; }
  if (!beyondLoaded(item)) return false;
  deferred.set(item.id, { seq, item });
  noteKeyPoint(item);
  return true;
}

function noteDeletion(seq, id) {
  if (olderLeft() && !document.getElementById(`item-${id}`)) deferred.set(id, { seq, item: null });
}

// A page read at `seq` already has every change up to it; later ones apply on top.
function applyDeferred(seq) {
  for (const [id, entry] of Array.from(deferred)) {
    if (entry.seq <= seq) { deferred.delete(id); continue; }
    if (entry.item === null) {
      removeItem(id);
      if (!olderLeft()) deferred.delete(id);
    } else if (!beyondLoaded(entry.item)) {
      deferred.delete(id);
      upsert(entry.item, { live: false });
    }
  }
}

async function loadOlder() {
  const url = `${olderLink.dataset.url}?before=${encodeURIComponent(olderLink.dataset.before)}`;
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`older items: ${response.status}`);
  const page = await response.json();
  const cards = parseCards(page.html, "article.item");
  for (const el of cards) {
    if (document.getElementById(el.id)) continue;  // arrived live meanwhile: that copy is as new
    localiseTimes(el);
    for (const button of el.querySelectorAll("button.play-embed[hidden]")) button.hidden = false;
    place(el);
    const counts = reactions.get(Number(el.dataset.id));
    if (counts && counts.seq > page.seq) showReactions(el, counts.likes, counts.boosts);
  }
  if (cards.length) boundary = cards[cards.length - 1];  // newest first: the last is the oldest
  const more = page.before !== null;
  if (more) olderLink.dataset.before = String(page.before);
  else olderDone = true;  // every item is here: what still waits applies now
  applyDeferred(page.seq);
  if (!more) deferred.clear();
  updateNewButton();
  refresh();
  return more;
}

function finishOlder() {
  if (older) older.stop();
  olderDone = true;
  deferred.clear();
}

function startOlder() {
  if (!olderLink) return;
  const shown = articles();
  boundary = shown.length ? shown.sort(chrono)[0] : null;
  older = followMore(olderLink, { load: loadOlder, auto: () => order === "newest" });
}

// -- where the reader is -----------------------------------------------------------------------

const SLACK = 80;  // px: "near enough" to the newest end still counts as reading the newest items

function atNewestEnd() {
  const rect = itemsEl.getBoundingClientRect();
  if (order === "newest") return rect.top > -SLACK;
  return rect.bottom < window.innerHeight + SLACK;
}

function pendingItems() { return Array.from(itemsEl.querySelectorAll(":scope > article.is-pending")); }

function updateNewButton() {
  const count = pendingItems().length;
  newButton.hidden = count === 0;
  newButton.textContent = count === 1 ? "1 new item" : `${count} new items`;
  newButton.classList.toggle("at-bottom", order === "oldest");
}

function showPending({ focus = false } = {}) {
  const pending = pendingItems();
  if (!pending.length) return;
  for (const el of pending) el.classList.remove("is-pending");
  updateNewButton();
  refresh();
  const newest = pending.sort(chrono)[pending.length - 1];
  if (focus && newest) {
    newest.focus({ preventScroll: true });
    newest.scrollIntoView({ block: order === "newest" ? "start" : "end" });
  }
}

// -- filtering, empty states, key points --------------------------------------------------------

function matches(el) {
  if (filter === "all") return true;
  if (filter === "key") return el.classList.contains("key-point");
  if (filter === "photos") return el.dataset.media === "1";
  return el.dataset.kind === filter;
}

function refresh() {
  const all = articles();
  let shown = 0;
  for (const el of all) {
    const hit = matches(el);
    el.classList.toggle("is-filtered", !hit);
    if (hit && !el.classList.contains("is-pending")) shown += 1;
  }
  if (noItems) noItems.hidden = all.length > 0;
  if (noMatch) noMatch.hidden = all.length === 0 || shown > 0 || filter === "all";
  if (keyPointsEl) {
    for (const el of all) {
      if (!el.classList.contains("key-point")) { keyPoints.delete(Number(el.dataset.id)); continue; }
      const text = (el.querySelector(".item-body")?.textContent || "").replace(/\s+/g, " ").trim();
      keyPoints.set(Number(el.dataset.id), { sort: el.dataset.sort, text: text.length > 120 ? `${text.slice(0, 119)}…` : text });
    }
    const keys = Array.from(keyPoints, ([id, kp]) => ({ id, ...kp, dataset: { sort: kp.sort, id: String(id) } })).sort(chrono);
    keyPointsEl.replaceChildren(...keys.map((kp) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      // One not loaded yet: its permalink, which the server sends to the page that holds it.
      a.href = document.getElementById(`item-${kp.id}`) ? `#item-${kp.id}` : `/sessions/${encodeURIComponent(root.dataset.session)}/items/${kp.id}`;
      a.textContent = kp.text;
      li.dataset.id = String(kp.id);
      li.dataset.sort = kp.sort;
      li.append(a);
      return li;
    }));
    if (noKeyPoints) noKeyPoints.hidden = keys.length > 0;
  }
}

// Key points of the whole session, loaded or not: as the page came (every one), then as changed.
const keyPoints = new Map();
for (const li of keyPointsEl ? keyPointsEl.querySelectorAll("li[data-id]") : []) {
  keyPoints.set(Number(li.dataset.id), { sort: li.dataset.sort || "", text: li.textContent.trim() });
}

function noteKeyPoint(item) {
  if (!keyPointsEl || !CARD_KINDS.has(item.kind)) return;
  if (item.deleted || !item.key_point) keyPoints.delete(item.id);
  else keyPoints.set(item.id, { sort: item.typed_at || "", text: summary(item, 120) });
}

function setFilter(value) {
  filter = value;
  for (const chip of root.querySelectorAll("[data-filter]")) {
    chip.setAttribute("aria-pressed", String(chip.dataset.filter === value));
  }
  refresh();
}

// -- announcements (a polite summary, never the whole item) -------------------------------------

let heard = [];
let announceTimer = null;

// While the tab is hidden, its title counts what arrived: "(3) Keynote · Liveblog". Seeing the
// tab again clears it.
const baseTitle = document.title;
let unseen = 0;
function countUnseen() {
  if (!document.hidden) return;
  unseen += 1;
  document.title = `(${unseen}) ${baseTitle}`;
}
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unseen = 0;
  document.title = baseTitle;
});

function announce(item) {
  heard.push(item);
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    const batch = heard;
    heard = [];
    if (batch.length === 1) {
      const one = batch[0];
      const what = one.key_point ? "Key point" : "New note";
      announcer.textContent = `${what} from ${one.author}: ${summary(one, 100)}`;
    } else if (batch.length > 1) {
      announcer.textContent = `${batch.length} new items`;
    }
  }, 800);
}

// -- applying the stream -----------------------------------------------------------------------

function removeItem(id) {
  keyPoints.delete(Number(id));
  const el = document.getElementById(`item-${id}`);
  if (el && el.parentElement === itemsEl) el.remove();
}

// The latest likes and boosts of each note (id -> {seq, likes, boosts}): a note on a page not
// loaded yet gets them when its page, read before they changed, comes in.
const reactions = new Map();

function react(msg) {
  reactions.set(msg.item_id, msg);
  const el = document.getElementById(`item-${msg.item_id}`);
  if (el && el.parentElement === itemsEl) showReactions(el, msg.likes, msg.boosts);
}

// Polls and questions are shown by the audience panel (audience.js), not as cards here.
const CARD_KINDS = new Set(["note", "social"]);

function upsert(item, { live }) {
  if (!CARD_KINDS.has(item.kind)) return;
  if (item.deleted) { removeItem(item.id); return; }
  noteKeyPoint(item);
  const existing = document.getElementById(`item-${item.id}`);
  const el = renderItem(item);
  if (existing && existing.parentElement === itemsEl) {
    const counts = existing.querySelector(":scope > .item-reactions");  // an edit keeps them
    if (counts) el.append(counts);
    if (existing.classList.contains("is-pending")) el.classList.add("is-pending");
    if (existing.classList.contains("is-target")) el.classList.add("is-target");
    const hadFocus = document.activeElement === existing;
    existing.remove();
    place(el);
    if (hadFocus) el.focus({ preventScroll: true });
    return;
  }
  const following = atNewestEnd();
  if (live && !following) el.classList.add("is-pending");
  place(el);
  if (live) {
    el.classList.add("just-arrived");
    announce(item);
    countUnseen();
    if (following && order === "oldest") el.scrollIntoView({ block: "end" });
  }
}

function applyChange(msg) {
  // Other parts of the page (the comment thread) follow the same stream.
  document.dispatchEvent(new CustomEvent("liveblog:change", { detail: msg }));
  switch (msg.op) {
    case "item.created":
    case "item.updated":
      if (!holdForOlderPage(msg.seq, msg.item)) upsert(msg.item, { live: msg.op === "item.created" });
      break;
    case "item.deleted":
    case "item.redacted":  // a change of an item removed since (docs/protocol.md, "Redaction")
      noteDeletion(msg.seq, msg.item ? msg.item.id : msg.item_id);
      removeItem(msg.item ? msg.item.id : msg.item_id);
      break;
    case "session.updated":
      if (msg.session) updateSession(msg.session);
      return;
    case "note.reactions":  // likes and boosts on the fediverse (docs/protocol.md)
      react(msg);
      return;
    default:
      return;
  }
  updateNewButton();
  refresh();
}

function updateSession(session) {
  if (session.state && session.state !== sessionState) {
    sessionState = session.state;
    root.dataset.state = session.state;
    showState({ state: connectionState });  // "Live updates on" no longer fits an ended session
  }
  const badge = document.getElementById("session-state");
  if (badge) {
    // A cancelled session (docs/programme.md) says so until it is restored.
    badge.className = `state-badge state-${session.cancelled ? "cancelled" : session.state}`;
    badge.textContent = session.cancelled ? "Cancelled" : { live: "Live", ended: "Ended" }[session.state] || "Scheduled";
  }
  const title = document.getElementById("session-title");
  if (title && session.title) title.textContent = session.title;
  const banner = document.getElementById("archive-banner");  // the way to the knowledge page
  if (banner && session.state) banner.hidden = session.state !== "ended";
}

function replaceAll(snapshot) {
  finishOlder();  // a snapshot holds every item
  keyPoints.clear();
  for (const el of articles()) el.remove();
  for (const item of snapshot.items || []) upsert(item, { live: false });
  reactions.clear();
  for (const [id, counts] of Object.entries(snapshot.reactions || {})) {
    react({ item_id: Number(id), seq: snapshot.seq, ...counts });
  }
  if (snapshot.session) updateSession(snapshot.session);
  root.dataset.epoch = snapshot.epoch;
  root.dataset.seq = String(snapshot.seq);
  updateNewButton();
  refresh();
}

// -- pausing (WCAG 2.2.2) ----------------------------------------------------------------------
// While paused, changes to the stream wait here, in order, and the count says how many; resuming
// applies them all. The session's own state (ended, title) still applies at once.

let paused = false;
let held = [];

function onStreamChange(msg) {
  if (paused && msg.op !== "session.updated") {
    held.push(msg);
    showPaused();
    return;
  }
  applyChange(msg);
}

function showPaused() {
  if (!pauseToggle) return;
  pauseToggle.setAttribute("aria-pressed", String(paused));
  root.dataset.paused = String(paused);
  const n = held.length;
  pausedCount.textContent = !paused ? "" : n === 0 ? "Paused" : n === 1 ? "Paused · 1 update waiting" : `Paused · ${n} updates waiting`;
}

function setPaused(on) {
  paused = on;
  if (!paused) {
    const batch = held;
    held = [];
    for (const msg of batch) applyChange(msg);
    announcer.textContent = batch.length ? `Updates on: ${batch.length === 1 ? "1 update" : `${batch.length} updates`} shown` : "Updates on";
  } else {
    announcer.textContent = "Updates paused";
  }
  showPaused();
}

// -- connection state --------------------------------------------------------------------------

let countdown = null;

const ENDED_TEXT = "This session has ended: these are all its notes.";

function showState({ state, delay, code }) {
  clearInterval(countdown);
  connectionState = state;
  connection.dataset.state = state;
  connection.dataset.sessionState = sessionState;
  // The countdown ticks in an aria-hidden span so the status region is announced once per state.
  let tickEl = connection.querySelector(".countdown");
  if (!tickEl) {
    tickEl = document.createElement("span");
    tickEl.className = "countdown";
    tickEl.setAttribute("aria-hidden", "true");
    connectionText.after(tickEl);
  }
  tickEl.textContent = "";
  const say = (text) => { if (connectionText.textContent !== text) connectionText.textContent = text; };
  switch (state) {
    case "connecting": say("Connecting…"); break;
    case "live": say(sessionState === "ended" ? ENDED_TEXT : "Live updates on"); break;
    case "reloading": say("Catching up…"); break;
    case "offline": say("Offline: catching up when the connection is back"); break;
    case "reconnecting": {
      say("Reconnecting");
      if (!delay) { tickEl.textContent = "…"; break; }
      const until = Date.now() + delay;
      const tick = () => {
        const left = Math.ceil((until - Date.now()) / 1000);
        tickEl.textContent = left > 0 ? ` in ${left} s…` : "…";
        if (left <= 0) clearInterval(countdown);
      };
      tick();
      countdown = setInterval(tick, 1000);
      break;
    }
    case "failed":
      say(code === 4404 ? "This session no longer exists." : "Live updates stopped. Reload the page to try again.");
      break;
    default: say("");
  }
}

function showViewers(count) {
  if (!viewersEl || typeof count !== "number") return;
  // Counts from 20 up come rounded (docs/protocol.md, heartbeat): "about".
  viewersEl.textContent = count < 20 ? ` · ${count} watching` : ` · about ${count.toLocaleString("en")} watching`;
}

// -- permalinks and keyboard -------------------------------------------------------------------

function showTarget() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id.startsWith("item-")) return;
  const el = document.getElementById(id);
  if (!el && olderLeft() && /^item-\d+$/.test(id)) {  // on a page not loaded: the page that holds it
    location.replace(`/sessions/${encodeURIComponent(root.dataset.session)}/items/${id.slice(5)}`);
    return;
  }
  if (!el || el.parentElement !== itemsEl) return;
  if (el.classList.contains("is-pending")) showPending();
  if (el.classList.contains("is-filtered")) setFilter("all");
  for (const other of itemsEl.querySelectorAll(".is-target")) other.classList.remove("is-target");
  el.classList.add("is-target");
  el.focus({ preventScroll: true });
  el.scrollIntoView({ block: "center" });
}

function visibleItems() {
  return articles().filter((el) => !el.classList.contains("is-pending") && !el.classList.contains("is-filtered"));
}

function step(direction) {
  const list = visibleItems();
  if (!list.length) return;
  const current = list.indexOf(document.activeElement);
  const next = current === -1 ? 0 : Math.min(list.length - 1, Math.max(0, current + direction));
  list[next].focus({ preventScroll: true });
  list[next].scrollIntoView({ block: "nearest" });
}

function onKey(event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const t = event.target;
  if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  if (event.key === "j") { step(1); event.preventDefault(); }
  else if (event.key === "k") { step(-1); event.preventDefault(); }
  else if (event.key === "n") { showPending({ focus: true }); event.preventDefault(); }
  else if (event.key === "p" && pauseToggle) { setPaused(!paused); event.preventDefault(); }
}

// -- start -------------------------------------------------------------------------------------

function readOrder() {
  try { return localStorage.getItem(ORDER_KEY) === "oldest" ? "oldest" : "newest"; } catch { return "newest"; }
}

function start() {
  if (!root || !itemsEl) return;
  localiseTimes(itemsEl);
  enableEmbeds(itemsEl);
  enableCopyButtons(document);
  for (const hidden of document.querySelectorAll("#stream-toolbar, #keys-help")) hidden.hidden = false;

  order = readOrder();
  startOlder();
  applyOrder();
  refresh();

  root.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-filter]");
    if (chip && root.contains(chip)) setFilter(chip.dataset.filter);
  });
  orderToggle?.addEventListener("click", () => {
    showPending();
    order = order === "newest" ? "oldest" : "newest";
    try { localStorage.setItem(ORDER_KEY, order); } catch { /* private mode: not remembered */ }
    applyOrder();
    updateNewButton();
  });
  newButton.addEventListener("click", () => showPending({ focus: true }));
  pauseToggle?.addEventListener("click", () => setPaused(!paused));
  let scrollQueued = false;
  window.addEventListener("scroll", () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      if (atNewestEnd()) showPending();
    });
  }, { passive: true });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", showTarget);
  showTarget();

  const stream = new LiveStream({ session: root.dataset.session, epoch: root.dataset.epoch, seq: root.dataset.seq });
  stream.addEventListener("state", (e) => showState(e.detail));
  stream.addEventListener("change", (e) => onStreamChange(e.detail));
  stream.addEventListener("reload", (e) => { held = []; showPaused(); replaceAll(e.detail); });
  // Other panels (polls and Q&A: audience.js) follow the same stream without a second socket.
  for (const type of ["change", "reload"]) {
    stream.addEventListener(type, (e) => document.dispatchEvent(new CustomEvent(`liveblog:${type}`, { detail: e.detail })));
  }
  stream.addEventListener("synced", (e) => { root.dataset.seq = String(e.detail.seq); });
  stream.addEventListener("heartbeat", (e) => showViewers(e.detail.viewers));
  stream.addEventListener("presence", (e) => showViewers(e.detail.viewers));
  stream.start();
  window.liveblogViewer = { stream };  // for debugging and browser tests
}

start();
