// stream — the live event stream (GET /api/v1/stream, Server-Sent Events).
// EventSource cannot send an Authorization header, so the stream is read with
// fetch and parsed here; after a drop it reconnects with Last-Event-ID.
// onState gets "live", "connecting", "unavailable" (no stream API: the caller
// polls instead) or "unauthorized".

import { authHeaders, withQuery } from "./api.js";

// Splits SSE text into events; returns [events, unparsed rest].
export function parseSse(text) {
  const events = [];
  const blocks = text.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop();
  for (const block of blocks) {
    const ev = { id: null, type: "message", data: [] };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":"))
        continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "id")
        ev.id = value;
      else if (field === "event")
        ev.type = value;
      else if (field === "data")
        ev.data.push(value);
    }
    if (ev.data.length || ev.type !== "message")
      events.push({ id: ev.id, type: ev.type, data: ev.data.join("\n") });
  }
  return [events, rest];
}

export function openStream({ kinds, district, onEvent, onState }) {
  const ctrl = new AbortController();
  let lastId = null;
  let delay = 2000;

  async function readAll(resp) {
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done)
        return;
      const [events, rest] = parseSse(buf + value);
      buf = rest;
      for (const ev of events) {
        lastId = ev.id ?? lastId;
        onEvent(ev);
      }
    }
  }

  async function connect() {
    onState("connecting");
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId)
      headers["Last-Event-ID"] = lastId;
    const resp = await fetch(withQuery("/api/v1/stream", { kind: kinds.join(","), district }),
      { headers, signal: ctrl.signal });
    if (resp.status === 404)
      return "unavailable";
    if (resp.status === 401 || resp.status === 403)
      return "unauthorized";
    if (!resp.ok)
      return "retry";
    onState("live");
    delay = 2000;
    await readAll(resp);
    return "retry";
  }

  (async () => {
    while (!ctrl.signal.aborted) {
      let outcome;
      try {
        outcome = await connect();
      } catch {
        outcome = "retry"; // network drop, or aborted by close()
      }
      if (ctrl.signal.aborted)
        return;
      if (outcome !== "retry") {
        onState(outcome);
        return;
      }
      onState("connecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30000);
    }
  })();

  return { close: () => ctrl.abort() };
}
