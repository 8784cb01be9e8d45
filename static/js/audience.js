// The polls and Q&A panel of the viewer page (templates/_audience.html). It follows the page's
// one LiveStream through the liveblog:change / liveblog:reload events viewer.js dispatches, and
// talks to the JSON API of docs/protocol-votes.md. The participant id is an httponly cookie the
// server sets on the first request.

import { AudienceModel, cloudWeights, el, mergedText, plural, shares, voterText } from "./audience-model.js";

const root = document.getElementById("audience");
let model = null;

function csrfToken() {
  // The audience snapshot's token is this browser's own; an anonymous page may be a shared copy.
  if (model && model.csrfToken) return model.csrfToken;
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// The room code (docs/protocol-votes.md): polls and Q&A open to "people in the room" ask for the
// code shown on the big screen. A link with ?code= brings it; otherwise the person is asked once.
const ROOM_KEY = "liveblog.room-code";
function remember(code) { try { sessionStorage.setItem(ROOM_KEY, code); } catch { /* private mode */ } }
function roomCode() { try { return sessionStorage.getItem(ROOM_KEY) || ""; } catch { return ""; } }
const codeInUrl = new URLSearchParams(location.search).get("code");
if (codeInUrl) remember(codeInUrl.trim());

// Asks for the room code in the panel's own form (no browser prompt): resolves with what was typed,
// or "" when the person cancels (the button or Escape). `wrong` says the last code was refused.
function askRoomCode(wrong) {
  const form = document.getElementById("room-form");
  const input = document.getElementById("room-code-input");
  const status = document.getElementById("room-status");
  if (!form) return Promise.resolve("");
  form.hidden = false;
  status.textContent = wrong ? "That is not the code on the screen in this room: check it and try again." : "";
  input.select();
  input.focus();
  return new Promise((resolve) => {
    const done = (code) => {
      form.removeEventListener("submit", onSubmit);
      form.removeEventListener("keydown", onKey);
      document.getElementById("room-cancel").removeEventListener("click", onCancel);
      form.hidden = true;
      resolve(code);
    };
    const onSubmit = (e) => { e.preventDefault(); if (input.value.trim()) done(input.value.trim()); };
    const onCancel = () => done("");
    const onKey = (e) => { if (e.key === "Escape") done(""); };
    form.addEventListener("submit", onSubmit);
    form.addEventListener("keydown", onKey);
    document.getElementById("room-cancel").addEventListener("click", onCancel);
  });
}

async function post(url, body, retried = false) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    // The page's CSRF token (docs/protocol.md, "Origins and CSRF"): the participant cookie is ambient.
    headers: {
      "content-type": "application/json", accept: "application/json", "x-csrf-token": csrfToken(),
      "liveblog-room-code": roomCode(),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { /* an empty or non-JSON answer */ }
  if (!response.ok) {
    const error = (data && data.error) || { code: `http_${response.status}`, message: "That did not work; try again." };
    if (error.code === "room_code_required") {
      // Asked again (saying so) while the person keeps typing a code the server refuses.
      const typed = await askRoomCode(retried);
      if (typed) { remember(typed); return post(url, body, true); }
    }
    throw Object.assign(new Error(error.message), { code: error.code });
  }
  return data;
}

function pollStateText(poll) {
  const d = poll.data;
  if (d.state === "closed") return "Closed";
  if (d.closes_at) {
    const left = Math.max(0, Math.round((Date.parse(d.closes_at) - Date.now()) / 1000));
    return left > 0 ? `Open · closes in ${left} s` : "Closing";
  }
  return "Open";
}

function start() {
  if (!root) return;
  model = new AudienceModel(root.dataset.session);
  const pollsEl = document.getElementById("polls");
  const noPolls = document.getElementById("no-polls");
  const pollStatus = document.getElementById("poll-status");
  const questionsEl = document.getElementById("questions");
  const noQuestions = document.getElementById("no-questions");
  const form = document.getElementById("ask-form");
  const askBody = document.getElementById("ask-body");
  const askName = document.getElementById("ask-name");
  const askStatus = document.getElementById("ask-status");
  const askCount = document.getElementById("ask-count");
  let sort = "top";
  let busy = false;
  let ready = false;
  const ended = () => root.dataset.state === "ended";

  // -- polls ---------------------------------------------------------------------------------

  function myChoice(poll) { return model.you.votes[String(poll.id)]; }

  async function vote(poll, choice) {
    if (busy) return;
    busy = true;
    pollStatus.textContent = "";
    try {
      const result = await post(`/api/v1/polls/${poll.id}/votes`, { choice });
      model.you.votes[String(poll.id)] = result.choice;
      pollStatus.textContent = result.status === "changed" ? "Your vote was changed." : "Your vote is in.";
      renderPolls();
    } catch (err) {
      pollStatus.textContent = err.message;
    } finally {
      busy = false;
    }
  }

  function optionRows(poll) {
    const open = poll.data.state === "open";
    const mine = myChoice(poll);
    const chosen = new Set(Array.isArray(mine) ? mine : mine !== undefined ? [mine] : []);
    const multiple = poll.data.poll_kind === "multiple";
    const list = el("ul", { class: "poll-options" });
    for (const option of shares(poll)) {
      const pct = Math.round(option.share * 100);
      const bar = el("span", { class: "bar", "aria-hidden": "true" }, el("span", { class: "fill" }));
      bar.firstChild.style.setProperty("--share", String(option.share));  // CSSOM: allowed by the CSP
      const label = el("span", { class: "option-label", text: option.label });
      const count = el("span", { class: "option-count", text: `${pct}% (${option.count})` });
      let control;
      if (multiple) {
        control = el("label", { class: "option" },
          el("input", { type: "checkbox", name: `poll-${poll.id}`, value: option.id, checked: chosen.has(option.id), disabled: !open }),
          label, count, bar);
      } else {
        control = el("button", {
          type: "button", class: "option", "data-option": option.id, "aria-pressed": String(chosen.has(option.id)), disabled: !open,
        }, label, count, bar);
        control.addEventListener("click", () => vote(poll, option.id));
      }
      if (chosen.has(option.id)) control.classList.add("chosen");
      list.append(el("li", {}, control));
    }
    const parts = [list];
    if (multiple && poll.data.state === "open") {
      const submit = el("button", { type: "button", class: "button secondary", text: chosen.size ? "Change my vote" : "Vote" });
      submit.addEventListener("click", () => {
        const picked = [...list.querySelectorAll("input:checked")].map((i) => i.value);
        if (!picked.length) { pollStatus.textContent = "Tick at least one option."; return; }
        vote(poll, picked);
      });
      parts.push(submit);
    }
    return parts;
  }

  function textPoll(poll) {
    const parts = [];
    const cloud = el("p", { class: "word-cloud", "aria-label": "Most frequent words in the answers" });
    for (const { word, count, weight } of cloudWeights(poll.data.tally)) {
      cloud.append(el("span", { class: `word w${weight}`, title: `${count}`, text: word }), " ");
    }
    parts.push(cloud);
    if (poll.data.state === "open") {
      const mine = myChoice(poll);
      const input = el("input", { name: "answer", maxLength: model.limits.text_answer_chars || 100, value: mine || "", "aria-label": "Your answer" });
      const answerForm = el("form", { class: "text-answer" }, input,
        el("button", { type: "submit", class: "button secondary", text: mine ? "Change my answer" : "Send" }));
      answerForm.addEventListener("submit", (event) => { event.preventDefault(); vote(poll, input.value); });
      parts.push(answerForm);
      if (mine) parts.push(el("p", { class: "muted", text: `Your answer: ${mine}` }));
    }
    return parts;
  }

  function renderPoll(poll) {
    const d = poll.data;
    const article = el("article", { class: `poll poll-${d.state}`, "data-poll": poll.id, "aria-labelledby": `poll-${poll.id}-q` },
      el("h4", { id: `poll-${poll.id}-q`, text: d.question }),
      el("p", { class: "poll-meta" },
        el("span", { class: "poll-state", text: pollStateText(poll) }), " · ",
        el("span", { class: "voters", text: voterText(d.voters || 0, d.discounted) }),
        d.poll_kind === "rating" && d.average !== null && d.average !== undefined
          ? el("span", { class: "average", text: ` · average ${d.average}` }) : null));
    article.append(...(d.poll_kind === "text" ? textPoll(poll) : optionRows(poll)));
    return article;
  }

  function renderPolls() {
    // Keep focus on the option a keyboard user just pressed across re-renders.
    const active = document.activeElement;
    const focusKey = active && active.closest && active.closest("[data-poll]")
      ? [active.closest("[data-poll]").dataset.poll, active.dataset.option] : null;
    const polls = model.visiblePolls().slice(0, 3);  // the open one and the latest results
    pollsEl.replaceChildren(...polls.map(renderPoll));
    noPolls.hidden = polls.length > 0;
    if (focusKey && focusKey[1]) {
      const again = pollsEl.querySelector(`[data-poll="${focusKey[0]}"] [data-option="${focusKey[1]}"]`);
      if (again) again.focus();
    }
  }

  // -- questions -----------------------------------------------------------------------------

  async function upvote(q) {
    try {
      await post(`/api/v1/questions/${q.id}/upvotes`);
      if (!model.you.upvotes.includes(q.id)) model.you.upvotes.push(q.id);
      renderQuestions();
    } catch (err) {
      askStatus.textContent = err.message;
    }
  }

  function renderQuestion(q) {
    const d = q.data;
    const mine = model.you.upvotes.includes(q.id);
    const button = el("button", {
      type: "button", class: "upvote", "aria-pressed": String(mine), disabled: mine || d.state === "answered",
      "aria-label": mine ? `You upvoted this (${plural(d.votes, "vote")})` : `Upvote (${plural(d.votes, "vote")})`,
    }, el("span", { "aria-hidden": "true", text: "▲" }), el("span", { class: "votes", text: String(d.votes) }));
    button.addEventListener("click", () => upvote(q));
    const meta = el("p", { class: "question-meta muted" }, d.name ? d.name : "Anonymous");
    if (d.pinned) meta.append(" · ", el("span", { class: "badge badge-pinned", text: "Being answered now" }));
    if (d.state === "answered") meta.append(" · ", el("span", { class: "badge badge-answered", text: "Answered" }));
    if (d.answer_item_id) meta.append(" · ", el("a", { href: `#item-${d.answer_item_id}`, text: "See the answer" }));
    if (d.merged && d.merged.length) meta.append(" · ", el("span", { class: "merged-note", text: mergedText(d.merged.length) }));
    return el("li", { class: `question${d.pinned ? " pinned" : ""} question-${d.state}`, "data-question": q.id },
      button, el("div", { class: "question-body" }, el("p", { text: q.body }), meta));
  }

  function renderQuestions() {
    const list = model.sortedQuestions(sort);
    questionsEl.replaceChildren(...list.map(renderQuestion));
    const waiting = model.you.questions.filter((q) => q.state === "pending").length;
    noQuestions.hidden = list.length > 0;
    noQuestions.textContent = sort === "answered" ? "No question has been answered yet."
      : ended() ? "No questions were asked." : "No questions yet.";
    if (waiting) {
      questionsEl.append(el("li", { class: "question question-waiting muted", text:
        waiting === 1 ? "Your question is waiting for a moderator." : `${waiting} of your questions are waiting for a moderator.` }));
    }
  }

  for (const button of root.querySelectorAll(".qa-sort-button")) {
    button.addEventListener("click", () => {
      sort = button.dataset.sort;
      for (const b of root.querySelectorAll(".qa-sort-button")) b.setAttribute("aria-pressed", String(b === button));
      renderQuestions();
    });
  }

  function updateCount() {
    const limit = model.limits.question_chars;
    askCount.textContent = `${askBody.value.length} / ${limit} characters`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = askBody.value.trim();
    if (!body) { askStatus.textContent = "Type a question first."; askBody.focus(); return; }
    askStatus.textContent = "Sending…";
    try {
      const result = await post(`/api/v1/sessions/${encodeURIComponent(model.session)}/questions`, {
        body, name: askName.value.trim() || null, client_id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()),
      });
      model.you.questions.push({ id: result.question.id, state: result.state });
      model.apply({ op: "item.created", item: result.question });
      askBody.value = "";
      updateCount();
      askStatus.textContent = result.state === "pending"
        ? "Thanks: your question will appear once a moderator approves it." : "Thanks: your question is up.";
      renderQuestions();
    } catch (err) {
      askStatus.textContent = err.message;
    }
  });
  askBody.addEventListener("input", updateCount);

  // -- wiring --------------------------------------------------------------------------------

  // The phone's floating link to this panel says when a poll is open.
  const jump = document.getElementById("jump-audience");
  function renderJump() {
    if (!jump) return;
    const open = model.currentPoll() && model.currentPoll().data.state === "open";
    jump.dataset.poll = open ? "open" : "none";
    jump.querySelector(".jump-label").textContent = open ? "Poll open: vote" : "Polls and questions";
  }

  function render() { renderPolls(); renderQuestions(); renderJump(); }

  // No need for the floating link while the panel itself is on screen.
  if (jump && "IntersectionObserver" in window) {
    new IntersectionObserver(([entry]) => jump.classList.toggle("is-here", entry.isIntersecting), { threshold: 0.15 })
      .observe(root);
  }

  // An ended session takes no more questions: the Ask form goes, the texts stop promising.
  function showSessionState(state) {
    root.dataset.state = state;
    noPolls.textContent = ended() ? noPolls.dataset.endedText : noPolls.dataset.liveText;
    form.hidden = !ready || ended();
    render();
  }

  model.addEventListener("changed", render);
  // Changes that arrive before the snapshot are held, then applied on top of it (the versions
  // decide what is newer), so nothing between the page's stream position and the snapshot is lost.
  let held = [];
  function onChange(msg) {
    if (msg.op === "session.updated" && msg.session) { showSessionState(msg.session.state); return; }
    if (held !== null) { held.push(msg); return; }
    // A question of mine that a moderator approved or hid: my "waiting" note follows it.
    if (msg.item && msg.item.kind === "question") {
      const mine = model.you.questions.find((q) => q.id === msg.item.id);
      if (mine) mine.state = msg.item.data.state;
    }
    model.apply(msg);
  }
  document.addEventListener("liveblog:change", (e) => onChange(e.detail));
  document.addEventListener("liveblog:reload", () => { model.load().catch(() => {}); });
  // Countdowns of self-closing polls.
  setInterval(() => { if (model.currentPoll() && model.currentPoll().data.closes_at) renderPolls(); }, 1000);

  model.load().then(() => {
    const pending = held;
    held = null;
    for (const msg of pending) onChange(msg);
    ready = true;
    form.hidden = ended();
    askBody.maxLength = model.limits.question_chars;
    updateCount();
    root.dataset.ready = "true";
  }).catch(() => {
    pollStatus.textContent = "Polls and questions could not be loaded; reload the page to try again.";
  });
}

start();
