// The presentation page (docs/presentations.md): a role's selects for a producer or
// director, from a link `castroom present` made. It reads only /present/api and the
// selects' files (/present/media/{hash}, range requests for video), and writes only
// votes (/present/api/vote): 1 to 5 stars and comments, by the name the viewer gives
// once (kept in this browser). The token is the link's; the server refuses it anywhere
// else. Nothing is fetched from elsewhere.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

const VIEWER_KEY = "castroom.present.viewer";
const token = new URLSearchParams(location.search).get("token") ?? "";
const root = document.getElementById("present");

class Refusal extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(path, init = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
      cache: "no-store",
    });
  } catch {
    throw new Refusal(0, "The server cannot be reached; try again in a moment.");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Refusal(response.status, data.error ?? `the server answered ${response.status}`);
  return data;
}

function mediaUrl(hash) {
  return `/present/media/${hash}?token=${encodeURIComponent(token)}`;
}

function Ended({ message }) {
  return (
    <section class="ended">
      <h1>This presentation has ended</h1>
      <p class="note">{message}</p>
    </section>
  );
}

function Invalid({ message, unreachable }) {
  return (
    <section class="invalid">
      <h1>{unreachable ? "The presentation cannot be opened now" : "This link does not open a presentation"}</h1>
      <p class="note">{message}</p>
    </section>
  );
}

function AskName({ onName }) {
  const [name, setName] = useState("");
  return (
    <form
      class="name"
      onSubmit={(e) => {
        e.preventDefault();
        if (name.trim()) onName(name.trim());
      }}
    >
      <label for="viewer">Your name, so the casting team knows whose votes these are:</label>
      <input id="viewer" name="viewer" autocomplete="name" maxlength="60" value={name} onInput={(e) => setName(e.target.value)} />
      <button type="submit">Start</button>
    </form>
  );
}

function Files({ media }) {
  const headshot = media.find((m) => m.kind === "headshot");
  const videos = media.filter((m) => m.mime?.startsWith("video/"));
  const documents = media.filter((m) => m.mime === "application/pdf");
  return (
    <div>
      {headshot ? (
        <a href={mediaUrl(headshot.hash)} target="_blank" rel="noopener">
          <img class="headshot" src={mediaUrl(headshot.thumbnail ?? headshot.hash)} alt={`Headshot: ${headshot.name}`} />
        </a>
      ) : (
        <div class="face" aria-hidden="true">?</div>
      )}
      {videos.map((m) => (
        <video
          controls
          preload="metadata"
          data-hash={m.hash}
          poster={m.poster ? mediaUrl(m.poster) : undefined}
          src={mediaUrl(m.hash)}
          aria-label={`${m.kind === "selftape" ? "Self-tape" : "Reel"}: ${m.name}`}
        />
      ))}
      {documents.length ? (
        <p class="files">
          {documents.map((m) => (
            <a href={mediaUrl(m.hash)} target="_blank" rel="noopener" data-hash={m.hash}>
              {m.kind === "resume" ? "Résumé" : "File"} ({m.name}){" "}
            </a>
          ))}
        </p>
      ) : null}
    </div>
  );
}

function facts(s) {
  const age = s.playing_age_min != null ? `plays ${s.playing_age_min}–${s.playing_age_max ?? s.playing_age_min}` : null;
  const height = s.height_cm ? `${s.height_cm} cm` : null;
  const langs = s.languages?.length ? s.languages.join(", ") : null;
  return [s.stage.replace("_", " "), age, s.union || null, height, langs].filter(Boolean).join(" · ");
}

function Select({ select, viewerKey, onEnded }) {
  const [rating, setRating] = useState(select.viewer_ratings[viewerKey] ?? 0);
  const [comment, setComment] = useState("");
  const [status, setStatus] = useState(null);
  const send = async (ballot) => {
    setStatus(null);
    try {
      const done = await call("/present/api/vote", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ viewer: viewerKey.slice(0, -SUFFIX.length), candidate: select.candidate, ...ballot }),
      });
      if (done.rating) setRating(done.rating);
      if (ballot.comment) setComment("");
      setStatus({ ok: ballot.comment ? "Comment sent" : "Vote saved" });
    } catch (error) {
      if (error.status === 410 || error.status === 401) onEnded(error);
      else setStatus({ error: error.message });
    }
  };
  return (
    <article class="select" data-candidate={select.candidate}>
      <Files media={select.media} />
      <h2>{select.talent}</h2>
      <p class="facts">{facts(select)}</p>
      <div class="stars" role="group" aria-label={`your vote on ${select.talent}`}>
        {[1, 2, 3, 4, 5].map((n) => (
          <button type="button" class={rating >= n ? "on" : ""} aria-label={`${n} star${n > 1 ? "s" : ""}`} aria-pressed={rating === n} onClick={() => send({ rating: n })}>
            ★
          </button>
        ))}
      </div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (comment.trim()) send({ comment });
        }}
      >
        <textarea aria-label={`your comment on ${select.talent}`} maxlength="2000" value={comment} onInput={(e) => setComment(e.target.value)} />
        <button type="submit">Send comment</button>
        {status?.ok ? <span class="saved" role="status">{status.ok}</span> : null}
        {status?.error ? <p class="error" role="alert">{status.error}</p> : null}
      </form>
    </article>
  );
}

let SUFFIX = " (presentation)";

function Presentation() {
  const [state, setState] = useState({ loading: true });
  const [viewer, setViewer] = useState(localStorage.getItem(VIEWER_KEY) ?? "");
  const load = () =>
    call("/present/api")
      .then((data) => {
        SUFFIX = data.viewer_suffix ?? SUFFIX;
        setState({ data });
      })
      .catch((error) => setState({ error }));
  useEffect(() => {
    load();
  }, []);
  const { data, error } = state;
  if (error) {
    if (error.status === 410) return <Ended message={error.message} />;
    return <Invalid message={error.message} unreachable={error.status === 0} />;
  }
  if (!data) return <p class="note">Opening the presentation…</p>;
  if (!viewer)
    return (
      <>
        <Header data={data} />
        <AskName
          onName={(name) => {
            localStorage.setItem(VIEWER_KEY, name);
            setViewer(name);
          }}
        />
      </>
    );
  const viewerKey = viewer.replace(/\s+/g, " ").trim() + SUFFIX;
  return (
    <>
      <Header data={data} />
      <p class="note">
        Voting as <strong class="viewer">{viewer}</strong>{" "}
        <button
          type="button"
          onClick={() => {
            localStorage.removeItem(VIEWER_KEY);
            setViewer("");
          }}
        >
          not you?
        </button>
      </p>
      {data.selects.length ? null : <p class="note">No candidates are at this stage yet.</p>}
      <section class="selects">
        {data.selects.map((s) => (
          <Select key={s.candidate} select={s} viewerKey={viewerKey} onEnded={(e) => setState({ error: e })} />
        ))}
      </section>
    </>
  );
}

function Header({ data }) {
  const until = data.expires ? new Date(data.expires * 1000).toLocaleString() : null;
  return (
    <header>
      <h1>
        {data.role}
        {data.era ? ` (${data.era})` : ""}
      </h1>
      <p>
        {data.production} · {data.selects.length} select{data.selects.length === 1 ? "" : "s"} at {data.stage.replace("_", " ")} or later
        {until ? ` · open until ${until}` : ""}
      </p>
      {data.description ? <p>{data.description}</p> : null}
    </header>
  );
}

root.textContent = "";
render(<Presentation />, root);
