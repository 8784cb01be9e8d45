// Service worker for the note-taker pages (registered with scope /n/ by static/js/notetaker.js,
// served from /sw.js). It lets a note-taker's page load with no network after the first visit:
// - navigations under /n/: network first, falling back to the copy cached on the last visit;
// - /static/ and /media/ (photos are immutable): answered from the cache at once, and static
//   files are refreshed in the background so a new release arrives on the next load.
// It never touches /api/, websockets, or anything that is not a same-origin GET.

const VERSION = "v1";
const PAGES = `liveblog-pages-${VERSION}`;
const ASSETS = `liveblog-assets-${VERSION}`;
const PRECACHE = [
  "/static/js/notetaker.js",
  "/static/js/mdpreview.js",
  "/static/js/outbox.js",
  "/static/js/stream.js",
  "/static/js/items.js",
  "/static/js/confirm.js",
  "/static/css/liveblog.css",
  "/static/css/notetaker.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(ASSETS)
      // One by one: a missing file must not stop the worker; pages also cache what they load.
      .then((cache) => Promise.all(PRECACHE.map((url) => cache.add(url).catch(() => {}))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keep = new Set([PAGES, ASSETS]);
    for (const name of await caches.keys()) {
      if (name.startsWith("liveblog-") && !keep.has(name)) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// The page asks, once it is controlled, to keep itself and what it loaded for offline use
// (the first visit's own requests happened before this worker existed).
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "cache-page") return;
  const port = event.ports[0];
  event.waitUntil((async () => {
    let ok = false;
    try {
      const page = new URL(data.page, self.location.origin);
      if (page.origin === self.location.origin && page.pathname.startsWith("/n/")) {
        const response = await fetch(page.href, { credentials: "same-origin", cache: "no-store" });
        if (response.ok) {
          await (await caches.open(PAGES)).put(page.href, response);
          ok = true;
        }
      }
      const assets = await caches.open(ASSETS);
      const urls = (data.assets || []).filter((u) => {
        const url = new URL(u, self.location.origin);
        return url.origin === self.location.origin && url.pathname.startsWith("/static/");
      });
      await Promise.all(urls.map(async (u) => { if (!(await assets.match(u))) await assets.add(u); }));
    } catch (err) {
      ok = false;
    }
    if (port) port.postMessage({ ok });
  })());
});

async function networkFirst(request) {
  const cache = await caches.open(PAGES);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    return new Response(
      "<!doctype html><meta charset=utf-8><title>Offline</title><h1>You are offline</h1>" +
        "<p>This page has not been opened on this device while online yet. Connect once, and it will work offline after that.</p>",
      { status: 503, headers: { "content-type": "text/html; charset=utf-8" } },
    );
  }
}

async function cacheFirst(event, refresh) {
  const { request } = event;
  const cache = await caches.open(ASSETS);
  const fetchAndStore = () => fetch(request).then(async (response) => {
    if (response.ok) await cache.put(request, response.clone());
    return response;
  });
  const cached = await cache.match(request);
  if (!cached) return fetchAndStore();
  if (refresh) event.waitUntil(fetchAndStore().catch(() => {}));
  return cached;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/n/")) {
    event.respondWith(networkFirst(request));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(cacheFirst(event, true));
  } else if (url.pathname.startsWith("/media/")) {
    event.respondWith(cacheFirst(event, false));
  }
});
