// A long knowledge page (issue 17 item 7): its notes and posts come 50 at a time. Each section's
// "More notes →" / "More posts →" link loads the next cards as the reader nears it
// (older.js); without JavaScript it leads to the next numbered page. A permalink to a card
// not on this page (#item-N) goes to the page that holds it.

import { followMore, parseCards } from "./older.js";

for (const link of document.querySelectorAll("a.more-link[data-url][data-after]")) {
  const holder = link.closest(".more-cards");
  followMore(link, {
    load: async () => {
      const response = await fetch(`${link.dataset.url}&after=${encodeURIComponent(link.dataset.after)}`);
      if (!response.ok) throw new Error(`more cards: ${response.status}`);
      const page = await response.json();
      for (const card of parseCards(page.html, "article.arch-item")) {
        if (!document.getElementById(card.id)) holder.before(card);
      }
      if (page.after === null) return false;
      link.dataset.after = String(page.after);
      return true;
    },
  });
}

const canonical = document.querySelector('link[rel="canonical"]');
const base = canonical ? (canonical.href.match(/\/archive\/sessions\/[^/?#]+/) || [""])[0] : "";

function findTarget() {
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (base && /^item-\d+$/.test(wanted) && !document.getElementById(wanted)) {
    location.replace(`${base}/items/${wanted.slice(5)}`);
  }
}

findTarget();
window.addEventListener("hashchange", findTarget);
