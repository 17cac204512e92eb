// Drop-out: pick a booked talent, see the affected scenes and days and the ranked
// replacements with their reasons (computed by the server's contingency plugin).
import { useEffect, useState } from "preact/hooks";

export function DropOutView({ ctx, store, query }) {
  const booked = store.all("candidate").filter((c) => c.stage === "booked");
  const talents = [...new Map(booked.map((c) => [c.talent_id, store.get("talent", c.talent_id)])).values()].filter(Boolean);
  talents.sort((a, b) => a.name.localeCompare(b.name));
  const [talent, setTalent] = useState(query.get("talent") ?? "");
  const [plan, setPlan] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!talent) return;
    setPlan(null);
    fetch(`/api/${ctx.production.id}/replacements?talent=${encodeURIComponent(talent)}`, {
      headers: { Authorization: `Bearer ${ctx.token}` },
    })
      .then(async (r) => (r.ok ? r.json() : Promise.reject(new Error((await r.json()).error))))
      .then((data) => {
        setPlan(data);
        setError(null);
      })
      .catch((e) => setError(e instanceof TypeError ? "Replacements are ranked by the server: it cannot be reached." : e.message));
  }, [talent, store.version]);
  return (
    <section class="dropout">
      <label>
        Who drops out?{" "}
        <select aria-label="booked talent" value={talent} onChange={(e) => setTalent(e.currentTarget.value)}>
          <option value="">pick a booked talent</option>
          {talents.map((t) => (
            <option value={t.id}>{t.name}</option>
          ))}
        </select>
      </label>
      {error ? <p class="error">{error}</p> : null}
      {plan
        ? plan.roles.map((role) => (
            <div class="role-plan">
              <h3>
                {role.role}
                {role.era ? ` (${role.era})` : ""}: {role.scenes.length} scenes on {role.shoot_days.length} shoot days
              </h3>
              <p class="scene-list" aria-label="affected scenes">
                {role.scenes.map((s) => (
                  <span>{s.number}</span>
                ))}
              </p>
              <p class="muted" aria-label="affected shoot days">
                {role.shoot_days.map((d) => d.date).join(", ")}
              </p>
              <ol class="replacements">
                {role.replacements.map((item) => (
                  <li class="replacement">
                    <strong>{item.name}</strong> <span class="muted">{item.tier}, fit {item.score}</span>
                    <p class="reasons">{item.reasons.join("; ")}</p>
                  </li>
                ))}
              </ol>
            </div>
          ))
        : talent && !error
          ? <p class="empty">Ranking replacements…</p>
          : null}
    </section>
  );
}
