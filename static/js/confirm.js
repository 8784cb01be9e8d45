// Confirmation before destructive actions (ending a session, banning, deleting, blocking): a button
// or form with data-confirm="Question?" asks in a dialog first; data-confirm-yes names the button
// that goes ahead. Scripts ask the same way with confirmAction(). Cancel has the focus, so Enter
// or Escape never destroys anything by accident.

let dialog = null;

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
}

export function confirmAction(question, yesLabel = "Yes", detail = "") {
  if (!dialog) build();
  dialog.querySelector("h2").textContent = question;
  const p = dialog.querySelector(".confirm-detail");
  p.textContent = detail;
  p.hidden = !detail;
  dialog.querySelector(".confirm-yes").textContent = yesLabel;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector("button[value=cancel]").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
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
