// Findings: every plugin's findings, pushed by the server as the production changes
// (server-sent events); offline, the last ones this browser saw, with their time.
import { useEffect, useState } from "preact/hooks";
import { timeAgo } from "../util.js";

const KEY = (id, what) => `castroom.${what}:${id}`;

/** What the server judges, pushed as the production changes: findings and the budget. */
export function useFindings(ctx) {
  const [feed, setFeed] = useState(() => {
    const saved = localStorage.getItem(KEY(ctx.production.id, "findings"));
    const budget = localStorage.getItem(KEY(ctx.production.id, "budget"));
    return { data: saved ? JSON.parse(saved) : null, budget: budget ? JSON.parse(budget) : null, live: false };
  });
  useEffect(() => {
    const url = `/api/${ctx.production.id}/live?token=${encodeURIComponent(ctx.token)}`;
    const source = new EventSource(url);
    source.addEventListener("findings", (e) => {
      localStorage.setItem(KEY(ctx.production.id, "findings"), e.data);
      setFeed((old) => ({ ...old, data: JSON.parse(e.data), live: true }));
    });
    source.addEventListener("budget", (e) => {
      localStorage.setItem(KEY(ctx.production.id, "budget"), e.data);
      setFeed((old) => ({ ...old, budget: JSON.parse(e.data), budgetAt: Date.now() }));
    });
    source.addEventListener("denied", () => {
      source.close();
      setFeed((old) => ({ ...old, live: false, denied: true }));
    });
    source.onerror = () => setFeed((old) => ({ ...old, live: false }));
    return () => source.close();
  }, [ctx]);
  return feed;
}

const VIEW_OF = {
  talent: (e) => ["talent", { id: e.id }],
  role: (e) => ["roles", { id: e.id }],
  scene: (e) => ["schedule", { scene: e.id }],
  shoot_day: () => ["schedule", {}],
};

export function FindingsView({ ctx, store, feed }) {
  const data = feed.data;
  if (!data) return <p class="empty">{feed.live ? "No findings." : "Waiting for the server's checks…"}</p>;
  const target = (entity) => {
    if (entity.kind === "candidate") {
      const candidate = store.get("candidate", entity.id);
      return candidate ? ["board", { role: candidate.role_id }] : null;
    }
    return VIEW_OF[entity.kind]?.(entity) ?? null;
  };
  return (
    <section class="findings">
      <p class="summary" data-testid="findings-when">
        {feed.live ? "Live" : "Offline: as of"} · checked {timeAgo(data.checked_at)} · {data.findings.length} findings
      </p>
      {data.failures.map((failure) => (
        <p class="error">{failure}</p>
      ))}
      <ul class="finding-list">
        {data.findings.map((f) => (
          <li class={`finding sev-${f.severity}`} data-code={f.code}>
            <span class="sev">{f.severity}</span> <span class="code">{f.plugin}/{f.code}</span>
            <p class="message">{f.message}</p>
            <p class="entities">
              {f.entities.slice(0, 8).map((entity) => {
                const to = target(entity);
                const text = `${entity.kind} ${entity.label || entity.id}`;
                if (!to) return <span class="entity">{text}</span>;
                const q = new URLSearchParams(to[1]).toString();
                return (
                  <a class="entity" href={`#/${ctx.production.id}/${to[0]}${q ? `?${q}` : ""}`}>
                    {text}
                  </a>
                );
              })}
              {f.entities.length > 8 ? <span class="muted"> +{f.entities.length - 8} more</span> : null}
            </p>
            {f.fix ? <p class="fix">fix: {f.fix}</p> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
