// Confirmation before destructive actions (ending a session, banning, deleting, blocking): a button
// or form with data-confirm="Question?" asks in a dialog first; data-confirm-yes names the button
// that goes ahead. Scripts ask the same way with confirmAction(). Cancel has the focus, so Enter
// or Escape never destroys anything by accident.

let dialog = null;
let ask = null;

// A dialog (with a form method="dialog") as a question: ask() shows it and resolves true when it
// closes through the button whose value is `yes`. The answer is taken as it closes (the form's
// submit, Escape's cancel), not from its close event: Chromium fires that at the next frame,
// which can come after a quick person asked the next question (b, Enter, b), whose listener
// then took the old answer, or a "no" took a later yes. The note-taker's delete asks this way too.
export function asker(box, yes) {
  let answer = null;  // resolves the question on screen
  const settle = (value) => {
    const resolve = answer;
    answer = null;
    if (resolve) resolve(value);
  };
  box.querySelector("form").addEventListener("submit", (event) => settle(Boolean(event.submitter) && event.submitter.value === yes));
  box.addEventListener("cancel", () => settle(false));
  box.addEventListener("close", () => { if (!box.open) settle(box.returnValue === yes); });  // closed some other way
  return () => {
    settle(false);  // a question still open (not expected: the keys go to the dialog) is a no
    box.returnValue = "";
    const asked = new Promise((resolve) => { answer = resolve; });
    box.showModal();
    return asked;
  };
}

function build() {
  dialog = document.createElement("dialog");
  dialog.className = "confirm-dialog";
  dialog.setAttribute("aria-labelledby", "confirm-dialog-heading");
  const form = document.createElement("form");
  form.method = "dialog";
  const heading = Object.assign(document.createElement("h2"), { id: "confirm-dialog-heading" });
  const detail = Object.assign(document.createElement("p"), { className: "confirm-detail muted" });
  const actions = Object.assign(document.createElement("div"), { className: "confirm-actions" });
  const no = Object.assign(document.createElement("button"), { value: "cancel", className: "button secondary", textContent: "Cancel" });
  const yes = Object.assign(document.createElement("button"), { value: "yes", className: "button danger confirm-yes" });
  no.autofocus = true;
  actions.append(no, yes);
  form.append(heading, detail, actions);
  dialog.append(form);
  document.body.append(dialog);
  ask = asker(dialog, "yes");
}

export function confirmAction(question, yesLabel = "Yes", detail = "") {
  if (!dialog) build();
  dialog.querySelector("h2").textContent = question;
  const p = dialog.querySelector(".confirm-detail");
  p.textContent = detail;
  p.hidden = !detail;
  dialog.querySelector(".confirm-yes").textContent = yesLabel;
  const asked = ask();
  dialog.querySelector("button[value=cancel]").focus();
  return asked;
}

const confirmed = new WeakSet();

// In the capture phase, so that it runs before any script that sends the form itself.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  const source = event.submitter && event.submitter.dataset.confirm ? event.submitter : form;
  if (!source.dataset || !source.dataset.confirm || confirmed.has(form)) { confirmed.delete(form); return; }
  event.preventDefault();
  event.stopImmediatePropagation();
  const ok = await confirmAction(source.dataset.confirm, source.dataset.confirmYes || "Yes", source.dataset.confirmDetail || "");
  if (!ok) return;
  confirmed.add(form);
  form.requestSubmit(event.submitter || undefined);
}, true);
