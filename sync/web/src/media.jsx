// Attached files (docs/media.md): headshots on cards, every file in the talent view.
// The bytes come from the server by hash (GET /media/{hash}, range requests for video);
// the service worker keeps each picture it has shown, and the shortlist's reels and
// self-tapes (keepShortlist), so a shortlist still shows, and plays, offline.

/** The URL of a blob (img and video cannot send headers: the token rides in the query). */
export function mediaUrl(ctx, hash) {
  return `/media/${hash}?token=${encodeURIComponent(ctx.token)}`;
}

/** An entity's attachments, newest first. */
export function attachments(entity) {
  const records = Object.values(entity?.media ?? {}).filter((m) => m && m.hash && m.kind);
  return records.sort((a, b) => String(b.added_at).localeCompare(String(a.added_at)));
}

/** The picture a card shows: the newest headshot's thumbnail. */
export function headshotThumb(entity) {
  const face = attachments(entity).find((m) => m.kind === "headshot");
  return face?.thumbnail ?? null;
}

/** The stages of the shortlist: past submission, still in the running. */
export const SHORTLIST_STAGES = new Set(["shortlisted", "audition", "callback", "chemistry_read", "offer"]);
const VIDEO_KINDS = new Set(["reel", "selftape"]);
/** A video larger than this is not kept for offline viewing (it plays from the server). */
export const KEEP_MAX_BYTES = 512 * 1024 * 1024;

/** The reels and self-tapes of the shortlist: each shortlisted candidate's own files and
 * its talent's, the newest first, each once. */
export function shortlistVideos(store) {
  const found = new Map();
  for (const candidate of store.all("candidate")) {
    if (!SHORTLIST_STAGES.has(candidate.stage)) continue;
    const talent = store.get("talent", candidate.talent_id);
    for (const m of videos([candidate, talent])) if (!(m.bytes > KEEP_MAX_BYTES)) found.set(m.hash, m);
  }
  return [...found.values()];
}

/** The reels and self-tapes of these entities. */
function videos(entities) {
  return entities.flatMap((e) => attachments(e).filter((m) => VIDEO_KINDS.has(m.kind)));
}

let keeping = null;

/** Ask the service worker to keep the shortlist's videos, one at a time, once it has
 * dropped the kept ones no longer on it (a run already going is left to finish; if the
 * production changed meanwhile, another follows). Called only online, with the page's
 * copy synced with the server's: a copy still loading would drop what it had not read. */
export function keepShortlist(ctx, store) {
  const worker = navigator.serviceWorker?.controller;
  if (keeping || !worker) return keeping;
  const wanted = shortlistVideos(store);
  const version = store.version;
  const production = ctx.production.id;
  keeping = (async () => {
    const everyVideo = videos([...store.all("talent"), ...store.all("candidate")]);
    await keepOnly(worker, production, wanted, everyVideo);
    for (const m of wanted) {
      try {
        const answer = await fetch(mediaUrl(ctx, m.hash), { headers: { "X-Castroom-Keep": production } });
        if (!answer.ok) continue; // not on the server yet (a peer's sync will bring it)
      } catch {
        return; // offline: what is kept already stays
      }
    }
  })().finally(() => {
    keeping = null;
    if (store.version !== version) setTimeout(() => keepShortlist(ctx, store), 1000);
  });
  return keeping;
}

/** Tell the service worker which of the production's videos to keep (the rest of its
 * kept ones go, and none stays among the pictures); the number it dropped, once it has. */
function keepOnly(worker, production, wanted, everyVideo) {
  const message = {
    type: "keep-only",
    production,
    keep: wanted.map((m) => m.hash),
    videos: [...new Set(everyVideo.map((m) => m.hash))],
  };
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data?.dropped ?? 0);
    setTimeout(() => resolve(0), 10000); // a worker that does not answer holds nothing up
    worker.postMessage(message, [channel.port2]);
  });
}

const KIND_LABELS = { headshot: "Headshot", reel: "Reel", resume: "Résumé", selftape: "Self-tape", other: "File" };

/** Every file attached to a talent or candidate: pictures, playable video, résumés. */
export function MediaStrip({ ctx, entity }) {
  const files = attachments(entity);
  if (!files.length) return null;
  return (
    <section class="media-strip" aria-label="attached files">
      {files.map((m) => (
        <figure class="media-item" data-kind={m.kind} data-hash={m.hash}>
          {m.mime?.startsWith("video/") ? (
            <video
              controls
              preload="none"
              poster={m.poster ? mediaUrl(ctx, m.poster) : undefined}
              src={mediaUrl(ctx, m.hash)}
              aria-label={`${KIND_LABELS[m.kind] ?? m.kind}: ${m.name}`}
            />
          ) : m.thumbnail ? (
            <a href={mediaUrl(ctx, m.hash)} target="_blank" rel="noopener">
              <img src={mediaUrl(ctx, m.thumbnail)} alt={`${KIND_LABELS[m.kind] ?? m.kind}: ${m.name}`} />
            </a>
          ) : null}
          <figcaption>
            {KIND_LABELS[m.kind] ?? m.kind} · {m.name}
          </figcaption>
        </figure>
      ))}
    </section>
  );
}
