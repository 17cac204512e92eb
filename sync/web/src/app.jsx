import { useEffect, useMemo, useState } from "preact/hooks";
import { Board } from "./views/board.jsx";
import { TalentView } from "./views/talent.jsx";
import { RolesView } from "./views/roles.jsx";
import { ScheduleView } from "./views/schedule.jsx";
import { FindingsView, useFindings } from "./views/findings.jsx";
import { PresenceView, usePresence } from "./views/presence.jsx";
import { BudgetView } from "./views/budget.jsx";
import { DropOutView } from "./views/dropout.jsx";
import { HistoryView } from "./views/history.jsx";
import { FilesView } from "./views/files.jsx";
import { colourFor, initials } from "./util.js";
import { keepShortlist } from "./media.jsx";

export const VIEWS = [
  ["board", "Casting board"],
  ["talent", "Talent"],
  ["roles", "Roles"],
  ["schedule", "Schedule"],
  ["budget", "Budget"],
  ["findings", "Findings"],
  ["dropout", "Drop-out"],
  ["presence", "Presence"],
  ["history", "History"],
  ["files", "Import & export"],
];

/** Re-render when the document changes (at most once a frame). */
export function useStore(store) {
  const [, setVersion] = useState(store.version);
  useEffect(() => {
    let frame = 0;
    const off = store.subscribe(() => {
      if (!frame) frame = requestAnimationFrame(() => {
        frame = 0;
        setVersion(store.version);
      });
    });
    return () => {
      off();
      cancelAnimationFrame(frame);
    };
  }, [store]);
  return store;
}

function useRoute() {
  const parse = () => {
    const [, , view = "board", ...rest] = location.hash.split("/");
    const query = new URLSearchParams(rest.join("/").split("?")[1] ?? location.hash.split("?")[1] ?? "");
    return { view: view.split("?")[0], query };
  };
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function link(ctx, view, query = {}) {
  const q = new URLSearchParams(query).toString();
  return `#/${ctx.production.id}/${view}${q ? `?${q}` : ""}`;
}

function useStatus(provider) {
  const [status, setStatus] = useState(provider.wsconnected ? "connected" : "connecting");
  const [synced, setSynced] = useState(provider.synced);
  useEffect(() => {
    const onStatus = (e) => setStatus(e.status);
    const onSync = (value) => setSynced(value);
    provider.on("status", onStatus);
    provider.on("sync", onSync);
    // The provider may have connected and synced between the first render and this
    // subscription; without reading it again the page would wait for events already gone.
    setStatus(provider.wsconnected ? "connected" : "connecting");
    setSynced(provider.synced);
    return () => {
      provider.off("status", onStatus);
      provider.off("sync", onSync);
    };
  }, [provider]);
  return status === "connected" ? (synced ? "online" : "syncing") : "offline";
}

export function App({ ctx }) {
  const store = useStore(ctx.store);
  const route = useRoute();
  const status = useStatus(ctx.provider);
  const findings = useFindings(ctx);
  const people = usePresence(ctx, route.view);
  const [loaded, setLoaded] = useState(ctx.local.synced);
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    ctx.local.whenSynced.then(() => setLoaded(true));
  }, [ctx]);
  useEffect(() => {
    document.body.dataset.status = status;
  }, [status]);
  useEffect(() => {
    // Online, once the changes settle (or once the service worker takes the page): keep
    // the shortlist's reels for offline viewing.
    if (status !== "online") return undefined;
    const keep = () => keepShortlist(ctx, ctx.store);
    const timer = setTimeout(keep, 1000);
    navigator.serviceWorker?.addEventListener("controllerchange", keep);
    return () => {
      clearTimeout(timer);
      navigator.serviceWorker?.removeEventListener("controllerchange", keep);
    };
  }, [status, store.version]);
  const production = store.production();
  const title = production.title ?? ctx.production.title;
  const report = (error) => setNotice(error ? String(error.message ?? error) : null);
  const props = { ctx, store, query: route.query, report };
  const body = () => {
    if (!loaded && status !== "online") return <p class="empty">Opening {ctx.production.title}…</p>;
    switch (route.view) {
      case "talent":
        return <TalentView {...props} />;
      case "roles":
        return <RolesView {...props} />;
      case "schedule":
        return <ScheduleView {...props} />;
      case "findings":
        return <FindingsView {...props} feed={findings} />;
      case "presence":
        return <PresenceView {...props} people={people} />;
      case "budget":
        return <BudgetView {...props} feed={findings} />;
      case "dropout":
        return <DropOutView {...props} />;
      case "history":
        return <HistoryView {...props} />;
      case "files":
        return <FilesView {...props} />;
      default:
        return <Board {...props} />;
    }
  };
  // The view is drawn again only when what it shows may have changed: the status going
  // from syncing to online must not draw a large production's board a second time.
  const ready = loaded || status === "online";
  const fed = route.view === "findings" || route.view === "budget" ? findings : null;
  const view = useMemo(body, [store.version, location.hash, ready, fed, route.view === "presence" ? people : null]);
  return (
    <div class={`shell ${store.canWrite ? "" : "read-only"}`} data-view={route.view}>
      <header class="top">
        <strong class="brand">castroom</strong>
        <span class="production-title">{title}</span>
        <span class={`status status-${status}`} data-testid="status">{status}</span>
        {store.canWrite ? null : <span class="badge-ro">read-only</span>}
        <span class="people" aria-label="who else is here">
          {people.filter((p) => !p.self).map((p) => (
            <span class="avatar" title={`${p.name} (${p.view})`} style={{ background: colourFor(p.name) }}>
              {initials(p.name)}
            </span>
          ))}
        </span>
        <span class="me">{ctx.session.member}</span>
      </header>
      <nav class="tabs">
        {VIEWS.map(([id, label]) => (
          <a href={link(ctx, id)} class={route.view === id ? "active" : ""} aria-current={route.view === id ? "page" : undefined}>
            {label}
            {id === "findings" && findings.data ? <span class="count">{findings.data.findings.length}</span> : null}
          </a>
        ))}
      </nav>
      {notice ? (
        <div class="notice" role="alert">
          {notice}
          <button onClick={() => setNotice(null)} aria-label="dismiss">×</button>
        </div>
      ) : null}
      <main class="view">{view}</main>
    </div>
  );
}
