// Replay: plays a session's stored stream back at 1x, 4x or 16x, with a scrubber. The steps come
// from /archive/sessions/ID/replay.json (liveblog/archive/replay.py builds them); state at any
// moment is the steps up to it applied in order, exactly as replay.py's state_at does.
//
// With a recording (templates/archive/replay.html), the two move together: seeking the video moves
// the replay to that moment, and moving the replay (its slider, its step buttons) seeks the video.
// The map: replay time 0 is the stream's first change (`started_at`); the recording holds the
// session's scheduled start at `offset` seconds. Players: a <video> file; the click-to-load YouTube
// and Vimeo embeds through their postMessage APIs, once the reader has pressed play (nothing is
// loaded before); any other link (PeerTube, a page) is kept pointing at the replay's moment.
import { enableEmbeds } from "./items.js";
import { plural } from "./audience-model.js";

const root = document.getElementById("replay");
if (root) start(root);

function fmt(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function apply(state, step) {
  const p = step.payload;
  if ((step.op === "item.created" || step.op === "item.updated") && p.item) {
    if (p.item.deleted) state.delete(p.item.id);
    else state.set(p.item.id, { ...p.item, data: { ...(p.item.data || {}) } });
  } else if (step.op === "item.deleted" || step.op === "item.redacted") {
    state.delete(p.item_id ?? (p.item && p.item.id));
  } else if (p.item_id !== undefined && state.has(p.item_id)) {
    const item = state.get(p.item_id);
    const fields = {};
    for (const [k, v] of Object.entries(p)) {
      if (!["type", "seq", "op", "item_id", "version"].includes(k)) fields[k] = v;
    }
    item.data = { ...item.data, ...fields };
  }
}

async function start(root) {
  const response = await fetch(`/archive/sessions/${encodeURIComponent(root.dataset.session)}/replay.json`);
  if (!response.ok) return;
  const data = await response.json();
  const steps = data.steps;
  const total = data.duration_ms;
  root.hidden = false;

  const play = document.getElementById("replay-play");
  const scrubber = document.getElementById("replay-scrubber");
  const clock = document.getElementById("replay-clock");
  const items = document.getElementById("replay-items");
  const polls = document.getElementById("replay-polls");
  const questions = document.getElementById("replay-questions");
  const empty = document.getElementById("replay-empty");
  const count = document.getElementById("replay-count");
  const recording = linkRecording(data, total, (ms) => { seek(ms); });
  scrubber.max = String(total);
  scrubber.step = String(Math.max(1, Math.round(total / 1000)));

  let state = new Map();
  let applied = 0;  // steps applied so far
  let position = 0;  // ms into the session
  let speed = 1;
  let playing = false;
  let last = 0;

  function seek(ms) {
    if (ms < position || applied === 0) { state = new Map(); applied = 0; }
    position = ms;
    while (applied < steps.length && steps[applied].t <= position) apply(state, steps[applied++]);
    render();
  }

  function card(item) {
    const li = document.createElement("li");
    li.className = `arch-item arch-${item.kind}${item.key_point ? " key-point" : ""}`;
    li.dataset.id = String(item.id);
    const meta = document.createElement("div");
    meta.className = "item-meta";
    const who = document.createElement("span");
    who.className = "author";
    who.textContent = item.author || "";
    const time = document.createElement("time");
    time.dateTime = item.typed_at;
    time.textContent = (item.typed_at || "").slice(11, 16);
    meta.append(who, " ", time);
    const body = document.createElement("div");
    body.className = "item-body";
    body.innerHTML = item.html || "";  // sanitised on the server (nh3)
    li.append(meta, body);
    return li;
  }

  function render() {
    const all = [...state.values()];
    const cards = all.filter((i) => i.kind === "note" || i.kind === "social");
    items.replaceChildren(...cards.map(card));
    empty.hidden = cards.length > 0;
    count.textContent = `(${cards.length})`;
    polls.replaceChildren(...all.filter((i) => i.kind === "poll" && i.data.state !== "draft").map((poll) => {
      const li = document.createElement("li");
      const q = document.createElement("strong");
      q.textContent = poll.body;
      const dl = document.createElement("p");
      dl.className = "small";
      const tally = poll.data.tally || {};
      const labels = Object.fromEntries((poll.data.options || []).map((o) => [o.id, o.label]));
      dl.textContent = Object.entries(tally).map(([k, v]) => `${labels[k] || k}: ${v}`).join(" · ")
        + ` (${plural(poll.data.voters || 0, "voter")}, ${poll.data.state})`;
      li.append(q, dl);
      return li;
    }));
    questions.replaceChildren(...all.filter((i) => i.kind === "question")
      .sort((a, b) => (b.data.votes || 0) - (a.data.votes || 0))
      .map((q) => {
        const li = document.createElement("li");
        li.textContent = `${plural(q.data.votes || 0, "vote")} · ${q.body}${q.data.state === "answered" ? " (answered)" : ""}`;
        return li;
      }));
    scrubber.value = String(position);
    clock.textContent = `${fmt(position)} / ${fmt(total)}`;
    recording.shown(position);
  }

  // Moved by the reader (not by playing, nor by the video): the recording follows.
  function moved(ms) {
    seek(ms);
    recording.seek(position);
  }

  function frame(now) {
    if (!playing) return;
    const next = Math.min(total, position + (now - last) * speed);
    last = now;
    seek(next);
    if (position >= total) { setPlaying(false); return; }
    requestAnimationFrame(frame);
  }

  function setPlaying(on) {
    playing = on;
    play.textContent = on ? "Pause" : "Play";
    play.setAttribute("aria-pressed", String(on));
    if (on) {
      if (position >= total) seek(0);
      last = performance.now();
      requestAnimationFrame(frame);
    }
  }

  play.addEventListener("click", () => setPlaying(!playing));
  scrubber.addEventListener("input", () => moved(Number(scrubber.value)));
  document.getElementById("replay-previous").addEventListener("click", () => {
    const earlier = steps.filter((s) => s.t < position - 500);
    moved(earlier.length ? earlier[earlier.length - 1].t : 0);
  });
  document.getElementById("replay-next").addEventListener("click", () => {
    const later = steps.find((s) => s.t > position);
    moved(later ? later.t : total);
  });
  for (const button of root.querySelectorAll("[data-speed]")) {
    button.addEventListener("click", () => {
      speed = Number(button.dataset.speed);
      for (const b of root.querySelectorAll("[data-speed]")) b.setAttribute("aria-pressed", String(b === button));
    });
  }
  seek(0);
  root.dataset.ready = "true";
}

// The recording beside the replay: `seek(ms)` moves it to the replay's moment, `shown(ms)` keeps
// a plain link at it; the player's own seeks call `follow(ms)`. Without a recording, both are no-ops.
function linkRecording(data, total, follow) {
  const box = document.getElementById("replay-recording");
  const none = { seek() {}, shown() {} };
  const start = box ? Date.parse(box.dataset.sessionStart) : NaN;
  const first = data.started_at ? Date.parse(data.started_at) : NaN;
  if (!box || Number.isNaN(start) || Number.isNaN(first)) return none;
  // Seconds into the recording at replay time 0.
  const zero = Number(box.dataset.offset) + (first - start) / 1000;
  const toVideo = (ms) => Math.max(0, zero + ms / 1000);
  const toReplay = (seconds) => Math.min(total, Math.max(0, Math.round((seconds - zero) * 1000)));
  let player = null;

  const video = box.querySelector("video");
  if (video) {
    player = { seek: (seconds) => { video.currentTime = seconds; } };
    // "seeked": the reader moved the video; "timeupdate": it plays, and the replay plays along.
    for (const name of ["seeked", "timeupdate"]) video.addEventListener(name, () => follow(toReplay(video.currentTime)));
  }
  const button = box.querySelector("button.play-embed");
  if (button) {
    enableEmbeds(box);
    // The frame exists only once the reader pressed play (items.js enableEmbeds makes it).
    new MutationObserver(() => {
      const frame = box.querySelector("iframe");
      if (frame && !player) player = embedPlayer(frame, box.dataset.provider, (seconds) => follow(toReplay(seconds)));
    }).observe(box, { childList: true, subtree: true });
  }
  const link = document.getElementById("replay-recording-link");
  return {
    seek(ms) { if (player) player.seek(toVideo(ms)); },
    shown(ms) { if (link) link.href = box.dataset.at.replace("987654321", String(Math.floor(toVideo(ms)))); },
  };
}

// A YouTube or Vimeo player in its iframe, through the provider's postMessage protocol (the one
// their own iframe API scripts speak, so no script of theirs is loaded into this page).
function embedPlayer(frame, provider, follow) {
  const origin = new URL(frame.src).origin;
  const post = (message) => frame.contentWindow && frame.contentWindow.postMessage(JSON.stringify(message), origin);
  const youtube = provider === "YouTube";
  const hello = () => {
    if (youtube) post({ event: "listening", id: "replay", channel: "widget" });
    else for (const name of ["timeupdate", "seeked"]) post({ method: "addEventListener", value: name });
  };
  frame.addEventListener("load", hello);
  window.addEventListener("message", (event) => {
    if (event.origin !== origin || event.source !== frame.contentWindow) return;
    let message;
    try { message = typeof event.data === "string" ? JSON.parse(event.data) : event.data; } catch { return; }
    if (!message || typeof message !== "object") return;
    if (message.event === "ready" || message.event === "onReady") hello();
    const seconds = youtube
      ? message.info && message.info.currentTime
      : (message.event === "timeupdate" || message.event === "seeked") && message.data && message.data.seconds;
    if (typeof seconds === "number" && Number.isFinite(seconds)) follow(seconds);
  });
  return {
    seek(seconds) {
      if (youtube) post({ event: "command", func: "seekTo", args: [seconds, true], id: "replay", channel: "widget" });
      else post({ method: "setCurrentTime", value: seconds });
    },
  };
}
