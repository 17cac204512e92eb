// Budget (producer): cast cost per actor and per role against the cap, as a chart and a
// table, computed by the server's budget plugin and pushed as deals and the schedule
// change.
import { useState } from "preact/hooks";
import { formatMoney, timeAgo } from "../util.js";

export function BudgetView({ feed }) {
  const [by, setBy] = useState("talent");
  const report = feed.budget;
  if (!report) return <p class="empty">Waiting for the server's budget…</p>;
  const money = (n) => formatMoney(n, report.currency);
  const rows = [...(by === "talent" ? report.by_talent : report.by_role)].sort((a, b) => b.total - a.total);
  const top = Math.max(1, ...rows.map((r) => r.total));
  const capShare = report.cap ? Math.min(100, (report.total / report.cap) * 100) : null;
  const caps = new Map(report.lines.map((l) => [l.role_id, l.rate_cap]));
  return (
    <section class="budget">
      <div class="budget-head">
        <div>
          <p class="muted">cast cost</p>
          <p class={`big ${report.over_cap ? "over" : ""}`} data-testid="budget-total">
            {money(report.total)}
          </p>
        </div>
        <div>
          <p class="muted">cap</p>
          <p class="big">{report.cap === null ? "none" : money(report.cap)}</p>
        </div>
        <div>
          <p class="muted">{report.over_cap ? "over by" : "left"}</p>
          <p class={`big ${report.over_cap ? "over" : ""}`}>{report.remaining === null ? "—" : money(Math.abs(report.remaining))}</p>
        </div>
        <p class="muted">{feed.live ? "live" : "offline: as of"} {feed.data ? timeAgo(feed.data.checked_at) : ""}</p>
      </div>
      {capShare !== null ? (
        <div class="capbar" aria-label="cost against the cap">
          <div class={`capfill ${report.over_cap ? "over" : ""}`} style={{ width: `${capShare}%` }} />
        </div>
      ) : null}
      <div class="subtabs" role="tablist">
        <button role="tab" aria-selected={by === "talent"} class={by === "talent" ? "active" : ""} onClick={() => setBy("talent")}>
          Per actor
        </button>
        <button role="tab" aria-selected={by === "role"} class={by === "role" ? "active" : ""} onClick={() => setBy("role")}>
          Per role
        </button>
      </div>
      <table class="table budget-table">
        <thead>
          <tr>
            <th>{by === "talent" ? "actor" : "role"}</th>
            <th class="chart-col">share</th>
            <th class="num">cost</th>
            <th class="num">deals</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr data-subtotal={row.id}>
              <td>{row.name}</td>
              <td class="chart-col">
                <span class="bar" style={{ width: `${(row.total / top) * 100}%` }} />
              </td>
              <td class="num">{money(row.total)}</td>
              <td class="num">
                {row.deals}
                {by === "role" && caps.get(row.id) ? <span class="muted"> · cap {money(caps.get(row.id))}/day</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
