// Rendering stream items in the browser with the same markup as templates/_items.html.
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

function embedPreview(embed) {
  const box = document.createElement("div");
  box.className = "embed-preview";
  const provider = document.createElement("span");
  provider.className = "embed-provider";
  provider.textContent = embed.provider || "Link";
  const link = document.createElement("a");
  link.className = "embed-link";
  link.href = /^https?:\/\//.test(embed.url) ? embed.url : "#";
  link.rel = "nofollow noopener noreferrer ugc";
  link.textContent = embed.url;
  box.append(provider, " ", link);
  if (embed.player) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "play-embed";
    button.dataset.player = embed.player;
    button.dataset.provider = embed.provider || "";
    button.textContent = "Play video";
    box.append(button);
  }
  return box;
}

export function renderItem(item) {
  const article = document.createElement("article");
  article.className = `item item-${item.kind}${item.key_point ? " key-point" : ""}`;
  article.id = `item-${item.id}`;
  article.tabIndex = -1;
  article.dataset.id = String(item.id);
  article.dataset.seq = String(item.seq);
  article.dataset.kind = item.kind;
  article.dataset.sort = item.typed_at;
  if (item.client_id) article.dataset.clientId = item.client_id;
  if (item.data && item.data.media && item.data.media.length) article.dataset.media = "1";
  article.setAttribute("aria-labelledby", `item-${item.id}-meta`);
  const meta = document.createElement("header");
  meta.className = "item-meta";
  meta.id = `item-${item.id}-meta`;
  if (item.key_point) {
    const badge = document.createElement("span");
    badge.className = "badge badge-key";
    badge.textContent = "Key point";
    meta.append(badge, " ");
  }
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = item.author || "";
  const link = document.createElement("a");
  link.className = "permalink";
  link.href = `#item-${item.id}`;
  link.title = "Link to this item";
  const time = document.createElement("time");
  time.dateTime = item.typed_at;
  time.textContent = timeLabel(item.typed_at);
  link.append(time);
  meta.append(author, " ", link);
  const body = document.createElement("div");
  body.className = "item-body";
  body.innerHTML = item.html || "";  // sanitised server-side
  article.append(meta, body);
  for (const embed of (item.data && item.data.embeds) || []) article.append(embedPreview(embed));
  return article;
}

// Server-rendered times are UTC (HH:MM of the stored ISO string): show them in local time.
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
