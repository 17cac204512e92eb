// Schedule (assistant director): the stripboard (scenes as strips with cast numbers,
// drag to reorder or move between days) and the day-out-of-days grid.
import { useState } from "preact/hooks";
import { shortDate } from "../util.js";

export const KIND_ORDER = ["lead", "supporting", "featured", "day_player", "voice", "host", "commentator", "stunt", "background"];

/** Cast numbers as on a call sheet: leads first, then by name. */
export function castNumbers(store) {
  const roles = [...store.all("role")];
  roles.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.name.localeCompare(b.name));
  return new Map(roles.map((r, i) => [r.id, i + 1]));
}

export function ScheduleView({ ctx, store, query, report }) {
  const [tab, setTab] = useState("strips");
  const days = [...store.all("shoot_day")].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  const scenes = store.byId("scene");
  const numbers = castNumbers(store);
  const placed = new Set(days.flatMap((d) => d.scene_ids));
  const unscheduled = store.all("scene").filter((s) => !placed.has(s.id));
  const move = (sceneId, dayId, index) => {
    try {
      store.scheduleScene(sceneId, dayId, index);
      report(null);
    } catch (error) {
      report(error);
    }
  };
  return (
    <div class="schedule">
      <div class="subtabs" role="tablist">
        <button role="tab" aria-selected={tab === "strips"} class={tab === "strips" ? "active" : ""} onClick={() => setTab("strips")}>
          Stripboard
        </button>
        <button role="tab" aria-selected={tab === "dood"} class={tab === "dood" ? "active" : ""} onClick={() => setTab("dood")}>
          Day out of days
        </button>
      </div>
      {tab === "strips" ? (
        <div class="stripboard">
          {days.map((day) => (
            <Day day={day} scenes={[...new Set(day.scene_ids)].map((id) => scenes.get(id)).filter(Boolean)} numbers={numbers} store={store} move={move} highlight={query.get("scene")} />
          ))}
          <Day day={null} scenes={unscheduled} numbers={numbers} store={store} move={move} highlight={query.get("scene")} />
        </div>
      ) : (
        <DayOutOfDays days={days} scenes={scenes} numbers={numbers} store={store} />
      )}
    </div>
  );
}

function Day({ day, scenes, numbers, store, move, highlight }) {
  const dayId = day?.id ?? null;
  const drop = (e, index) => {
    e.preventDefault();
    e.stopPropagation();
    const id = e.dataTransfer.getData("text/x-scene");
    if (id) move(id, dayId, index);
  };
  return (
    <section class="day" data-day={dayId ?? "unscheduled"} onDragOver={(e) => store.canWrite && e.preventDefault()} onDrop={(e) => drop(e, scenes.length)}>
      <h3>
        {day ? `Day ${day.day_number ?? ""} · ${shortDate(day.date)}` : "Not scheduled"}
        <small>{day ? `${day.location} ${day.call_time}` : `${scenes.length} scenes`}</small>
      </h3>
      {scenes.map((scene, index) => (
        <div
          class={`strip ${/ext\./i.test(scene.heading) ? "ext" : "int"} ${scene.id === highlight ? "highlight" : ""}`}
          data-scene={scene.id}
          draggable={store.canWrite}
          onDragStart={(e) => e.dataTransfer.setData("text/x-scene", scene.id)}
          onDragOver={(e) => store.canWrite && e.preventDefault()}
          onDrop={(e) => drop(e, index)}
        >
          <span class="scene-number">{scene.number}</span>
          <span class="heading">{scene.heading}</span>
          <span class="cast">{scene.characters.map((id) => numbers.get(id)).filter(Boolean).sort((a, b) => a - b).join(", ")}</span>
          <span class="pages">{scene.pages ? `${scene.pages} pg` : ""}</span>
        </div>
      ))}
    </section>
  );
}

/** Per cast member and shoot day: SW start-work, W work, WF work-finish, SWF a single
 * day, H a hold between working days. */
export function doodCodes(days, scenes, roleId) {
  const works = days.map((day) => day.scene_ids.some((id) => scenes.get(id)?.characters.includes(roleId)));
  const first = works.indexOf(true);
  const last = works.lastIndexOf(true);
  return works.map((work, i) => {
    if (first < 0 || i < first || i > last) return "";
    if (!work) return "H";
    return `${i === first ? "S" : ""}W${i === last ? "F" : ""}`;
  });
}

function DayOutOfDays({ days, scenes, numbers, store }) {
  const roles = [...store.all("role")].filter((r) => days.some((d) => d.scene_ids.some((id) => scenes.get(id)?.characters.includes(r.id))));
  roles.sort((a, b) => numbers.get(a.id) - numbers.get(b.id));
  return (
    <div class="dood-wrap">
      <table class="table dood">
        <thead>
          <tr>
            <th>#</th>
            <th>role</th>
            {days.map((d) => (
              <th title={d.date}>{d.day_number ?? shortDate(d.date)}</th>
            ))}
            <th>work</th>
          </tr>
        </thead>
        <tbody>
          {roles.map((role) => {
            const codes = doodCodes(days, scenes, role.id);
            return (
              <tr>
                <td>{numbers.get(role.id)}</td>
                <td>{role.name}</td>
                {codes.map((code) => (
                  <td class={`code code-${code || "none"}`}>{code}</td>
                ))}
                <td>{codes.filter((c) => c.includes("W")).length}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
