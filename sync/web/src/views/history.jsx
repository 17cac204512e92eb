// History: who changed what, when (the server's update log, as `castroom history`).
import { useEffect, useState } from "preact/hooks";

export function HistoryView({ ctx, store }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    // Re-read shortly after the document changes (a burst is one request).
    const timer = setTimeout(() => {
      fetch(`/api/${ctx.production.id}/history?limit=200`, { headers: { Authorization: `Bearer ${ctx.token}` } })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`the server says ${r.status}`))))
        .then((data) => {
          setRows(data);
          setError(null);
        })
        .catch(() => setError("The history lives on the server: it shows when the server can be reached."));
    }, 300);
    return () => clearTimeout(timer);
  }, [store.version]);
  if (!rows) return <p class="empty">{error ?? "Reading the history…"}</p>;
  return (
    <section class="history">
      {error ? <p class="error">{error}</p> : null}
      <table class="table">
        <thead>
          <tr>
            <th>time (UTC)</th>
            <th>member</th>
            <th>kind</th>
            <th>entity</th>
            <th>changes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr class="history-row">
              <td>{row.time.slice(0, 19).replace("T", " ")}</td>
              <td>{row.member}</td>
              <td>{row.kind}</td>
              <td>{row.label || row.entity_id}</td>
              <td class="changes">
                {/* "stage: offer → booked", "deleted", or a field's name when its values
                    were not kept (a Y.Text, a list, a large merge), as `castroom history`. */}
                {(row.changes ?? row.fields).map((change) => (
                  <span class="change">{change}</span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
