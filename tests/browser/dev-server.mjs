#!/usr/bin/env node
// Development only: serves cloud-ingest/web/ as riser-ingest does (`/` and
// `/assets/…`) and proxies `/api/…` to a running server, so the pages can be
// worked on without rebuilding the binary.
//
//   node tests/browser/dev-server.mjs [--port 8090] [--upstream http://127.0.0.1:8080] [--stub]
//
// --stub stands in for what a server without authentication lacks (a
// `riser-sim demo` built before issue 7): /api/login, /api/logout, /api/me
// (users admin, fire, contractor, installer; password = username), the CSRF
// check, /api/events (by polling the upstream), /api/statistics and its
// exports, scoping of /api/buildings by a fire-rescue user's region, and two
// buildings renamed with markup to check escaping. Never for production.

import http from "node:http";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, "../../cloud-ingest/web");
const args = process.argv.slice(2);
const arg = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const port = Number(arg("--port", 8090));
const upstream = new URL(arg("--upstream", "http://127.0.0.1:8080"));
const stub = args.includes("--stub");

// The policy the dashboard is written to run under (no inline script or
// style, nothing from elsewhere); riser-ingest should send it with `/`.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json", ".md": "text/plain; charset=utf-8" };

const USERS = {
  admin: { username: "admin", display_name: "系统管理员", role: "admin", scope: null },
  fire: { username: "fire", display_name: "梁山街道消防站", role: "fire_rescue", scope: "梁平区/梁山街道" },
  contractor: { username: "contractor", display_name: "张工（安泰维保）", role: "contractor", scope: "梁平安泰消防设施维保有限公司" },
  installer: { username: "installer", display_name: "李师傅", role: "installer", scope: null },
};
const CAN = {
  admin: { acknowledge: true, remark: true, close: true, maintenance: true, users: true },
  fire_rescue: { acknowledge: false, remark: true, close: false, maintenance: false, users: false },
  contractor: { acknowledge: true, remark: true, close: true, maintenance: true, users: false },
  installer: { acknowledge: false, remark: false, close: false, maintenance: false, users: false },
};
// Registry columns the list does not serve yet (community, contractor,
// address) and parties with contacts, from the sample district's CSV.
const registry = new Map();
try {
  const [head, ...rows] = (await fs.readFile(path.resolve(here, "../../data/buildings-liangping.csv"), "utf8")).trim().split("\n");
  const cols = head.split(",");
  for (const row of rows) {
    const r = Object.fromEntries(row.split(",").map((v, i) => [cols[i], v]));
    registry.set(r.id, r);
  }
} catch { /* no CSV: nothing added */ }
function enrich(b, detail) {
  const r = registry.get(b.id);
  if (!r) return b;
  const out = { ...b, community: b.community ?? r.community, contractor: b.contractor ?? r.contractor, address: b.address ?? r.town + r.compound };
  if (detail) out.parties = out.parties ?? {
    management_unit: { name: r.management_unit, phone: "023-5322 1100" },
    contractor: { name: r.contractor, phone: "13800138000", email: r.contractor_email },
    building_manager: { name: r.building_manager, phone: "13900000" + b.id.slice(-3) },
  };
  return out;
}

const MARKUP = { "LP-023": "<img src=x onerror=alert(2)>", "LP-024": "<script>alert(1)</script>" };

