// The audience state shared by the viewer panel (audience.js), the big screen (bigscreen.js) and
// the moderation page: polls and questions by id, kept current from a snapshot
// (GET /api/v1/sessions/{id}/audience) plus stream changes. Every change carries the item's
// version, so a replayed older change never overwrites a newer snapshot.

export class AudienceModel extends EventTarget {
  constructor(session) {
    super();
    this.session = session;
    this.polls = new Map();
    this.questions = new Map();
    this.you = { votes: {}, upvotes: [], questions: [] };
    this.limits = { question_chars: 500 };
    this.seq = null;
    this.epoch = "";
  }

  async load() {
    const response = await fetch(`/api/v1/sessions/${encodeURIComponent(this.session)}/audience`, {
      credentials: "same-origin", cache: "no-store",
    });
    if (!response.ok) throw new Error(`audience ${response.status}`);
    const data = await response.json();
    this.polls.clear();
    this.questions.clear();
    for (const poll of data.polls) this.polls.set(poll.id, poll);
    for (const q of data.questions) this.questions.set(q.id, q);
    this.you = data.you;
    // This browser's CSRF token (docs/protocol.md): the page itself may be a copy shared by many.
    if (data.csrf_token) this.csrfToken = data.csrf_token;
    if (data.limits) this.limits = data.limits;
    this.seq = data.seq;
    this.epoch = data.epoch;
    this._changed();
    return data;
  }

  _changed() { this.dispatchEvent(new Event("changed")); }

  _upsert(item) {
    const map = item.kind === "poll" ? this.polls : item.kind === "question" ? this.questions : null;
    if (!map) return false;
    const known = map.get(item.id);
    if (known && known.version >= item.version) return false;
    if (item.deleted) map.delete(item.id); else map.set(item.id, item);
    return true;
  }

  _patch(msg, fields) {
    const map = msg.kind === "poll" ? this.polls : this.questions;
    const known = map.get(msg.item_id);
    if (!known || known.version >= msg.version) return false;
    known.version = msg.version;
    Object.assign(known.data, fields);
    return true;
  }

  // A stream change message; returns true when it changed something shown.
  apply(msg) {
    let changed = false;
    switch (msg.op) {
      case "item.created":
      case "item.updated":
      case "item.deleted":
        if (msg.item) changed = this._upsert(msg.item);
        break;
      case "poll.tally": {
        const fields = { tally: msg.tally, voters: msg.voters };
        if ("average" in msg) fields.average = msg.average;
        if ("flagged" in msg) Object.assign(fields, { flagged: msg.flagged, discounted: msg.discounted });
        changed = this._patch(msg, fields);
        break;
      }
      case "question.votes":
        changed = this._patch(msg, { votes: msg.votes });
        break;
      default:
        break;
    }
    if (changed) this._changed();
    return changed;
  }

  // Polls the audience can see (drafts are the moderators' business), newest first.
  visiblePolls() {
    return [...this.polls.values()].filter((p) => p.data.state !== "draft").sort((a, b) => b.id - a.id);
  }

  currentPoll() {
    const open = this.visiblePolls().filter((p) => p.data.state === "open");
    return open[0] || null;
  }

  publicQuestions() {
    return [...this.questions.values()].filter((q) => q.data.state === "visible" || q.data.state === "answered");
  }

  sortedQuestions(mode) {
    const list = this.publicQuestions();
    if (mode === "newest") return list.sort((a, b) => b.id - a.id);
    if (mode === "answered") return list.filter((q) => q.data.state === "answered").sort((a, b) => b.id - a.id);
    // top: the pinned one (being answered now), then open ones by votes, answered ones last.
    return list.sort((a, b) => (Number(b.data.pinned) - Number(a.data.pinned))
      || (Number(a.data.state === "answered") - Number(b.data.state === "answered"))
      || (b.data.votes - a.data.votes) || (b.id - a.id));
  }
}

// Option shares for bars: [{id, label, count, share (0..1)}], shares of voters (multiple choice
// can add up to more than 100 %).
export function shares(poll) {
  const voters = poll.data.voters || 0;
  return poll.data.options.map((o) => {
    const count = (poll.data.tally && poll.data.tally[o.id]) || 0;
    return { id: o.id, label: o.label, count, share: voters ? count / voters : 0 };
  });
}

// A count with its noun in the right number: plural(1, "vote") is "1 vote", plural(2, "vote") "2 votes".
export function plural(n, one, many = `${one}s`) { return `${n} ${n === 1 ? one : many}`; }
// A question that absorbed duplicates (merged into it by a moderator; their upvotes count here).
export function mergedText(n) { return n === 1 ? "Merged with a duplicate" : `Merged with ${n} duplicates`; }
// "312 voters · 14 discounted": the counted voters, and the flagged votes the organisers left out.
export function voterText(n, discounted = 0) { return plural(n, "voter") + (discounted ? ` · ${discounted} discounted` : ""); }

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "type"
      || key === "name" || key === "value" || key === "for" || key === "id" || key === "href") node.setAttribute(key, value === true ? "" : String(value));
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// Word cloud sizes: 1 (rare) .. 6 (most frequent), on a square-root scale so one dominant word
// does not shrink the rest to nothing.
export function cloudWeights(tally) {
  const entries = Object.entries(tally || {});
  const max = Math.max(1, ...entries.map(([, n]) => n));
  return entries.map(([word, n]) => ({ word, count: n, weight: 1 + Math.round(5 * Math.sqrt(n / max) - 0.5) }));
}
