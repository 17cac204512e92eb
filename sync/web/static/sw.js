// The dashboard's service worker: keeps the app shell (and the model's schema) so the
// page opens with the server down. Production data is not cached here: the page keeps
// its own copy in IndexedDB (y-indexeddb). The cache is named for the build, so a new
// bundle replaces the old one. Attached files are named by their hash and never change:
// each one shown is kept (in a cache of its own, across builds) so headshots and
// thumbnails still show offline; video asks for ranges and goes to the server.
const CACHE = "castroom-c42074b264e8752f";
const MEDIA = "castroom-media-1";
const SHELL = ["/", "/app.js?v=c42074b264e8752f", "/app.css?v=c42074b264e8752f", "/schema.json"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(keys.filter((k) => k.startsWith("castroom-") && k !== CACHE && k !== MEDIA).map((k) => caches.delete(k))),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/sync/")) return;
  if (url.pathname.startsWith("/present")) return; // a presentation is online only
  if (url.pathname.startsWith("/media/")) {
    if (event.request.headers.has("range")) return;
    event.respondWith(
      caches.open(MEDIA).then(async (cache) => {
        const hit = await cache.match(url.pathname);
        if (hit) return hit;
        const response = await fetch(event.request);
        if (response.status === 200) await cache.put(url.pathname, response.clone());
        return response;
      }),
    );
    return;
  }
  if (event.request.mode === "navigate" || url.pathname === "/schema.json") {
    // Network first (a fresh shell when the server is up), the cache when it is not.
    event.respondWith(
      fetch(event.request).catch(() =>
        caches.match(event.request.mode === "navigate" ? "/" : "/schema.json", { cacheName: CACHE }),
      ),
    );
    return;
  }
  event.respondWith(caches.match(event.request, { cacheName: CACHE }).then((hit) => hit || fetch(event.request)));
});
