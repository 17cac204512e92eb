// Casting board (casting director): per role and era, candidates in stage columns.
import { useState } from "preact/hooks";
import { FOLDED_STAGES, STAGES } from "../store.js";
import { headshotThumb, mediaUrl } from "../media.jsx";
import { initials } from "../util.js";
import { VirtualList } from "../vlist.jsx";
import { KIND_ORDER } from "./schedule.jsx";

// How a presentation viewer's rating is keyed (castroom.core.model.VIEWER_SUFFIX).
const VIEWER_SUFFIX = " (presentation)";

const STAGE_LABELS = {
  submitted: "Submitted",
  shortlisted: "Shortlisted",
  audition: "Audition",
  callback: "Callback",
  chemistry_read: "Chemistry read",
  offer: "Offer",
  booked: "Booked",
  declined: "Declined",
  released: "Released",
  dropped: "Dropped",
};

export function Board({ ctx, store, query, report }) {
  const roles = store.all("role").filter((r) => r.status !== "cut");
  roles.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.name.localeCompare(b.name));
  const roleId = query.get("role") ?? roles[0]?.id;
  const role = store.get("role", roleId);
  if (!role) return <p class="empty">No roles yet.</p>;
  const eras = role.eras.map((e) => e.name);
  const wanted = query.get("era");
  const era = eras.length ? (eras.includes(wanted) ? wanted : eras[0]) : null;
  const candidates = store
    .all("candidate")
    .filter((c) => c.role_id === role.id && (era === null || c.era === era || c.era === null));
  const move = (id, stage) => {
    try {
      store.edit("candidate", id, { stage });
      report(null);
    } catch (error) {
      report(error);
    }
  };
  return (
    <div class="board">
      <aside class="role-list" aria-label="roles">
        {roles.map((r) => (
          <a href={`#/${ctx.production.id}/board?role=${r.id}`} class={r.id === role.id ? "active" : ""}>
            {r.name}
          </a>
        ))}
      </aside>
      <section class="board-main">
        <h2>
          {role.name} <small>{role.kind.replace("_", " ")}</small>
        </h2>
        {eras.length > 1 ? (
          <div class="eras" role="tablist">
            {eras.map((name) => (
              <a role="tab" aria-selected={name === era} href={`#/${ctx.production.id}/board?role=${role.id}&era=${encodeURIComponent(name)}`} class={name === era ? "active" : ""}>
                {name}
              </a>
            ))}
          </div>
        ) : null}
        <div class="columns">
          {STAGES.map((stage) => (
            <Column ctx={ctx} stage={stage} cards={candidates.filter((c) => c.stage === stage)} store={store} move={move} report={report} />
          ))}
        </div>
        <details class="folded">
          <summary>
            Declined, released, dropped ({candidates.filter((c) => FOLDED_STAGES.includes(c.stage)).length})
          </summary>
          <div class="columns">
            {FOLDED_STAGES.map((stage) => (
              <Column ctx={ctx} stage={stage} cards={candidates.filter((c) => c.stage === stage)} store={store} move={move} report={report} />
            ))}
          </div>
        </details>
      </section>
    </div>
  );
}

// A card's row: its fixed height (app.css keeps a card to one line of name, one of stars).
const CARD_ROW = 70;

function Column({ ctx, stage, cards, store, move, report }) {
  const [over, setOver] = useState(false);
  return (
    <div
      class={`column ${over ? "over" : ""}`}
      data-stage={stage}
      onDragOver={(e) => {
        if (!store.canWrite) return;
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const id = e.dataTransfer.getData("text/x-candidate");
        if (id) move(id, stage);
      }}
    >
      <h3>
        {STAGE_LABELS[stage]} <span class="count">{cards.length}</span>
      </h3>
      {/* Only the cards in view are rendered: a column may hold thousands. */}
      <VirtualList
        className="cards"
        label={`${STAGE_LABELS[stage]} cards`}
        items={cards}
        rowHeight={CARD_ROW}
        height={Math.min(cards.length * CARD_ROW, Math.max(240, window.innerHeight - 260))}
        render={(c) => <Card ctx={ctx} candidate={c} store={store} report={report} />}
      />
    </div>
  );
}

function Card({ ctx, candidate, store, report }) {
  const talent = store.get("talent", candidate.talent_id);
  const name = talent?.name ?? "(unknown talent)";
  const ratings = candidate.ratings ?? {};
  const mine = ratings[store.member];
  // A presentation's viewers (docs/presentations.md) are not the team: shown apart.
  const viewers = Object.entries(ratings).filter(([who]) => who.endsWith(VIEWER_SUFFIX));
  const others = Object.entries(ratings).filter(([who]) => who !== store.member && !who.endsWith(VIEWER_SUFFIX));
  const average = others.length ? others.reduce((sum, [, n]) => sum + n, 0) / others.length : null;
  const viewersAverage = viewers.length ? viewers.reduce((sum, [, n]) => sum + n, 0) / viewers.length : null;
  // An attached headshot's thumbnail, else a same-origin or inline link: the page never
  // reaches out to the internet.
  const thumb = headshotThumb(talent);
  const linked = talent?.headshot && /^(data:image\/|\/)/.test(talent.headshot) ? talent.headshot : null;
  const headshot = thumb ? mediaUrl(ctx, thumb) : linked;
  const rate = (n) => {
    try {
      store.setKey("candidate", candidate.id, "ratings", store.member, n);
      report(null);
    } catch (error) {
      report(error);
    }
  };
  return (
    <article
      class="card"
      data-candidate={candidate.id}
      draggable={store.canWrite}
      onDragStart={(e) => {
        e.dataTransfer.setData("text/x-candidate", candidate.id);
        e.dataTransfer.effectAllowed = "move";
      }}
    >
      <div class="card-head">
        {headshot ? <img class="thumb" src={headshot} alt="" /> : <span class="thumb">{initials(name)}</span>}
        <span class="card-name">{name}</span>
      </div>
      <div class="rating" aria-label={`your rating of ${name}`}>
        {[1, 2, 3, 4, 5].map((n) => (
          <button
            class={mine >= n ? "star on" : "star"}
            disabled={!store.canWrite}
            aria-label={`rate ${n}`}
            aria-pressed={mine === n}
            onClick={() => rate(n)}
          >
            ★
          </button>
        ))}
        {average !== null ? (
          <span class="others" title={others.map(([who, n]) => `${who}: ${n}`).join(", ")}>
            team {average.toFixed(1)} ({others.length})
          </span>
        ) : null}
        {viewersAverage !== null ? (
          <span
            class="viewers"
            title={viewers.map(([who, n]) => `${who.slice(0, -VIEWER_SUFFIX.length)}: ${n}`).join(", ")}
          >
            presentation {viewersAverage.toFixed(1)} ({viewers.length})
          </span>
        ) : null}
      </div>
    </article>
  );
}
