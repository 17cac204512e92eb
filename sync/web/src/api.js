// The server's JSON API (docs/dashboard.md): what only the server can do for the page.
// Every call carries the page's token; a refusal is an ApiError in the server's words.

export class ApiError extends Error {
  constructor(message, errors = []) {
    super(message);
    this.errors = errors;
  }
}

const UNREACHABLE = "The server cannot be reached: this needs it (it works again once the server is back).";

/** fetch /api/{production}/{path}; the Response when it is OK, else an ApiError. */
export async function api(ctx, path, { method = "GET", query = {}, json, body, headers = {} } = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) params.append(key, one);
  }
  const q = params.toString();
  const init = { method, headers: { Authorization: `Bearer ${ctx.token}`, ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
    init.headers["Content-Type"] = "application/octet-stream";
  }
  let response;
  try {
    response = await fetch(`/api/${ctx.production.id}/${path}${q ? `?${q}` : ""}`, init);
  } catch {
    throw new ApiError(UNREACHABLE);
  }
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new ApiError(data.error ?? `the server answered ${response.status}`, data.errors ?? []);
  }
  return response;
}

export async function apiJson(ctx, path, options) {
  return (await api(ctx, path, options)).json();
}
