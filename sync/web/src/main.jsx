// The casting room's dashboard. The page is a Yjs peer: it holds the production as a
// Y.Doc, syncs it over /sync/{id} (y-websocket), keeps its own copy in IndexedDB
// (y-indexeddb) and runs from the service worker's cache when the server is down.
import { render } from "preact";
import * as Y from "yjs";
import { IndexeddbPersistence } from "y-indexeddb";
import { WebsocketProvider } from "y-websocket";
import { Rules } from "./schema.js";
import { setMinorDigits } from "./util.js";
import { Store } from "./store.js";
import { quietStepTwo } from "./firstsync.js";
import { App } from "./app.jsx";
import { SignIn } from "./views/signin.jsx";

const TOKEN_KEY = "castroom.token";
const root = document.getElementById("app");
let cleared = false;

function show(element) {
  if (!cleared) root.textContent = ""; // the "Opening…" placeholder
  cleared = true;
  render(element, root);
}

async function boot() {
  const params = new URLSearchParams(location.search);
  const fresh = params.get("token");
  if (fresh !== null) {
    localStorage.setItem(TOKEN_KEY, fresh);
    // Keep the secret out of the address bar, bookmarks and screenshots.
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return signIn("Open the sign-in link that `castroom serve` printed, or paste a token.");
  // Both at once: the page cannot open the production before it has both.
  const [session, schema] = await Promise.all([fetchSession(token), fetchSchema()]);
  if (session.refused) return signIn(session.refused);
  setMinorDigits(schema["x-minor-digits"]);
  const rules = new Rules(schema);
  const productions = session.productions;
  if (!productions.length) return signIn("This token gives access to no production on this server.");
  const wanted = location.hash.split("/")[1];
  const production = productions.find((p) => p.id === wanted) ?? productions[0];
  open(token, session, rules, production);
}

function signIn(message) {
  registerWorker();
  show(
    <SignIn
      message={message}
      onToken={(token) => {
        localStorage.setItem(TOKEN_KEY, token);
        location.reload();
      }}
    />,
    root,
  );
}

function registerWorker() {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
}

/** The server's word on the token; offline, the last word this browser had. */
async function fetchSession(token) {
  let response;
  try {
    response = await fetch("/api/session", { headers: { Authorization: `Bearer ${token}` } });
  } catch {
    const saved = localStorage.getItem(`castroom.session:${token.slice(0, 16)}`);
    if (saved) return { ...JSON.parse(saved), offline: true };
    return { refused: "The castroom server cannot be reached, and this browser has no copy of a production yet." };
  }
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    return { refused: `This sign-in link does not work: ${body.error ?? "invalid, expired or revoked token"}. Ask for a new one (\`castroom serve\` prints a link).` };
  }
  const session = await response.json();
  localStorage.setItem(`castroom.session:${token.slice(0, 16)}`, JSON.stringify(session));
  return session;
}

async function fetchSchema() {
  try {
    const response = await fetch("/schema.json");
    const schema = await response.json();
    localStorage.setItem("castroom.schema", JSON.stringify(schema));
    return schema;
  } catch {
    return JSON.parse(localStorage.getItem("castroom.schema"));
  }
}

function deviceId() {
  let device = localStorage.getItem("castroom.device");
  if (!device) {
    device = `browser-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    localStorage.setItem("castroom.device", device);
  }
  return device;
}

function open(token, session, rules, production) {
  const doc = new Y.Doc();
  const local = new IndexeddbPersistence(`castroom:${production.id}`, doc);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const provider = new WebsocketProvider(`${scheme}://${location.host}/sync`, production.id, doc, {
    params: { token, member: session.member, device: deviceId() },
    maxBackoffTime: 1500,
    connect: false,
  });
  quietStepTwo(provider, local);
  // Connect once this browser's copy is loaded. Loaded after connecting, the copy would
  // reach the socket as one local update of the whole production (y-websocket sends
  // every update not its own): megabytes the server already holds, merged again off its
  // loop, with the production refusing newcomers (503) meanwhile.
  local.whenSynced.then(() => provider.connect());
  local._db.catch(() => provider.connect()); // no IndexedDB here: the server is the copy
  const store = new Store(doc, rules, { member: session.member, canWrite: session.scope === "write" });
  const context = { token, session, rules, production, doc, store, provider, local };
  // For tests and the curious: the live objects behind the page.
  window.castroom = context;
  show(<App ctx={context} />);
  // Once the production is drawn (or a few seconds on, whatever comes first): the
  // service worker's install fetches the whole app shell again, which a fresh page's
  // first sync has no time for. Then, in time to spare, ready for the first edit.
  let later = setTimeout(afterStart, 3000);
  provider.once("sync", () => {
    clearTimeout(later);
    requestAnimationFrame(() => setTimeout(afterStart));
  });
  function afterStart() {
    registerWorker();
    (window.requestIdleCallback ?? setTimeout)(() => rules.ajv);
  }
}

boot().catch((error) => {
  console.error(error);
  signIn(`The dashboard could not start: ${error.message}`);
});
