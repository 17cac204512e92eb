// Talent (talent coordinator): search as you type, filters, add and edit.
import { useMemo, useState } from "preact/hooks";
import { MediaStrip } from "../media.jsx";
import { VirtualList } from "../vlist.jsx";
import { fold, formatMoney, minorDigits, parseMoneyField } from "../util.js";

const BLOCKING = new Set(["unavailable", "booked"]);

export function TalentView({ ctx, store, query, report }) {
  const [search, setSearch] = useState("");
  const [age, setAge] = useState("");
  const [language, setLanguage] = useState("");
  const [skill, setSkill] = useState("");
  const [union, setUnion] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const selected = query.get("id");
  const [adding, setAdding] = useState(false);
  const talents = store.all("talent");
  const currency = store.production().currency;
  const unions = useMemo(() => [...new Set(talents.map((t) => t.union).filter(Boolean))].sort(), [talents]);
  const busy = useMemo(() => {
    if (!from) return null;
    const end = to || from;
    const out = new Set();
    for (const a of store.all("availability")) {
      if (BLOCKING.has(a.kind) && a.start <= end && a.end >= from) out.add(a.talent_id);
    }
    return out;
  }, [store.version, from, to]);
  const folded = fold(search.trim());
  const shown = talents.filter((t) => {
    if (folded && !fold(`${t.name} ${t.agent} ${t.notes}`).includes(folded)) return false;
    if (age !== "") {
      const n = Number(age);
      if (t.playing_age_min !== null && n < t.playing_age_min) return false;
      if (t.playing_age_max !== null && n > t.playing_age_max) return false;
    }
    if (language && !t.languages.some((l) => fold(l) === fold(language))) return false;
    if (skill && !t.skills.some((s) => fold(s).includes(fold(skill)))) return false;
    if (union && t.union !== union) return false;
    if (busy && busy.has(t.id)) return false;
    return true;
  });
  shown.sort((a, b) => a.name.localeCompare(b.name));
  const editing = adding ? {} : selected ? store.get("talent", selected) : null;
  return (
    <div class="split">
      <section class="list-pane">
        <div class="filters">
          <input type="search" placeholder="Search talent" aria-label="search talent" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          <input type="number" placeholder="Playing age" aria-label="playing age" value={age} onInput={(e) => setAge(e.currentTarget.value)} />
          <input placeholder="Language" aria-label="language" value={language} onInput={(e) => setLanguage(e.currentTarget.value)} />
          <input placeholder="Skill" aria-label="skill" value={skill} onInput={(e) => setSkill(e.currentTarget.value)} />
          <select aria-label="union" value={union} onChange={(e) => setUnion(e.currentTarget.value)}>
            <option value="">any union</option>
            {unions.map((u) => (
              <option value={u}>{u}</option>
            ))}
          </select>
          <label class="free">
            free <input type="date" aria-label="free from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />–
            <input type="date" aria-label="free to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
          </label>
          {store.canWrite ? (
            <button onClick={() => setAdding(true)}>Add talent</button>
          ) : null}
        </div>
        <p class="summary" data-testid="talent-count">
          {shown.length} of {talents.length} talents
        </p>
        <VirtualList
          label="talents"
          items={shown}
          rowHeight={44}
          height={Math.max(240, window.innerHeight - 230)}
          render={(t) => (
            <a class={`talent-row ${t.id === selected ? "active" : ""}`} href={`#/${ctx.production.id}/talent?id=${t.id}`} onClick={() => setAdding(false)}>
              <span class="name">{t.name}</span>
              <span class="meta">
                {t.playing_age_min ?? "?"}–{t.playing_age_max ?? "?"} · {t.union || "no union"} · {formatMoney(t.rate, currency) || "no rate"}
              </span>
            </a>
          )}
        />
      </section>
      {editing !== null && editing !== undefined ? (
        <TalentForm key={adding ? "new" : editing.id} talent={editing} store={store} currency={currency} report={report} onDone={() => setAdding(false)} ctx={ctx} />
      ) : (
        <section class="detail empty">Pick a talent, or add one.</section>
      )}
    </div>
  );
}

