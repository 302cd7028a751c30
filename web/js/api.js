// api — how the pages talk to citybrain: JSON over fetch with the operator's
// API key (kept in localStorage), and failures as ApiError carrying the
// server's JSON error body {"error": {"code", "message", "field"}}.

const KEY_STORE = "citybrain.key";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }

  // A 404 on a list or stats endpoint means this server has no such API (yet).
  get missing() {
    return this.status === 404;
  }
}

export function storedKey() {
  return localStorage.getItem(KEY_STORE) ?? "";
}

export function storeKey(key) {
  localStorage.setItem(KEY_STORE, key);
}

export function forgetKey() {
  localStorage.removeItem(KEY_STORE);
}

export function authHeaders(key = storedKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorOf(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // not JSON: keep the status line
  }
  const e = body?.error;
  if (e && typeof e === "object")
    return new ApiError(resp.status, e.code ?? "", e.message ?? resp.statusText, e.field);
  // Open311 GeoReport v2 errors: [{"code": 400, "description": "..."}]
  if (Array.isArray(body) && body[0]?.description)
    return new ApiError(resp.status, String(body[0].code), body[0].description, null);
  return new ApiError(resp.status, "http_" + resp.status, `HTTP ${resp.status} ${resp.statusText}`, null);
}

// Calls path and returns the parsed JSON (or the text for text replies).
// opts: method, body (object → JSON; FormData, Blob, URLSearchParams as they are),
// key (default: the stored one), public (send no key).
export async function api(path, opts = {}) {
  const headers = opts.public ? {} : authHeaders(opts.key);
  let body = opts.body;
  const raw = body instanceof FormData || body instanceof Blob || body instanceof URLSearchParams;
  if (body !== undefined && !raw) {
    body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, { method: opts.method ?? (body === undefined ? "GET" : "POST"), headers, body });
  if (!resp.ok)
    throw await errorOf(resp);
  const type = resp.headers.get("Content-Type") ?? "";
  return type.includes("json") ? resp.json() : resp.text();
}

// Builds "path?a=1&b=2" leaving out empty values.
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "")
      q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
