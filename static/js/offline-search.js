// Offline search for a static export (liveblog export-site): the index is window.LIVEBLOG_INDEX
// (search-index.js beside this page), entries {u: link, s: session, k: kind, x: text}. Every word
// must appear; case and accents are folded. A classic script (not a module): pages opened from
// disk may not load modules.
(function () {
  const index = window.LIVEBLOG_INDEX || [];
  const fold = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  const params = new URLSearchParams(location.search);
  const q = (params.get("q") || "").trim();
  const box = document.getElementById("search-q");
  const list = document.getElementById("offline-results");
  const status = document.getElementById("offline-status");
  if (!list) return;
  if (box) box.value = q;
  const words = fold(q).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  if (!words.length) return;
  const hits = [];
  for (const entry of index) {
    const text = fold(entry.x + " " + entry.s);
    if (words.every((w) => text.includes(w))) hits.push(entry);
  }
  status.textContent = `${hits.length} result${hits.length === 1 ? "" : "s"} for “${q}”`;
  for (const hit of hits.slice(0, 200)) {
    const li = document.createElement("li");
    li.className = "search-hit";
    const head = document.createElement("p");
    head.className = "hit-kind small";
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = hit.k;
    const link = document.createElement("a");
    link.href = hit.u;
    link.textContent = hit.s;
    head.append(badge, " ", link);
    const snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.textContent = hit.x;
    li.append(head, snippet);
    list.append(li);
  }
})();
