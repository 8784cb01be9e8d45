// Rendering stream items in the browser with the same markup as templates/_items.html.
// item.html is sanitised on the server (nh3); every other field goes in as text.

export function timeLabel(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function renderItem(item) {
  const article = document.createElement("article");
  article.className = `item item-${item.kind}${item.key_point ? " key-point" : ""}`;
  article.id = `item-${item.id}`;
  article.dataset.id = String(item.id);
  article.dataset.seq = String(item.seq);
  article.dataset.kind = item.kind;
  article.dataset.sort = item.typed_at;
  article.dataset.clientId = item.client_id;
  const meta = document.createElement("header");
  meta.className = "item-meta";
  if (item.key_point) {
    const badge = document.createElement("span");
    badge.className = "badge badge-key";
    badge.textContent = "Key point";
    meta.append(badge);
  }
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = item.author;
  const link = document.createElement("a");
  link.className = "permalink";
  link.href = `#item-${item.id}`;
  const time = document.createElement("time");
  time.dateTime = item.typed_at;
  time.textContent = timeLabel(item.typed_at);
  link.append(time);
  meta.append(author, " ", link);
  const body = document.createElement("div");
  body.className = "item-body";
  body.innerHTML = item.html;  // sanitised server-side
  article.append(meta, body);
  return article;
}
