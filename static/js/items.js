// Rendering stream items in the browser from the markup of templates/_items.html.
// item.html is sanitised on the server (nh3); every other field goes in as text.
// Video links get a "Play video" button: the third-party <iframe> is only created when the
// reader presses it, so no player script or cookie reaches anyone who did not ask for it.

export function timeLabel(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

// A one-line plain-text summary of an item, for screen-reader announcements and the key points list.
export function summary(item, limit = 120) {
  const scratch = document.createElement("template");
  scratch.innerHTML = item.html || "";
  const text = (scratch.content.textContent || item.body || "").replace(/\s+/g, " ").trim();
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

// Only players the CSP (frame-src) allows and find_embeds() produces.
const PLAYER_ORIGINS = ["https://www.youtube-nocookie.com/", "https://player.vimeo.com/"];

// The card's markup comes from templates/_items.html: the page carries it in <template>
// elements with every optional part present; a card is a clone with the parts it lacks removed.
function fromTemplate(id) {
  const template = document.getElementById(id);
  if (!template) throw new Error(`the page has no #${id} (templates/_items.html card_templates())`);
  return template.content.firstElementChild.cloneNode(true);
}

function embedPreview(embed) {
  const box = fromTemplate("embed-preview-template");
  box.querySelector(".embed-provider").textContent = embed.provider || "Link";
  const link = box.querySelector(".embed-link");
  link.href = /^https?:\/\//.test(embed.url) ? embed.url : "#";
  link.textContent = embed.url;
  const button = box.querySelector(".play-embed");
  if (embed.player) {
    button.dataset.player = embed.player;
    button.dataset.provider = embed.provider || "";
    button.hidden = false;  // the server's copy waits for enableEmbeds(); this one is live already
  } else {
    button.remove();
  }
  return box;
}

// One stream item as a card. An item with no id yet (a note still in the note-taker's outbox)
// gets no id attributes and no permalink, only its time.
export function renderItem(item) {
  const article = fromTemplate("item-card-template");
  const meta = article.querySelector(".item-meta");
  const known = item.id !== null && item.id !== undefined;
  article.className = `item item-${item.kind}${item.key_point ? " key-point" : ""}`;
  for (const name of ["id", "seq", "clientId", "media"]) delete article.dataset[name];
  article.dataset.kind = item.kind;
  article.dataset.sort = item.typed_at;
  if (item.client_id) article.dataset.clientId = item.client_id;
  if (item.data && item.data.media && item.data.media.length) article.dataset.media = "1";
  if (known) {
    article.id = `item-${item.id}`;
    article.dataset.id = String(item.id);
    article.dataset.seq = String(item.seq);
    article.setAttribute("aria-labelledby", `item-${item.id}-meta`);
    meta.id = `item-${item.id}-meta`;
  } else {
    for (const name of ["id", "tabindex", "aria-labelledby"]) article.removeAttribute(name);
    meta.removeAttribute("id");
  }
  if (!item.key_point) meta.querySelector(".badge-key").remove();
  meta.querySelector(".author").textContent = item.author || "";
  // A social post's later versions are ours (its author resolved to a handle), not edits.
  if (!(item.version > 1) || item.kind === "social") meta.querySelector(".edited").remove();
  const link = meta.querySelector(".permalink");
  const time = link.querySelector("time");
  time.dateTime = item.typed_at;
  time.textContent = timeLabel(item.typed_at);
  if (known) link.href = `#item-${item.id}`;
  else link.replaceWith(time);
  const body = article.querySelector(".item-body");
  body.innerHTML = item.html || "";  // sanitised server-side
  for (const embed of (item.data && item.data.embeds) || []) article.append(embedPreview(embed));
  return article;
}

// A note's likes and boosts on the fediverse (a `note.reactions` change, docs/protocol.md): the
// discreet line at the end of its card, from the markup of templates/_reactions.html, as the
// server renders it; no line when both are 0.
export function showReactions(article, likes, boosts) {
  const old = article.querySelector(":scope > .item-reactions");
  if (!likes && !boosts) {
    if (old) old.remove();
    return;
  }
  const line = fromTemplate("reactions-template");
  const count = (n, one) => `${n} ${n === 1 ? one : `${one}s`}`;
  const shown = [likes ? `♥ ${likes}` : "", boosts ? `⟳ ${boosts}` : ""].filter(Boolean);
  const said = [likes ? count(likes, "like") : "", boosts ? count(boosts, "boost") : ""].filter(Boolean);
  line.querySelector("[aria-hidden]").textContent = shown.join(" · ");
  line.querySelector(".visually-hidden").textContent = said.join(" and ");
  if (old) old.replaceWith(line);
  else article.append(line);
}

// Server-rendered times are the venue's (archive.timezone): show them in the viewer's local time.
export function localiseTimes(root) {
  for (const time of root.querySelectorAll(".item-meta time[datetime]")) {
    const label = timeLabel(time.dateTime);
    if (label) time.textContent = label;
  }
}

// Click-to-load players. Call once per page with the element that holds the items.
export function enableEmbeds(root) {
  for (const button of root.querySelectorAll("button.play-embed[hidden]")) button.hidden = false;
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button.play-embed");
    if (!button || !root.contains(button)) return;
    const player = button.dataset.player || "";
    if (!PLAYER_ORIGINS.some((origin) => player.startsWith(origin))) return;
    const frame = document.createElement("iframe");
    frame.src = player;
    frame.title = `${button.dataset.provider || "Video"} player`;
    frame.className = "embed-frame";
    frame.allow = "fullscreen; picture-in-picture; encrypted-media";
    frame.referrerPolicy = "strict-origin-when-cross-origin";
    frame.loading = "lazy";
    button.replaceWith(frame);
  });
}
