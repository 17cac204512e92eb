// The dashboard's service worker: keeps the app shell (and the model's schema) so the
// page opens with the server down. Production data is not cached here: the page keeps
// its own copy in IndexedDB (y-indexeddb). The cache is named for the build, so a new
// bundle replaces the old one. Attached files are named by their hash and never change:
// each one shown is kept (in a cache of its own, across builds) so headshots and
// thumbnails still show offline. The page asks for the shortlist's reels and self-tapes
// to be kept too (a request marked X-Castroom-Keep: PRODUCTION_ID, streamed into that
// production's cache of kept videos), and tells which to keep (a "keep-only" message):
// the others, no longer on its shortlist, are dropped. A video's range requests are
// answered from a kept copy, so the shortlist's reels play offline.
const CACHE = "castroom-8690ffe0e4b73465";
const MEDIA = "castroom-media-1";
/** The kept videos of one production: `${KEPT}${production id}`. */
const KEPT = "castroom-kept-1:";
const SHELL = ["/", "/app.js?v=8690ffe0e4b73465", "/app.css?v=8690ffe0e4b73465", "/schema.json"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys
            .filter((k) => k.startsWith("castroom-") && k !== CACHE && k !== MEDIA && !k.startsWith(KEPT))
            .map((k) => caches.delete(k)),
        ),
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
    const production = event.request.headers.get("x-castroom-keep");
    if (production) {
      event.respondWith(keep(event.request, url.pathname, production));
      return;
    }
    if (event.request.headers.has("range")) {
      event.respondWith(
        caches.match(url.pathname).then((hit) =>
          hit ? partial(hit, event.request.headers.get("range")) : fetch(event.request),
        ),
      );
      return;
    }
    event.respondWith(
      caches.match(url.pathname).then(async (hit) => {
        if (hit) return hit;
        const response = await fetch(event.request);
        if (response.status === 200) await (await caches.open(MEDIA)).put(url.pathname, response.clone());
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

/** Keep a file in a production's cache of kept videos, streamed straight in (the page
 * reads nothing back): 204 when it was kept already, 201 when it is kept now, else the
 * server's answer. */
async function keep(request, key, production) {
  const cache = await caches.open(KEPT + production);
  if (await cache.match(key)) return new Response(null, { status: 204 });
  const response = await fetch(request.url);
  if (response.status !== 200) return response;
  await cache.put(key, response);
  return new Response(null, { status: 201 });
}

self.addEventListener("message", (event) => {
  const { type, production, keep, videos } = event.data || {};
  if (type !== "keep-only" || typeof production !== "string") return;
  if (!Array.isArray(keep) || !Array.isArray(videos)) return;
  const reply = event.ports[0];
  event.waitUntil(
    keepOnly(production, new Set(keep.map((h) => `/media/${h}`)), videos).then(
      (dropped) => reply?.postMessage({ dropped }),
      (error) => reply?.postMessage({ error: String(error) }),
    ),
  );
});

/** Drop a production's kept videos that are not in `keep` (paths, /media/HASH): its
 * shortlist no longer holds them. Its `videos` (every reel and self-tape it refers to)
 * leave the picture cache, where builds before the production caches kept the
 * shortlist's, with no way to drop them (the server names every file's type
 * application/octet-stream, so only the page knows which are videos). The number dropped. */
async function keepOnly(production, keep, videos) {
  let dropped = 0;
  const cache = await caches.open(KEPT + production);
  for (const request of await cache.keys()) {
    if (!keep.has(new URL(request.url).pathname) && (await cache.delete(request))) dropped += 1;
  }
  const media = await caches.open(MEDIA);
  for (const hash of videos) if (await media.delete(`/media/${hash}`)) dropped += 1;
  return dropped;
}

/** A range of a kept file, as the server would answer it (206, or 416 when the range
 * lies outside the file). One range only: what a video element asks. */
async function partial(kept, header) {
  const blob = await kept.blob();
  const size = blob.size;
  const match = /^bytes=(\d*)-(\d*)$/.exec((header || "").trim());
  let start = match && match[1] !== "" ? Number(match[1]) : null;
  let end = match && match[2] !== "" ? Number(match[2]) : size - 1;
  if (match && start === null) {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  }
  if (!match || start === null || start >= size || end < start) {
    return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${size}` } });
  }
  end = Math.min(end, size - 1);
  return new Response(blob.slice(start, end + 1), {
    status: 206,
    headers: {
      "Accept-Ranges": "bytes",
      "Content-Range": `bytes ${start}-${end}/${size}`,
      "Content-Length": String(end - start + 1),
      "Content-Type": kept.headers.get("Content-Type") || "application/octet-stream",
    },
  });
}
