// The dashboard's service worker: keeps the app shell (and the model's schema) so the
// page opens with the server down. Production data is not cached here: the page keeps
// its own copy in IndexedDB (y-indexeddb). The cache is named for the build, so a new
// bundle replaces the old one.
const CACHE = "castroom-a0054dd532ba7470";
const SHELL = ["/", "/app.js?v=a0054dd532ba7470", "/app.css?v=a0054dd532ba7470", "/schema.json"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("castroom-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/sync/")) return;
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
