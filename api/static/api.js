// The API client of the control-room page: JSON requests with the bearer token, the API's one error
// shape, and the live stream read with fetch so the token travels in a header, never in a URL.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

async function errorFrom(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: a proxy's page, for example */ }
  const e = body && body.error;
  if (e && e.code) return new ApiError(response.status, e.code, e.message || e.code, e.field || null);
  return new ApiError(response.status, "http_" + response.status, response.statusText || "request failed", null);
}

export async function request(method, path, { token = null, json = undefined, form = undefined, lang = null } = {}) {
  const headers = { Accept: "application/json" };
  // The API answers errors in the page's language (Accept-Language); codes and fields stay the same.
  if (lang) headers["Accept-Language"] = lang === "zh" ? "zh-CN" : "en";
  let body;
  if (token) headers.Authorization = "Bearer " + token;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = new URLSearchParams(form);
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "network", "the server cannot be reached (" + err.message + ")", null);
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

// Server-Sent Events over fetch: EventSource cannot send an Authorization header. Reconnects after the
// server's `retry` with Last-Event-ID, so no change is lost; stops for good on 401/403 or `event: end`.
export function openStream(token, { onOpen, onMessage, onState, onEnd }) {
  const controller = new AbortController();
  let lastId = null;
  let retryMs = 2000;
  let stopped = false;

  function stop() { stopped = true; controller.abort(); }

  async function once() {
    const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch("/stream", { headers, signal: controller.signal, cache: "no-store" });
    if (!response.ok) {
      const err = await errorFrom(response);
      if (response.status === 401 || response.status === 403) { stopped = true; onEnd(err); }
      throw err;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let opened = false;
    let event = {};
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (!opened) { opened = true; onState("live"); onOpen(); }
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line === "") {
          if (event.id !== undefined) lastId = event.id;
          if (event.data !== undefined) {
            const data = JSON.parse(event.data);
            if (event.event === "end") { stopped = true; onEnd(new ApiError(401, data.code, data.message, null)); return; }
            onMessage(event.event || "message", data);
          }
          event = {};
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const key = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (key === "data") event.data = event.data === undefined ? val : event.data + "\n" + val;
          else if (key === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
          else event[key] = val;
        }
      }
    }
  }

  (async () => {
    while (!stopped) {
      onState("connecting");
      try { await once(); } catch (err) { if (stopped || err.name === "AbortError") return; }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  })();
  return { stop };
}
