// Organiser pages: copy buttons for invite links, focus on a new invite, and a light poll of who
// is connected (every 15 s while the tab is visible) so the organiser sees note-takers arrive.

import { enableCopyButtons } from "./copy.js";

enableCopyButtons(document);

const fresh = document.getElementById("new-invite");
if (fresh) fresh.focus();

const presence = document.getElementById("presence");
if (presence) {
  const viewers = document.getElementById("stat-viewers");
  const noteTakers = document.getElementById("stat-note-takers");
  const poll = async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(`/api/v1/sessions/${encodeURIComponent(presence.dataset.session)}/presence`, { cache: "no-store" });
      if (!response.ok) return;
      const stats = await response.json();
      viewers.textContent = String(stats.viewers);
      noteTakers.textContent = stats.note_takers.length ? stats.note_takers.join(", ") : "none";
    } catch { /* offline: keep the last numbers */ }
  };
  setInterval(poll, 15000);
}

// Destructive forms (removing a note, revoking an invite) ask first through static/js/confirm.js.
