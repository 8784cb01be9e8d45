// Offline search for a static export (liveblog export-site). The index is window.LIVEBLOG_INDEX
// (search-index.js beside this page): the rows of the server's search index for the event,
// entries {u: link, s: session, k: kind, x: start of the text, w: its words as the server stems
// them, title | body | tags}. A query is read and stemmed as the server reads it
// (archive/tags.py search_terms and search_phrases, storage/searchtext.py): words folded (case,
// accents) then stemmed with the same Snowball algorithm (window.LIVEBLOG_STEMMER, the vendored
// static/js/snowball/), every word must appear in some field and each "quoted phrase" side by side
// in one field. So the saved copy finds what the site finds. A classic script (not a module):
// pages opened from disk may not load modules.
(function () {
  const index = window.LIVEBLOG_INDEX || [];
  const Stemmer = (window.LiveblogSnowball || {})[window.LIVEBLOG_STEMMER || ""];
  const stemmer = Stemmer ? new Stemmer() : null;
  const TERM = /[\p{L}\p{N}_]+/gu; // Python's \w
  const WORD = /[\p{L}\p{N}]+/gu; // searchtext.WORD: \w without "_"
  const QUOTED = /["“”„]([^"“”„]+)["“”„]/g;
  const MAX_WORDS = 12;
  const MAX_PHRASES = 4;
  const fold = (word) => word.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
  const stem = (word) => (stemmer ? stemmer.stemWord(fold(word)) : fold(word));
  const unique = (list, key = (x) => x) => {
    const seen = new Set();
    return list.filter((x) => (seen.has(key(x)) ? false : (seen.add(key(x)), true)));
  };
  const wordsOf = (text) => text.match(WORD) || [];

  const params = new URLSearchParams(location.search);
  const q = (params.get("q") || "").trim();
  const box = document.getElementById("search-q");
  const list = document.getElementById("offline-results");
  const status = document.getElementById("offline-status");
  if (!list) return;
  if (box) box.value = q;
  const typed = q.normalize("NFC");
  const terms = unique(typed.match(TERM) || []).slice(0, MAX_WORDS);
  const wanted = unique(terms.flatMap(wordsOf).map(stem));
  if (!wanted.length) return;
  const phrases = unique(
    [...typed.matchAll(QUOTED)].map((m) => (m[1].match(TERM) || []).slice(0, MAX_WORDS)).filter((p) => p.length > 1),
    (p) => p.join(" "),
  )
    .slice(0, MAX_PHRASES)
    .map((p) => p.flatMap(wordsOf).map(stem))
    .filter((p) => p.length > 1);

  const hasPhrase = (field, phrase) => {
    for (let i = 0; i + phrase.length <= field.length; i++) {
      if (phrase.every((w, j) => field[i + j] === w)) return true;
    }
    return false;
  };
  const hits = [];
  for (const entry of index) {
    const fields = entry.w.split(" | ").map((f) => f.split(" "));
    const words = new Set(fields.flat());
    if (wanted.every((w) => words.has(w)) && phrases.every((p) => fields.some((f) => hasPhrase(f, p)))) {
      hits.push(entry);
    }
  }
  status.textContent = `${hits.length} result${hits.length === 1 ? "" : "s"} for “${q}”`;
  const wantedSet = new Set(wanted);
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
    // The words that matched are marked, as on the site.
    let at = 0;
    for (const m of hit.x.matchAll(WORD)) {
      if (!wantedSet.has(stem(m[0]))) continue;
      snippet.append(hit.x.slice(at, m.index));
      const mark = document.createElement("mark");
      mark.textContent = m[0];
      snippet.append(mark);
      at = m.index + m[0].length;
    }
    snippet.append(hit.x.slice(at));
    li.append(head, snippet);
    list.append(li);
  }
})();