function json(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function userOf(req) {
  const m = /(?:^|;\s*)riser_dev=([a-z]+)/.exec(req.headers.cookie || "");
  return m && USERS[m[1]] ? USERS[m[1]] : null;
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

async function upstreamJson(p) {
  const r = await fetch(new URL(p, upstream));
  return r.json();
}

function inScope(user, b) {
  if (user?.role === "contractor" && registry.size) return registry.get(b.id)?.contractor === user.scope;
  if (!user || user.role !== "fire_rescue" || !user.scope) return true;
  const [district, town] = user.scope.split("/");
  return b.district === district && (!town || b.town === town);
}

function rename(value) {
  if (Array.isArray(value)) return value.map(rename);
  if (value && typeof value === "object") {
    const id = value.id ?? value.building_id;
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = rename(v);
    if (MARKUP[id] && typeof out.name === "string") out.name = MARKUP[id];
    if (MARKUP[value.building_id] && "building_name" in out) out.building_name = MARKUP[value.building_id];
    return out;
  }
  return value;
}

async function proxy(req, res, user) {
  const url = new URL(req.url, "http://x");
  const rewrite = stub && (url.pathname === "/api/buildings" || /^\/api\/(buildings\/[^/]+|hazards)/.test(url.pathname));
  if (!rewrite) {
    // As it is, cookies, CSRF header and event streams included.
    const up = http.request(new URL(req.url, upstream), { method: req.method, headers: { ...req.headers, host: upstream.host } },
      (r) => { res.writeHead(r.statusCode, r.headers); res.flushHeaders(); r.pipe(res); });
    up.on("error", (e) => json(res, 502, { error: "dev server: " + e.message }));
    return req.pipe(up);
  }
  const body = ["GET", "HEAD"].includes(req.method) ? undefined : await readBody(req);
  const r = await fetch(new URL(req.url, upstream), {
    method: req.method, body, headers: { "content-type": req.headers["content-type"] || "application/json", accept: "application/json" },
  });
  const type = r.headers.get("content-type") || "";
  if (!type.includes("json")) {
    res.writeHead(r.status, { "content-type": type });
    return res.end(Buffer.from(await r.arrayBuffer()));
  }
  let data = rename(await r.json());
  if (url.pathname === "/api/buildings") data = data.filter((b) => inScope(user, b)).map((b) => enrich(b, false));
  else if (/^\/api\/buildings\/[^/]+$/.test(url.pathname) && r.ok) data = enrich(data, true);
  json(res, r.status, data);
}

// ── Stubs ───────────────────────────────────────────────────────────────
const streams = new Set();
let lastStatus = new Map();
async function pollStatuses() {
  try {
    const list = await upstreamJson("/api/buildings");
    for (const b of list) {
      const before = lastStatus.get(b.id);
      if (before && before !== b.status)
        for (const s of streams) if (inScope(s.user, b))
          s.res.write(`event: building\ndata: ${JSON.stringify({ id: b.id, status: b.status, updated_at: b.updated_at })}\n\n`);
      lastStatus.set(b.id, b.status);
    }
  } catch { /* upstream down */ }
}

async function statistics(user, url) {
  const month = url.searchParams.get("month") || new Date().toISOString().slice(0, 7);
  const level = url.searchParams.get("level") === "community" ? "community" : "town";
  const buildings = (await upstreamJson("/api/buildings")).filter((b) => inScope(user, b));
  const hazards = (await upstreamJson("/api/hazards?limit=1000")).items;
  const details = new Map();
  if (level === "community")
    for (const b of buildings) details.set(b.id, (await upstreamJson("/api/buildings/" + b.id)).community);
  const groups = new Map();
  for (const b of buildings) {
    const community = level === "community" ? details.get(b.id) || "" : null;
    const key = [b.district, b.town, community].join("/");
    if (!groups.has(key)) groups.set(key, { district: b.district, town: b.town, community, ids: new Set() });
    groups.get(key).ids.add(b.id);
  }
  const row = (g, ids) => {
    const bs = buildings.filter((b) => ids.has(b.id));
    const hs = hazards.filter((x) => ids.has(x.building_id));
    const inMonth = (t) => t && t.slice(0, 7) === month;
    const opened = hs.filter((x) => inMonth(x.opened_at)).length;
    const rectified = hs.filter((x) => inMonth(x.resolved_at)).length;
    const soFar = hs.filter((x) => x.resolved_at).length;
    return { ...g, ids: undefined, in_scope: bs.length, monitored: bs.filter((b) => b.updated_at).length,
      failing_now: bs.filter((b) => b.status === "failing").length, opened, rectified, found_so_far: hs.length,
      rectified_so_far: soFar,
      rate: hs.length ? soFar / hs.length : null, overdue: hs.filter((x) => x.overdue).length };
  };
  const rows = [...groups.values()].map((g) => row(g, g.ids));
  const total = row({ district: null, town: null, community: null }, new Set(buildings.map((b) => b.id)));
  return { month, level, as_of: new Date().toISOString(), rows, total };
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, "http://x");
    const user = userOf(req);
    if (url.pathname === "/" || url.pathname === "/index.html") {
      res.writeHead(200, { "content-type": TYPES[".html"], "cache-control": "no-store", "content-security-policy": CSP });
      return res.end(await fs.readFile(path.join(web, "index.html")));
    }
    if (url.pathname.startsWith("/assets/")) {
      const file = path.resolve(web, "." + decodeURIComponent(url.pathname.slice("/assets".length)));
      if (!file.startsWith(web + path.sep)) return json(res, 404, { error: "not found" });
      try {
        const body = await fs.readFile(file);
        res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "cache-control": "no-store" });
        return res.end(body);
      } catch { return json(res, 404, { error: "asset not found" }); }
    }
    if (!url.pathname.startsWith("/api/")) return json(res, 404, { error: "not found" });
    if (!stub) return await proxy(req, res, null);

    if (url.pathname === "/api/login" && req.method === "POST") {
      const { username, password } = JSON.parse((await readBody(req)).toString() || "{}");
      const u = USERS[username];
      if (!u || password !== username) return json(res, 401, { error: "wrong username or password" });
      return json(res, 200, { user: u, csrf: "dev-csrf-" + u.username },
        { "set-cookie": `riser_dev=${u.username}; HttpOnly; Path=/; SameSite=Strict` });
    }
    if (!user) return json(res, 401, { error: "sign in first" });
    if (!["GET", "HEAD"].includes(req.method) && req.headers["x-csrf-token"] !== "dev-csrf-" + user.username)
      return json(res, 403, { error: "missing or wrong X-CSRF-Token" });
    if (url.pathname === "/api/logout") return json(res, 200, {}, { "set-cookie": "riser_dev=; Path=/; Max-Age=0" });
    if (url.pathname === "/api/me") return json(res, 200, { ...user, csrf: "dev-csrf-" + user.username, can: CAN[user.role] });
    if (url.pathname === "/api/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      res.write(": connected\n\n");
      const s = { res, user };
      streams.add(s);
      req.on("close", () => streams.delete(s));
      return;
    }
    if (url.pathname === "/api/statistics") return json(res, 200, await statistics(user, url));
    if (url.pathname.startsWith("/api/statistics/export.")) {
      const stats = await statistics(user, url);
      if (url.pathname.endsWith(".csv")) {
        const lines = [["区", "街道", "社区", "在册", "监测", "不合格", "本月发现", "本月整改", "累计整改", "整改率", "超期"].join(",")];
        for (const r of [...stats.rows, { ...stats.total, district: "合计" }])
          lines.push([r.district, r.town, r.community, r.in_scope, r.monitored, r.failing_now, r.opened, r.rectified,
            r.rectified_so_far, r.rate == null ? "" : (r.rate * 100).toFixed(1) + "%", r.overdue].map((v) => v ?? "").join(","));
        res.writeHead(200, { "content-type": "text/csv; charset=utf-8",
          "content-disposition": `attachment; filename="riser-statistics-${stats.month}.csv"` });
        return res.end("\ufeff" + lines.join("\r\n") + "\r\n");
      }
      // An empty zip (end-of-central-directory record only): enough for a dev check.
      res.writeHead(200, { "content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "content-disposition": `attachment; filename="riser-statistics-${stats.month}.xlsx"` });
      return res.end(Buffer.concat([Buffer.from("PK\x05\x06"), Buffer.alloc(18)]));
    }
    return await proxy(req, res, user);
  } catch (e) {
    json(res, 502, { error: "dev server: " + e.message });
  }
});

if (stub) setInterval(pollStatuses, 3000);
server.listen(port, "127.0.0.1", () => {
  console.log(`dashboard on http://127.0.0.1:${port}/ (API from ${upstream.origin}${stub ? ", auth stubbed" : ""})`);
});
