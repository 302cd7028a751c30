// open311 — the citizen page's client of Open311 GeoReport v2 (/open311/v2/):
// services and their definitions, submitting a service request (form-encoded,
// with the page's api_key: a citizen app key) and following one, and rating a
// closed one with the access_token its submission returned (citybrain's
// extension requests/{id}/rating.json); plus the photo upload
// (POST /api/v1/media, with the same key) whose URL a request carries as media_url.

import { api } from "./api.js";

const BASE = "/open311/v2";
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
const PHOTO_MAX = 5 * 1024 * 1024; // the server's media_max default

export function services() {
  return api(`${BASE}/services.json`, { public: true });
}

// The service definition's attributes, ordered; [] for a service without metadata.
export async function attributes(service) {
  if (!service.metadata)
    return [];
  const def = await api(`${BASE}/services/${encodeURIComponent(service.service_code)}.json`, { public: true });
  return [...(def.attributes ?? [])].filter((a) => a.variable).sort((a, b) => a.order - b.order);
}

// fields: {service_code, description, lat, long, media_url?, first_name?, phone?,
// attributes: {code: value | [values]}}; resolves with {service_request_id, service_notice,
// access_token} — the token is the request's secret: whoever holds it may rate the request.
export async function submit(apiKey, fields) {
  const form = new URLSearchParams({ api_key: apiKey });
  for (const [k, v] of Object.entries(fields))
    if (k !== "attributes" && v !== undefined && v !== "")
      form.set(k, v);
  for (const [code, v] of Object.entries(fields.attributes ?? {}))
    for (const one of [v].flat())
      form.append(Array.isArray(v) ? `attribute[${code}][]` : `attribute[${code}]`, one);
  const [reply] = await api(`${BASE}/requests.json`, { public: true, body: form });
  return reply;
}

export async function request(id) {
  const [r] = await api(`${BASE}/requests/${encodeURIComponent(id)}.json`, { public: true });
  return r;
}

// rating: 满意 | 基本满意 | 不满意 (不满意 sends it back for rework); resolves with the request.
export async function rate(id, accessToken, rating, comment = "") {
  const form = new URLSearchParams({ access_token: accessToken, rating });
  if (comment)
    form.set("comment", comment);
  const [r] = await api(`${BASE}/requests/${encodeURIComponent(id)}/rating.json`, { public: true, body: form });
  return r;
}

// Checks type and size before uploading; resolves with the photo's URL.
export async function uploadPhoto(file, apiKey) {
  if (!PHOTO_TYPES.includes(file.type))
    throw new Error("照片须为 JPEG、PNG 或 WebP 格式");
  if (file.size > PHOTO_MAX)
    throw new Error(`照片不能超过 ${PHOTO_MAX / 1024 / 1024} MB`);
  const { url } = await api("/api/v1/media", { key: apiKey, body: file });
  return url;
}
