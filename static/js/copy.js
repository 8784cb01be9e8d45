// Copy buttons: <button data-copy="#some-input" hidden> is shown once this script runs and copies
// the input's value (or an element's text) to the clipboard, saying so on the button.

async function copyText(target) {
  const text = "value" in target ? target.value : target.textContent;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain http on a LAN address): select the text and use the old command.
    if (typeof target.select === "function") target.select();
    try { return document.execCommand("copy"); } catch { return false; }
  }
}

export function enableCopyButtons(root = document) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    const target = document.querySelector(button.dataset.copy);
    if (!target) continue;
    const label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const ok = await copyText(target);
      button.textContent = ok ? "Copied" : "Select the text and copy it";
      if (typeof target.select === "function") target.select();
      setTimeout(() => { button.textContent = label; }, 2500);
    });
  }
}
