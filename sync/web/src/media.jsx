// Attached files (docs/media.md): headshots on cards, every file in the talent view.
// The bytes come from the server by hash (GET /media/{hash}, range requests for video);
// the service worker keeps each picture it has shown, so a shortlist still shows offline.

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
