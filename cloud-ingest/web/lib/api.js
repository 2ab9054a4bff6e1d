// The API client: JSON in and out, the session's CSRF token on every unsafe
// request, and any 401 sends the user to the sign-in page.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The signed-in user (`GET /api/me`), or null. */
export const session = { me: null };

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

/** What a role may do when the server sends no `can` (the server decides in the end). */
const ROLE_CAN = {
  admin: { acknowledge: true, remark: true, close: true, maintenance: true, users: true },
  contractor: { acknowledge: true, remark: true, close: true, maintenance: true },
  fire_rescue: { remark: true },
  installer: {},
};

export function can(action) {
  const me = session.me;
  if (!me) return false;
  if (me.can && typeof me.can === "object") return me.can[action] === true;
  return ROLE_CAN[me.role]?.[action] === true;
}

/**
 * `fetch` a JSON API path. Unsafe methods send `X-CSRF-Token`. Throws
 * ApiError with the server's `{"error"}` message on a non-2xx answer; a 401
 * (unless `opts.quiet401`) first calls the unauthorized handler.
 */
export async function api(path, opts = {}) {
  const method = opts.method || "GET";
  const headers = { Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && session.me?.csrf) headers["X-CSRF-Token"] = session.me.csrf;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: "same-origin", signal: opts.signal,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, e.message || "network error");
  }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    if (res.status === 401 && !opts.quiet401) {
      session.me = null;
      onUnauthorized();
    }
    const message = (data && typeof data.error === "string" && data.error) || res.statusText || "HTTP " + res.status;
    throw new ApiError(res.status, message);
  }
  return data;
}

/** `GET /api/me`: the user, or null when not signed in. */
export async function loadMe() {
  try {
    session.me = await api("/api/me", { quiet401: true });
  } catch (e) {
    if (e.status === 401) session.me = null;
    // ─── DEV FALLBACK ───────────────────────────────────────────────────
    // A server without authentication (the `riser-sim demo` before issue 7's
    // auth, or a test build) answers 404 here: then the pages run as an
    // admin without a sign-in, marked as such in the top bar. A server with
    // authentication never answers 404 here, and it enforces every
    // permission itself whatever this page shows.
    else if (e.status === 404) {
      session.me = {
        username: "dev", display_name: "dev", role: "admin", scope: null, csrf: null, dev: true,
        can: { acknowledge: true, remark: true, close: true, maintenance: true, users: true },
      };
    }
    // ─── end DEV FALLBACK ───────────────────────────────────────────────
    else throw e;
  }
  return session.me;
}

export async function login(username, password) {
  const out = await api("/api/login", { method: "POST", body: { username, password }, quiet401: true });
  session.me = { ...(out.user || {}), csrf: out.csrf };
  // `can` comes with /api/me; keep the sign-in answer if that fails.
  try { await loadMe(); } catch { /* keep what login said */ }
  if (session.me && !session.me.csrf) session.me.csrf = out.csrf;
  return session.me;
}

export async function logout() {
  try { await api("/api/logout", { method: "POST", quiet401: true }); } catch { /* signed out anyway */ }
  session.me = null;
}

/** The acting person's name for the `by` field of actions. */
export const actor = () => session.me?.display_name || session.me?.username || "";

// ─── Live updates (server-sent events) ──────────────────────────────────

const listeners = new Set();
const stateListeners = new Set();
let source = null;
let retry = null;
export const live = { connected: false };

/**
 * Calls `fn({id, status, updated_at})` on every `building` event, and
 * `fn({resync: true})` when the server says changes were missed (reload);
 * returns an unsubscribe.
 */
export function onBuilding(fn) { listeners.add(fn); return () => listeners.delete(fn); }
/** Calls `fn(connected)` when the event stream connects or drops. */
export function onLiveState(fn) { stateListeners.add(fn); return () => stateListeners.delete(fn); }

function setConnected(value) {
  if (live.connected === value) return;
  live.connected = value;
  for (const fn of stateListeners) fn(value);
}

let wasConnected = false;

export function connectLive() {
  if (source || typeof EventSource === "undefined") return;
  clearTimeout(retry);
  source = new EventSource("/api/events");
  source.addEventListener("open", () => {
    // After a reconnect, changes made while away were missed: reload.
    if (wasConnected) for (const fn of listeners) fn({ resync: true });
    wasConnected = true;
    setConnected(true);
  });
  source.addEventListener("building", (ev) => {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (!data || typeof data.id !== "string") return;
    for (const fn of listeners) fn(data);
  });
  source.addEventListener("resync", () => { for (const fn of listeners) fn({ resync: true }); });
  source.addEventListener("error", () => {
    setConnected(false);
    // The browser retries by itself unless the answer was not an event
    // stream (401, 404, …): then find out whether the session ended, and
    // try again later.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      api("/api/me").catch(() => {});
      retry = setTimeout(() => { if (session.me) connectLive(); }, 15000);
    }
  });
}

export function disconnectLive() {
  clearTimeout(retry);
  wasConnected = false;
  if (source) source.close();
  source = null;
  setConnected(false);
}
