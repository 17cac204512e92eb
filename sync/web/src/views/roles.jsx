// Roles (script analyst): eras, specs, rate cap, ordered backups (drag one onto another to
// take its place; the arrow buttons do the same from the keyboard), who is booked per era,
// and the scenes each role appears in.
import { useState } from "preact/hooks";
import { VirtualList } from "../vlist.jsx";
import { formatMoney, minorDigits, parseMoneyField } from "../util.js";

export function RolesView({ ctx, store, query, report }) {
  const roles = [...store.all("role")].sort((a, b) => a.name.localeCompare(b.name));
  const role = store.get("role", query.get("id") ?? roles[0]?.id);
  return (
    <div class="split">
      <section class="list-pane">
        <p class="summary">{roles.length} roles</p>
        <VirtualList
          label="roles"
          items={roles}
          rowHeight={40}
          height={Math.max(240, window.innerHeight - 190)}
          render={(r) => (
            <a class={`talent-row ${r.id === role?.id ? "active" : ""}`} href={`#/${ctx.production.id}/roles?id=${r.id}`}>
              <span class="name">{r.name}</span>
              <span class="meta">
                {r.kind.replace("_", " ")} · {r.status.replace("_", " ")}
              </span>
            </a>
          )}
        />
      </section>
      {role ? <RoleDetail key={role.id} role={role} store={store} report={report} ctx={ctx} /> : <section class="detail empty">No roles yet.</section>}
    </div>
  );
}

function RoleDetail({ ctx, role, store, report }) {
  const currency = store.production().currency;
  const [cap, setCap] = useState(role.rate_cap === null ? "" : String(role.rate_cap / 10 ** minorDigits(store.production().currency)));
  const [ages, setAges] = useState([role.age_min ?? "", role.age_max ?? ""]);
  const [error, setError] = useState(null);
  const attempt = (fn) => {
    try {
      fn();
      setError(null);
      report(null);
    } catch (err) {
      setError(err.message);
    }
  };
  const booked = store.all("candidate").filter((c) => c.role_id === role.id && c.stage === "booked");
  const scenes = store.all("scene").filter((s) => s.characters.includes(role.id));
  scenes.sort((a, b) => a.number.localeCompare(b.number, undefined, { numeric: true }));
  const name = (talentOrCandidate) => {
    const talent = store.get("talent", talentOrCandidate) ?? store.get("talent", store.get("candidate", talentOrCandidate)?.talent_id);
    return talent?.name ?? talentOrCandidate;
  };
  const backups = [...new Set(role.backups)];
  // Positions in the stored array (a peer may have left a duplicate in it).
  const at = (id) => role.backups.indexOf(id);
  const move = (id, target) => attempt(() => store.moveItem("role", role.id, "backups", at(id), at(target)));
  const [over, setOver] = useState(null);
  const number = (text) => (text === "" ? null : Number(text));
  return (
    <section class="detail role-detail">
      <h2>{role.name}</h2>
      <p class="muted">{role.description}</p>
      {error ? (
        <p class="error" role="alert" data-testid="form-error">
          {error}
        </p>
      ) : null}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          attempt(() =>
            store.edit("role", role.id, {
              rate_cap: cap.trim() === "" ? null : parseMoneyField("role", "rate_cap", cap, currency),
              age_min: number(ages[0]),
              age_max: number(ages[1]),
            }),
          );
        }}
      >
        <fieldset disabled={!store.canWrite}>
          <label>
            Rate cap ({currency}) <input name="rate_cap" value={cap} onInput={(e) => setCap(e.currentTarget.value)} />
          </label>
          <label>
            Ages <input name="age_min" type="number" value={ages[0]} onInput={(e) => setAges([e.currentTarget.value, ages[1]])} />
          </label>
          <label>
            to <input name="age_max" type="number" value={ages[1]} onInput={(e) => setAges([ages[0], e.currentTarget.value])} />
          </label>
          <button type="submit">Save</button>
        </fieldset>
      </form>
      <p>
        Kind: {role.kind.replace("_", " ")} · status {role.status.replace("_", " ")} · rate cap {formatMoney(role.rate_cap, currency) || "none"}
      </p>
      <h3>Eras</h3>
      {role.eras.length ? (
        <table class="table">
          <thead>
            <tr>
              <th>era</th>
              <th>ages</th>
              <th>starts</th>
              <th>booked</th>
            </tr>
          </thead>
          <tbody>
            {role.eras.map((era) => (
              <tr>
                <td>{era.name}</td>
                <td>
                  {era.age_min ?? "?"}–{era.age_max ?? "?"}
                </td>
                <td>{era.starts}</td>
                <td data-testid="booked">{booked.filter((c) => c.era === era.name).map((c) => name(c.talent_id)).join(", ") || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>One era. Booked: {booked.map((c) => name(c.talent_id)).join(", ") || "nobody yet"}</p>
      )}
      <h3>Specs</h3>
      {Object.keys(role.specs).length ? (
        <dl class="specs">
          {Object.entries(role.specs).map(([key, value]) => [<dt>{key}</dt>, <dd>{value}</dd>])}
        </dl>
      ) : (
        <p class="muted">none</p>
      )}
      <h3>Backups (first choice first)</h3>
      <ol class="backups">
        {backups.map((id, index) => (
          <li
            class={over === id ? "drop-target" : ""}
            draggable={store.canWrite}
            data-backup={id}
            onDragStart={(e) => {
              e.dataTransfer.setData("text/x-backup", id);
              e.dataTransfer.effectAllowed = "move";
            }}
            onDragOver={(e) => {
              if (!store.canWrite || !e.dataTransfer.types.includes("text/x-backup")) return;
              e.preventDefault();
              setOver(id);
            }}
            onDragLeave={() => setOver(null)}
            onDrop={(e) => {
              e.preventDefault();
              setOver(null);
              const dragged = e.dataTransfer.getData("text/x-backup");
              if (dragged && dragged !== id) move(dragged, id);
            }}
          >
            <span class="grip" aria-hidden="true">
              {store.canWrite ? "⠿ " : ""}
            </span>
            {name(id)}
            {store.canWrite ? (
              <span class="moves">
                <button aria-label="move up" disabled={index === 0} onClick={() => move(id, backups[index - 1])}>
                  ↑
                </button>
                <button aria-label="move down" disabled={index === backups.length - 1} onClick={() => move(id, backups[index + 1])}>
                  ↓
                </button>
              </span>
            ) : null}
          </li>
        ))}
      </ol>
      {backups.length ? null : <p class="muted">no backups</p>}
      <h3>Scenes ({scenes.length})</h3>
      <p class="scene-list">
        {scenes.map((s) => (
          <a href={`#/${ctx.production.id}/schedule?scene=${s.id}`} title={s.heading}>
            {s.number}
          </a>
        ))}
      </p>
    </section>
  );
}
