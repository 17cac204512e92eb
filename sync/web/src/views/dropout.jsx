// Drop-out: pick a booked talent, see the affected scenes and days and the ranked
// replacements with their reasons (computed by the server's contingency plugin), then
// apply one: the server's plan is shown first, and applied at once, in one change, as
// `castroom replace --apply` applies it.
import { useEffect, useState } from "preact/hooks";
import { ApiError, apiJson } from "../api.js";

export function DropOutView({ ctx, store, query }) {
  const booked = store.all("candidate").filter((c) => c.stage === "booked");
  const talents = [...new Map(booked.map((c) => [c.talent_id, store.get("talent", c.talent_id)])).values()].filter(Boolean);
  talents.sort((a, b) => a.name.localeCompare(b.name));
  const [talent, setTalent] = useState(query.get("talent") ?? "");
  const [plan, setPlan] = useState(null);
  // Two errors: the ranking's (cleared when it is fetched again) and applying's, which
  // stays until the user acts: a refetch after a peer's change must not hide a refusal.
  const [rankError, setRankError] = useState(null);
  const [error, setError] = useState(null);
  const [pending, setPending] = useState(null); // {role, item, shown} once a plan is shown
  const [done, setDone] = useState(null);
  useEffect(() => {
    if (!talent) return;
    apiJson(ctx, "replacements", { query: { talent } })
      .then((data) => {
        setPlan(data);
        setRankError(null);
      })
      .catch((e) => setRankError(e instanceof ApiError ? e.message : String(e)));
  }, [talent, store.version]);
  const pick = (id) => {
    setTalent(id);
    setPlan(null);
    setPending(null);
    setDone(null);
    setError(null);
  };
  // Applying sends the shown plan's id: the server refuses if the plan is now another.
  const ask = (role, item, dryRun, expect) =>
    apiJson(ctx, "replacement", {
      method: "POST",
      json: { talent, role: role.role_id, replacement: item.candidate_id ?? item.talent_id, dry_run: dryRun, expect },
    });
  const show = async (role, item) => {
    setDone(null);
    try {
      setPending({ role, item, shown: await ask(role, item, true) });
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  };
  const apply = async () => {
    try {
      const result = await ask(pending.role, pending.item, false, pending.shown.plan_id);
      setDone({ ...result, name: pending.item.name, role: pending.role.role });
      setPending(null);
      setError(null);
    } catch (e) {
      setError(e.message);
      setPending(null);
    }
  };
  const who = store.get("talent", talent)?.name ?? "";
  return (
    <section class="dropout">
      <label>
        Who drops out?{" "}
        <select aria-label="booked talent" value={talent} onChange={(e) => pick(e.currentTarget.value)}>
          <option value="">pick a booked talent</option>
          {talents.map((t) => (
            <option value={t.id}>{t.name}</option>
          ))}
        </select>
      </label>
      {error || rankError ? (
        <p class="error" role="alert" data-testid="dropout-error">
          {error ?? rankError}
        </p>
      ) : null}
      {done ? (
        <div class="applied" data-testid="replacement-applied">
          <p>
            <strong>{done.name}</strong> is booked as {done.role}; {who} is dropped.{" "}
            {done.cancelled_deals.length ? `${done.cancelled_deals.length} deal${done.cancelled_deals.length > 1 ? "s" : ""} cancelled. ` : ""}
            {done.drafted ? "A draft deal at their rate counts in the budget: negotiate it, then sign it." : done.deal_needed ? "No deal yet (their rate is unknown): add one." : ""}
          </p>
        </div>
      ) : null}
      {pending ? <PlanShown pending={pending} onApply={apply} onCancel={() => setPending(null)} /> : null}
      {plan
        ? plan.roles.map((role) => (
            <div class="role-plan" data-role={role.role_id}>
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
                  <li class="replacement" data-talent={item.talent_id} data-choice={item.candidate_id ?? item.talent_id}>
                    <strong>{item.name}</strong> <span class="muted">{item.tier}, fit {item.score}</span>
                    {store.canWrite ? (
                      <button class="choose" onClick={() => show(role, item)}>
                        Replace with {item.name}…
                      </button>
                    ) : null}
                    <p class="reasons">{item.reasons.join("; ")}</p>
                  </li>
                ))}
              </ol>
            </div>
          ))
        : talent && !rankError
          ? <p class="empty">Ranking replacements…</p>
          : null}
    </section>
  );
}

function PlanShown({ pending, onApply, onCancel }) {
  const [busy, setBusy] = useState(false);
  return (
    <div class="plan-shown" role="dialog" aria-label="the replacement's plan">
      <h3>{pending.shown.reason}</h3>
      <p class="muted">Applied at once, as one change:</p>
      <ul class="plan-lines">
        {pending.shown.plan.map((line) => (
          <li>{line}</li>
        ))}
      </ul>
      <button
        class="primary"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          await onApply();
          setBusy(false);
        }}
      >
        Apply
      </button>{" "}
      <button onClick={onCancel}>Cancel</button>
    </div>
  );
}