const TEXT_FIELDS = [
  ["name", "Name"],
  ["agent", "Agent"],
  ["contact", "Contact"],
  ["union", "Union"],
  ["hair", "Hair"],
  ["eyes", "Eyes"],
];

function TalentForm({ ctx, talent, store, currency, report, onDone }) {
  const isNew = !talent.id;
  const [draft, setDraft] = useState(() => ({
    ...Object.fromEntries(TEXT_FIELDS.map(([f]) => [f, talent[f] ?? ""])),
    playing_age_min: talent.playing_age_min ?? "",
    playing_age_max: talent.playing_age_max ?? "",
    height_cm: talent.height_cm ?? "",
    rate: talent.rate === null || talent.rate === undefined ? "" : String(talent.rate / 10 ** minorDigits(currency)),
    languages: (talent.languages ?? []).join(", "),
    skills: (talent.skills ?? []).join(", "),
  }));
  const [error, setError] = useState(null);
  const set = (field) => (e) => setDraft({ ...draft, [field]: e.currentTarget.value });
  const number = (text) => (text === "" ? null : Number(text));
  const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
  const save = (e) => {
    e.preventDefault();
    try {
      const fields = {
        ...Object.fromEntries(TEXT_FIELDS.map(([f]) => [f, draft[f]])),
        playing_age_min: number(draft.playing_age_min),
        playing_age_max: number(draft.playing_age_max),
        height_cm: number(draft.height_cm),
        rate: draft.rate.trim() === "" ? null : parseMoneyField("talent", "rate", draft.rate, currency),
        languages: list(draft.languages),
        skills: list(draft.skills),
      };
      if (isNew) {
        const id = store.create("talent", fields);
        location.hash = `#/${ctx.production.id}/talent?id=${id}`;
        onDone();
      } else {
        const changed = Object.fromEntries(Object.entries(fields).filter(([f, v]) => JSON.stringify(v) !== JSON.stringify(talent[f])));
        if (Object.keys(changed).length) store.edit("talent", talent.id, changed);
      }
      setError(null);
      report(null);
    } catch (err) {
      // The CLI's words for the same mistake (money parsing, then the model's rules).
      setError(err.message);
    }
  };
  return (
    <form class="detail talent-form" onSubmit={save} aria-label={isNew ? "new talent" : `edit ${talent.name}`}>
      <h2>{isNew ? "New talent" : talent.name}</h2>
      {isNew ? null : <MediaStrip ctx={ctx} entity={talent} />}
      {error ? (
        <p class="error" role="alert" data-testid="form-error">
          {error}
        </p>
      ) : null}
      <fieldset disabled={!store.canWrite}>
        {TEXT_FIELDS.map(([field, label]) => (
          <label>
            {label} <input name={field} value={draft[field]} onInput={set(field)} />
          </label>
        ))}
        <label>
          Playing age from <input name="playing_age_min" type="number" value={draft.playing_age_min} onInput={set("playing_age_min")} />
        </label>
        <label>
          to <input name="playing_age_max" type="number" value={draft.playing_age_max} onInput={set("playing_age_max")} />
        </label>
        <label>
          Height (cm) <input name="height_cm" type="number" value={draft.height_cm} onInput={set("height_cm")} />
        </label>
        <label>
          Day rate ({currency}) <input name="rate" value={draft.rate} onInput={set("rate")} />
        </label>
        <label>
          Languages <input name="languages" value={draft.languages} onInput={set("languages")} />
        </label>
        <label>
          Skills <input name="skills" value={draft.skills} onInput={set("skills")} />
        </label>
        <button type="submit">{isNew ? "Add" : "Save"}</button>
      </fieldset>
    </form>
  );
}
