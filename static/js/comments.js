// Comment threads, live: new, edited and removed comments arrive through the session's stream
// (the same sequence numbers and resume as notes). On the live page the viewer's stream is
// shared (viewer.js re-dispatches each change as "liveblog:change"); on every page of a
// knowledge page (#knowledge-main: the first, with the thread, and the numbered ones after it)
// this script follows the stream itself, and shows its notes' likes and boosts as they change.
// Comment HTML is sanitised on the server; the rest is text.
import { LiveStream } from "./stream.js";
import { showReactions } from "./items.js";

const box = document.getElementById("comments");
const apply = box ? thread(box) : () => {};
const own = document.getElementById("knowledge-main") || box;  // where the stream's position is
if (box && document.getElementById("stream")) document.addEventListener("liveblog:change", (e) => apply(e.detail));
else if (own) follow(own.dataset);

function follow({ session, epoch, seq }) {
  const stream = new LiveStream({ session, epoch, seq });
  stream.addEventListener("change", (e) => {
    apply(e.detail);
    // The page's notes' likes and boosts on the fediverse follow the same stream.
    const msg = e.detail;
    const card = msg && msg.op === "note.reactions" ? document.getElementById(`item-${msg.item_id}`) : null;
    if (card) showReactions(card, msg.likes, msg.boosts);
  });
  stream.start();
}

function thread(box) {
  const list = document.getElementById("comment-list");
  const count = document.getElementById("comment-count");
  const empty = document.getElementById("no-comments");

  function setCount(delta) {
    const n = Math.max(0, Number((count.textContent.match(/\d+/) || ["0"])[0]) + delta);
    count.textContent = `(${n})`;
  }

  function meta(c) {
    const div = document.createElement("div");
    div.className = "comment-meta small";
    const who = document.createElement("strong");
    who.className = "comment-author";
    who.textContent = c.author;
    const link = document.createElement("a");
    link.className = "permalink";
    link.href = `#comment-${c.id}`;
    const time = document.createElement("time");
    time.dateTime = c.created_at;
    time.textContent = c.created_at.slice(0, 16).replace("T", " ");
    link.append(time);
    if (/^@[^@\s]+@[^@\s]+$/.test(c.author)) {
      // A reply from the fediverse: its author's avatar, copied to our media (docs/federation.md).
      const avatar = document.createElement("img");
      avatar.className = "comment-avatar";
      avatar.src = `/ap/avatars/${c.author_id}`;
      avatar.alt = "";
      avatar.width = avatar.height = 20;
      div.append(avatar, " ");
    }
    div.append(who, " ", link);
    if (c.edited) {
      const badge = document.createElement("span");
      badge.className = "badge badge-edited";
      badge.textContent = "Edited";
      div.append(" ", badge);
    }
    return div;
  }

  function fill(li, c) {
    li.replaceChildren();
    const replies = li._replies || document.createElement("ol");
    replies.className = "replies";
    li._replies = replies;
    if (c.deleted || c.state !== "visible") {
      const p = document.createElement("p");
      p.className = "muted small comment-placeholder";
      p.textContent = "This comment was removed.";
      li.append(p, replies);
      return;
    }
    const body = document.createElement("div");
    body.className = "comment-body item-body";
    body.innerHTML = c.html || "";  // sanitised server-side (nh3), like notes
    li.append(meta(c), body, replies);
  }

  function existing(id) {
    return document.getElementById(`comment-${id}`);
  }

  function created(c) {
    if (existing(c.id) || c.state !== "visible" || c.deleted) return;
    const li = document.createElement("li");
    li.className = "comment just-arrived";
    li.id = `comment-${c.id}`;
    li.dataset.id = String(c.id);
    fill(li, c);
    const parent = c.parent_id ? existing(c.parent_id) : null;
    const target = parent ? parent.querySelector(":scope > ol.replies") : list;
    (target || list).append(li);
    if (empty) empty.hidden = true;
    setCount(1);
  }

  function updated(c) {
    const li = existing(c.id);
    if (!li) { created(c); return; }
    // Keep the server-rendered reply list (and its forms) when the comment is still shown.
    li._replies = li.querySelector(":scope > ol.replies") || li._replies;
    const wasShown = !li.querySelector(":scope > .comment-placeholder");
    const shown = c.state === "visible" && !c.deleted;
    if (shown && wasShown) {
      const body = li.querySelector(":scope > .comment-body");
      if (body) body.innerHTML = c.html || "";
      const metaDiv = li.querySelector(":scope > .comment-meta");
      if (metaDiv) metaDiv.replaceWith(meta(c));
      return;
    }
    fill(li, c);
    if (shown !== wasShown) setCount(shown ? 1 : -1);
  }

  return (msg) => {
    if (!msg || typeof msg.op !== "string") return;
    if (msg.op === "comment.created" && msg.comment) created(msg.comment);
    else if ((msg.op === "comment.updated" || msg.op === "comment.deleted") && msg.comment) updated(msg.comment);
    else if (msg.op === "comments.locked") {
      const form = document.getElementById("comment-form");
      if (form) form.hidden = Boolean(msg.locked);
    }
  };
}
