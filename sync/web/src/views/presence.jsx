// Presence (Yjs awareness): who else has the room open and what they are looking at.
import { useEffect, useState } from "preact/hooks";
import { colourFor, initials } from "../util.js";

export function usePresence(ctx, view) {
  const awareness = ctx.provider.awareness;
  const [people, setPeople] = useState([]);
  useEffect(() => {
    awareness.setLocalStateField("user", { name: ctx.session.member, view, since: Date.now() });
  }, [awareness, view]);
  useEffect(() => {
    const update = () => {
      const out = [];
      awareness.getStates().forEach((state, clientId) => {
        if (state?.user) out.push({ ...state.user, clientId, self: clientId === awareness.clientID });
      });
      out.sort((a, b) => (a.self ? -1 : b.self ? 1 : a.name.localeCompare(b.name)));
      setPeople(out);
    };
    awareness.on("change", update);
    update();
    return () => awareness.off("change", update);
  }, [awareness]);
  return people;
}

export function PresenceView({ people }) {
  return (
    <section class="presence">
      <h2>In the room now</h2>
      <ul class="people-list">
        {people.map((p) => (
          <li data-member={p.name}>
            <span class="avatar" style={{ background: colourFor(p.name) }}>
              {initials(p.name)}
            </span>
            <strong>{p.name}</strong> {p.self ? "(you)" : ""} <span class="muted">looking at {p.view}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
