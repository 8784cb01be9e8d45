// A "load more" link for a long page (issue 17 item 7): it loads the next page of cards by itself
// as the reader nears it (IntersectionObserver), or when clicked. Without JavaScript, or once a
// load has failed, it is what it always was: a plain link to the numbered page that holds them.
//
// followMore(link, { load, auto }): load() fetches and inserts one page and resolves to true while
// more remain; auto() says whether nearing the link should load (false: only a click does).

const AHEAD = "0px 0px 1200px 0px";  // start loading about a screen before the reader gets there

export function followMore(link, { load, auto = () => true }) {
  let busy = false;
  let done = false;
  let failed = false;
  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting) && auto()) run();
    }, { rootMargin: AHEAD })
    : null;

  async function run() {
    if (busy || done || failed) return;
    busy = true;
    link.setAttribute("aria-busy", "true");
    try {
      if (!(await load())) stop();
    } catch (err) {
      failed = true;  // from now on a click follows the link to the numbered page
      if (observer) observer.disconnect();
    } finally {
      busy = false;
      link.removeAttribute("aria-busy");
    }
    // Still near after this page (a short page, a tall screen)? Observing again reports it again.
    if (!done && !failed && observer) { observer.unobserve(link); observer.observe(link); }
  }

  function stop() {
    done = true;
    if (observer) observer.disconnect();
    (link.closest(".older-more, .more-cards") || link).remove();
  }

  link.addEventListener("click", (event) => {
    if (failed || done) return;
    event.preventDefault();
    run();
  });
  if (observer) observer.observe(link);
  return { run, stop, get done() { return done; }, get busy() { return busy; } };
}

// An HTML fragment of cards (from the server's own templates) as elements.
export function parseCards(html, selector) {
  const scratch = document.createElement("template");
  scratch.innerHTML = html;
  return Array.from(scratch.content.querySelectorAll(selector));
}
