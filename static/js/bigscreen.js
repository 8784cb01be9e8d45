// The big screen (/sessions/{id}/screen): the open poll's results, or the top questions, in very
// large type for the room's projector. It runs its own LiveStream, starting from the snapshot's
// position so nothing between the two is missed. ?show=poll or ?show=questions fixes the view.

import { LiveStream } from "./stream.js";
import { AudienceModel, cloudWeights, el, shares, voterText } from "./audience-model.js";

const root = document.getElementById("screen");
const body = document.getElementById("screen-body");
const foot = document.getElementById("screen-foot");
const status = document.getElementById("screen-status");
const TOP_QUESTIONS = 5;

function pollView(poll) {
  const d = poll.data;
  const parts = [
    el("h2", { class: "screen-title", text: d.question }),
    el("p", { class: "screen-voters", "data-voters": d.voters || 0 },
      `${voterText(d.voters || 0, d.discounted)}${d.state === "closed" ? " · final results" : ""}`,
      d.poll_kind === "rating" && d.average != null ? ` · average ${d.average} / 5` : ""),
  ];
  if (d.poll_kind === "text") {
    const cloud = el("p", { class: "word-cloud" });
    for (const { word, weight } of cloudWeights(d.tally)) cloud.append(el("span", { class: `word w${weight}`, text: word }), " ");
    parts.push(cloud);
  } else {
    const list = el("ol", { class: "screen-options" });
    for (const option of shares(poll)) {
      const bar = el("span", { class: "bar", "aria-hidden": "true" }, el("span", { class: "fill" }));
      bar.firstChild.style.setProperty("--share", String(option.share));
      list.append(el("li", { class: "screen-option", "data-option": option.id },
        el("span", { class: "label", text: option.label }),
        el("span", { class: "pct", text: `${Math.round(option.share * 100)}%` }), bar));
    }
    parts.push(list);
  }
  return parts;
}

function questionsView(model) {
  const list = model.sortedQuestions("top").filter((q) => q.data.state !== "answered" || q.data.pinned).slice(0, TOP_QUESTIONS);
  if (!list.length) return [el("p", { class: "screen-empty", text: "No questions yet: ask yours from your phone." })];
  const ol = el("ol", { class: "screen-questions" });
  for (const q of list) {
    ol.append(el("li", { class: `screen-question${q.data.pinned ? " pinned" : ""}`, "data-question": q.id },
      el("span", { class: "count", text: String(q.data.votes) }),
      el("span", {}, q.body, el("span", { class: "who", text: `${q.data.name || "Anonymous"}${q.data.pinned ? " · answering now" : ""}` }))));
  }
  return [el("h2", { class: "screen-title", text: "Top questions" }), ol];
}

function render(model) {
  const mode = root.dataset.mode;
  const poll = model.currentPoll();
  if ((mode === "poll" || (mode !== "questions" && poll))) {
    const shown = poll || model.visiblePolls()[0];
    if (shown) { body.replaceChildren(...pollView(shown)); root.dataset.showing = `poll-${shown.id}`; return; }
  }
  body.replaceChildren(...questionsView(model));
  root.dataset.showing = "questions";
}

async function start() {
  const model = new AudienceModel(root.dataset.session);
  model.addEventListener("changed", () => render(model));
  await model.load();
  render(model);
  const stream = new LiveStream({ session: model.session, epoch: model.epoch, seq: model.seq });
  stream.addEventListener("change", (e) => model.apply(e.detail));
  stream.addEventListener("reload", () => { model.load().catch(() => {}); });
  stream.addEventListener("state", (e) => {
    foot.dataset.state = e.detail.state;
    status.textContent = e.detail.state === "live" ? "Live" : e.detail.state === "failed" ? "Disconnected" : "Reconnecting…";
  });
  stream.start();
  window.liveblogScreen = { stream, model };
}

start().catch(() => { status.textContent = "Could not load; reload the page."; });
