// Import and export (everyone who brings files in or takes them out): upload a CSV,
// spreadsheet or script, see the import's plan, then import it; download exports (CSV,
// .ics, call sheet, day out of days). The server runs the same importers and exporters
// as `castroom import` and `castroom export`.
import { useEffect, useState } from "preact/hooks";
import { api, apiJson } from "../api.js";

const SHEETS = new Set(["csv", "xlsx"]);
const SHOWN_KINDS = ["talent", "role", "candidate", "scene", "shoot_day", "availability", "deal", "audition", "member"];

/** "a=b" lines (blank ones skipped), for options the CLI repeats (--map a=b --map c=d). */
const lines = (text) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

export function FilesView({ ctx, store }) {
  const [formats, setFormats] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    apiJson(ctx, "formats")
      .then(setFormats)
      .catch((e) => setError(e.message));
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!formats) return <p class="empty">Asking the server what it reads and writes…</p>;
  return (
    <div class="files">
      {store.canWrite ? <ImportForm ctx={ctx} formats={formats} /> : <section class="panel"><h2>Import</h2><p class="muted">This token is read-only: importing needs a write token.</p></section>}
      <ExportPanel ctx={ctx} store={store} formats={formats} />
    </div>
  );
}

function ImportForm({ ctx, formats }) {
  const [importer, setImporter] = useState(formats.importers[0]?.name ?? "");
  const [file, setFile] = useState(null);
  const [kind, setKind] = useState("talent");
  const [map, setMap] = useState("");
  const [source, setSource] = useState("");
  const [prefix, setPrefix] = useState("");
  const [cues, setCues] = useState("");
  const [plan, setPlan] = useState(null);
  const [done, setDone] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const options = () => {
    const out = {};
    if (SHEETS.has(importer)) {
      out.kind = kind;
      if (lines(map).length) out.map = lines(map);
    }
    if (importer === "script") {
      if (prefix.trim()) out.prefix = prefix.trim();
      if (lines(cues).length) out.cue = lines(cues);
    }
    if (source.trim()) out.source = source.trim();
    return out;
  };
  const send = async (dryRun) => {
    setBusy(true);
    setError(null);
    try {
      // Importing sends the shown plan's id: the server refuses if the plan is now another.
      const query = { filename: file.name, ...options(), ...(dryRun ? { dry_run: "1" } : { expect: plan.plan_id }) };
      const answer = await apiJson(ctx, `import/${importer}`, { method: "POST", query, body: await file.arrayBuffer() });
      if (dryRun) {
        setPlan(answer);
        setDone(null);
      } else {
        setDone(answer);
        setPlan(null);
      }
    } catch (e) {
      setError({ message: e.message, errors: e.errors ?? [] });
      setPlan(null);
    } finally {
      setBusy(false);
    }
  };
  const changed = () => {
    setPlan(null);
    setDone(null);
    setError(null);
  };
  const description = formats.importers.find((i) => i.name === importer)?.description ?? "";
  return (
    <section class="panel import">
      <h2>Import</h2>
      <form
        class="import-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (file) send(true);
        }}
        onInput={changed}
      >
        <label>
          Importer{" "}
          <select name="importer" value={importer} onChange={(e) => setImporter(e.currentTarget.value)}>
            {formats.importers.map((i) => (
              <option value={i.name}>{i.name}</option>
            ))}
          </select>
        </label>
        <p class="muted">{description}</p>
        <label>
          File <input type="file" name="file" onChange={(e) => setFile(e.currentTarget.files[0] ?? null)} />
        </label>
        {SHEETS.has(importer) ? (
          <>
            <label>
              Rows are{" "}
              <select name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
                {SHOWN_KINDS.map((k) => (
                  <option value={k}>{k.replace("_", " ")}s</option>
                ))}
              </select>
            </label>
            <label>
              <span>
                Columns to fields (one <code>Column=field</code> a line; others are matched by name)
              </span>
              <textarea name="map" rows="3" value={map} onInput={(e) => setMap(e.currentTarget.value)} />
            </label>
          </>
        ) : null}
        {importer === "script" ? (
          <>
            <label>
              <span>
                Scene number prefix (an episode: <code>3.</code>)
              </span>
              <input name="prefix" value={prefix} onInput={(e) => setPrefix(e.currentTarget.value)} />
            </label>
            <label>
              <span>
                Cues to roles (one <code>NORA=Nora Quill</code> a line)
              </span>
              <textarea name="cue" rows="2" value={cues} onInput={(e) => setCues(e.currentTarget.value)} />
            </label>
          </>
        ) : null}
        <label>
          Source name (for re-imports) <input name="source" value={source} onInput={(e) => setSource(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={!file || busy}>
          Show the plan
        </button>
      </form>
      {error ? (
        <div class="error" role="alert" data-testid="import-error">
          <p>{error.message}</p>
          {error.errors.length > 1 ? (
            <ul>
              {error.errors.map((line) => (
                <li>{line}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {plan ? (
        <div class="plan-shown" data-testid="import-plan">
          <h3>
            {plan.filename}: {plan.created} to create, {plan.updated} to update, {plan.unchanged} unchanged
          </h3>
          {[...plan.warnings.map((w) => `Warning: ${w}`), ...plan.report].map((line) => (
            <p class="muted">{line}</p>
          ))}
          <ul class="plan-lines">
            {plan.plan.map((line) => (
              <li>{line}</li>
            ))}
          </ul>
          <button class="primary" disabled={busy} onClick={() => send(false)}>
            Import
          </button>{" "}
          <button onClick={() => setPlan(null)}>Cancel</button>
        </div>
      ) : null}
      {done ? (
        <p class="applied" data-testid="import-done">
          Imported {done.filename}: {done.created} created, {done.updated} updated, {done.unchanged} unchanged.
        </p>
      ) : null}
    </section>
  );
}

function ExportPanel({ ctx, store, formats }) {
  const [kind, setKind] = useState("talent");
  const [day, setDay] = useState("1");
  const [format, setFormat] = useState("html");
  const [error, setError] = useState(null);
  const options = { csv: { kind }, callsheet: { day, format } };
  const download = async (name) => {
    setError(null);
    try {
      const response = await api(ctx, `export/${name}`, { query: options[name] ?? {} });
      const disposition = response.headers.get("Content-Disposition") ?? "";
      const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `${name}.txt`;
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      setError(e.message);
    }
  };
  const days = store.all("shoot_day").length;
  return (
    <section class="panel export">
      <h2>Export</h2>
      {error ? <p class="error" role="alert" data-testid="export-error">{error}</p> : null}
      <ul class="exports">
        {formats.exporters.map((e) => (
          <li data-exporter={e.name}>
            <button onClick={() => download(e.name)}>Download {e.name}</button>
            {e.name === "csv" ? (
              <select aria-label="csv kind" value={kind} onChange={(ev) => setKind(ev.currentTarget.value)}>
                {SHOWN_KINDS.map((k) => (
                  <option value={k}>{k.replace("_", " ")}s</option>
                ))}
              </select>
            ) : null}
            {e.name === "callsheet" ? (
              <>
                <label>
                  day <input aria-label="call sheet day" type="number" min="1" max={days || undefined} value={day} onInput={(ev) => setDay(ev.currentTarget.value)} />
                </label>
                <select aria-label="call sheet format" value={format} onChange={(ev) => setFormat(ev.currentTarget.value)}>
                  <option value="html">HTML</option>
                  <option value="pdf">PDF</option>
                </select>
              </>
            ) : null}
            <span class="muted"> {e.description}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
