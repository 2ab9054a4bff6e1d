#!/usr/bin/env node
// Browser tests of the dashboard against a running, seeded riser-ingest.
//
//   RISER_URL=http://127.0.0.1:8080 \
//   RISER_USERS='[{"username":"admin","password":"…","role":"admin"}, …]' \
//   node tests/browser/run.mjs
//
// Chromium is Debian's (/usr/bin/chromium, or RISER_CHROMIUM); Playwright
// downloads no browser. Screenshots go to target/browser-screenshots/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.RISER_URL || "").replace(/\/+$/, "");
const USERS = JSON.parse(process.env.RISER_USERS || "[]");
const SHOTS = path.resolve(here, "../../target/browser-screenshots");
const CHROMIUM = process.env.RISER_CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 60_000;

if (!BASE) {
  console.error("RISER_URL is not set: give the base URL of a running riser-ingest");
  process.exit(2);
}
const userOf = (role) => USERS.find((u) => u.role === role);

let browser;
before(async () => {
  await fs.mkdir(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => { await browser?.close(); });

/**
 * A fresh browser context (no cookies) and page. It records what must never
 * happen: a dialog (an injected alert), an uncaught error, a request to
 * another origin (every asset is served by riser-ingest itself).
 */
async function open({ viewport = { width: 1440, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Asia/Shanghai", acceptDownloads: true });
  const page = await context.newPage();
  const seen = { dialogs: [], errors: [], foreign: [] };
  page.on("dialog", (d) => { seen.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on("pageerror", (e) => seen.errors.push(e.message));
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(BASE + "/") && !url.startsWith("data:") && !url.startsWith("blob:")) seen.foreign.push(url);
  });
  page.setDefaultTimeout(20_000);
  return { context, page, seen };
}

function clean(seen) {
  assert.deepEqual(seen.dialogs, [], "no dialog may open");
  assert.deepEqual(seen.errors, [], "no uncaught error in the page");
  assert.deepEqual(seen.foreign, [], "every request goes to the server itself");
}

async function signIn(page, user) {
  await page.goto(BASE + "/#/login");
  await page.fill("#username", user.username);
  await page.fill("#password", user.password);
  await page.click("form.login-card button[type=submit]");
  await page.waitForSelector("#user", { state: "visible" });
}

async function getJson(page, p) {
  const res = await page.request.get(BASE + p);
  assert.equal(res.status(), 200, `GET ${p}: ${res.status()}`);
  return res.json();
}

async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

// ── Signing in ──────────────────────────────────────────────────────────

test("a visit without a session goes to the sign-in page", { timeout: TIMEOUT }, async () => {
  const { context, page, seen } = await open();
  await page.goto(BASE + "/#/buildings");
  await page.waitForSelector("#username");
  assert.match(page.url(), /#\/login\?next=%2Fbuildings$/);
  assert.equal(await page.textContent("form.login-card button[type=submit]"), "登录", "Chinese by default");
  await shot(page, "login");
  clean(seen);
  await context.close();
});

test("a wrong password is refused with a message", { timeout: TIMEOUT }, async () => {
  const user = USERS[0];
  assert.ok(user, "RISER_USERS names at least one user");
  const { context, page, seen } = await open();
  await page.goto(BASE + "/#/login");
  await page.fill("#username", user.username);
  await page.fill("#password", user.password + "-wrong");
  await page.click("form.login-card button[type=submit]");
  const error = await page.waitForSelector("#login-error", { state: "visible" });
  assert.match(await error.textContent(), /用户名或密码错误|尝试次数过多/);
  assert.match(page.url(), /#\/login/);
  clean(seen);
  await context.close();
});

const counts = {};
for (const user of USERS) {
  test(`${user.role} ${user.username} signs in and sees only the buildings in scope`, { timeout: TIMEOUT }, async () => {
    const { context, page, seen } = await open();
    await signIn(page, user);
    const me = await getJson(page, "/api/me");
    assert.equal(me.role, user.role);
    assert.ok((await page.textContent("#user")).includes(me.display_name), "the top bar names the user");
    const inScope = await getJson(page, "/api/buildings");
    const total = await page.waitForSelector("#count-total");
    const shown = Number(await total.getAttribute("data-count"));
    assert.equal(shown, inScope.length, "the overview counts the buildings the API serves this user");
    const failing = inScope.filter((b) => b.status === "failing").length;
    assert.equal(Number(await page.getAttribute("#count-failing", "data-count")), failing);
    counts[user.username] = shown;
    await page.waitForSelector("#region-tree table");
    await shot(page, `overview-${user.role}-${user.username}`);

    await page.click("a[data-nav=buildings]");
    const pager = await page.waitForSelector("#building-table .pager [data-total]");
    assert.equal(Number(await pager.getAttribute("data-total")), inScope.length, "the list holds the same buildings");
    const ids = await page.$$eval("#building-table tbody tr[data-id]", (rows) => rows.map((r) => r.dataset.id));
    const allowed = new Set(inScope.map((b) => b.id));
    assert.ok(ids.every((id) => allowed.has(id)), "only buildings in scope are listed");
    clean(seen);
    await context.close();
  });
}

test("a scoped user sees fewer buildings than an administrator", { timeout: TIMEOUT }, (t) => {
  const admin = USERS.find((u) => u.role === "admin");
  const scoped = USERS.filter((u) => u.role === "fire_rescue" || u.role === "contractor");
  if (!admin || !scoped.length) return t.skip("needs an admin and a fire_rescue or contractor user");
  for (const u of USERS) assert.ok(counts[u.username] <= counts[admin.username], `${u.username} sees no more than admin`);
  assert.ok(scoped.some((u) => counts[u.username] < counts[admin.username]),
    `some scoped user sees fewer than the admin's ${counts[admin.username]}: ${JSON.stringify(counts)}`);
});

// ── Hazard items ────────────────────────────────────────────────────────

test("a contractor acknowledges an open hazard item", { timeout: TIMEOUT }, async (t) => {
  const user = userOf("contractor");
  if (!user) return t.skip("no contractor in RISER_USERS");
  const { context, page, seen } = await open();
  await signIn(page, user);
  const me = await getJson(page, "/api/me");
  assert.notEqual(me.can?.acknowledge, false, "a contractor may acknowledge");
  const posts = [];
  page.on("request", (r) => { if (r.method() === "POST") posts.push(r); });

  await page.goto(BASE + "/#/hazards"); // items not closed: an acknowledged one stays listed
  await page.waitForSelector("#hazard-list table");
  const button = await page.waitForSelector("tr.item[data-state=open] button[data-action=acknowledge]", { timeout: 10_000 })
    .catch(() => null);
  assert.ok(button, "the contractor has an open item to acknowledge (seed one in its scope)");
  const id = await button.evaluate((b) => b.closest("tr").dataset.hazard);
  await shot(page, "hazards-contractor");
  await button.click();
  await page.waitForSelector(`tr.item[data-hazard="${id}"][data-state=acknowledged]`);

  const post = posts.find((r) => r.url().includes(`/api/hazards/${id}/acknowledge`));
  assert.ok(post, "the page posted the acknowledgement");
  assert.equal(post.headers()["x-csrf-token"], me.csrf, "with the session's CSRF token");
  const item = await getJson(page, `/api/hazards/${id}`);
  assert.equal(item.state, "acknowledged");
  assert.ok(item.acknowledged_by, "who acknowledged is recorded");

  // A remark is untrusted text too.
  const remark = "<b>已联系物业</b><img src=x onerror=alert(3)>";
  await page.click(`tr.item[data-hazard="${id}"] button[data-action=remark]`);
  await page.fill("form[data-form=remark] textarea", remark);
  await page.click("form[data-form=remark] button[type=submit]");
  await page.waitForSelector("form[data-form=remark]", { state: "detached" });
  await page.click(`tr.item[data-hazard="${id}"] button.toggle`);
  await page.waitForSelector("tr.trail-row .timeline li");
  await page.getByText(remark, { exact: true }).waitFor({ state: "visible" });
  assert.equal(await page.locator("img[src=x]").count(), 0);
  const trail = await getJson(page, `/api/hazards/${id}`);
  assert.ok(trail.transitions.some((x) => x.action === "remark" && x.note === remark), "the remark is stored as written");
  await shot(page, "hazards-acknowledged");
  clean(seen);
  await context.close();
});

test("a role that may not acknowledge is offered no acknowledge button", { timeout: TIMEOUT }, async (t) => {
  let checked = 0;
  for (const user of USERS) {
    const { context, page, seen } = await open();
    await signIn(page, user);
    const me = await getJson(page, "/api/me");
    if (me.can?.acknowledge !== false) { await context.close(); continue; }
    await page.goto(BASE + "/#/hazards?state=all");
    await page.waitForSelector("#hazard-list table");
    assert.equal(await page.locator("button[data-action=acknowledge]").count(), 0, `${user.username} sees no acknowledge`);
    if (me.can?.close === false) assert.equal(await page.locator("button[data-action=close]").count(), 0);
    checked++;
    clean(seen);
    await context.close();
  }
  if (!checked) t.skip("every user may acknowledge");
});

// ── Statistics ──────────────────────────────────────────────────────────

test("statistics export as CSV and as XLSX", { timeout: TIMEOUT }, async () => {
  const user = userOf("fire_rescue") || userOf("admin") || USERS[0];
  const { context, page, seen } = await open();
  await signIn(page, user);
  await page.goto(BASE + "/#/statistics");
  await page.waitForSelector("#stats-table table");
  const towns = await page.$$eval("#stats-table tbody tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent));
  await shot(page, "statistics");

  const [csv] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
  const text = (await fs.readFile(await csv.path(), "utf8")).replace(/^\uFEFF/, "");
  const lines = text.split(/\r?\n/).filter(Boolean);
  assert.ok(lines.length >= 2, "a header and at least one row: " + text.slice(0, 200));
  for (const town of towns.filter((x) => x && x !== "—")) assert.ok(text.includes(town), `the CSV names ${town}`);

  const [xlsx] = await Promise.all([page.waitForEvent("download"), page.click("#export-xlsx")]);
  const bytes = await fs.readFile(await xlsx.path());
  assert.equal(bytes.subarray(0, 2).toString("latin1"), "PK", "an XLSX is a zip");
  assert.match(xlsx.suggestedFilename(), /\.xlsx$/);
  clean(seen);
  await context.close();
});

// ── Untrusted text ──────────────────────────────────────────────────────

test("building names with markup render as text", { timeout: TIMEOUT }, async () => {
  const user = userOf("admin") || USERS[0];
  const { context, page, seen } = await open();
  await signIn(page, user);
  const marked = (await getJson(page, "/api/buildings")).filter((b) => /[<>]/.test(b.name));
  assert.ok(marked.length, "the seeded server has a building named with markup");
  const literal = async (text) => {
    const found = page.getByText(text, { exact: true });
    await found.first().waitFor({ state: "visible" });
  };
  await page.waitForSelector("#region-tree table");
  await page.click("#region-tree .tree-tools button:first-child"); // expand all
  for (const b of marked) await literal(b.name);
  await shot(page, "markup-overview");

  for (const b of marked) {
    await page.goto(BASE + "/#/buildings?q=" + encodeURIComponent(b.id));
    await literal(b.name);
    await page.goto(BASE + "/#/buildings/" + encodeURIComponent(b.id));
    await page.waitForSelector("#building-name");
    assert.equal(await page.textContent("#building-name"), b.name);
    await page.waitForSelector("#building-hazards h3");
  }
  await shot(page, "markup-building");
  await page.goto(BASE + "/#/hazards?state=all");
  await page.waitForSelector("#hazard-list table");
  assert.equal(await page.locator("img[src=x]").count(), 0, "no injected image");
  assert.equal(await page.locator("main script, #topbar script").count(), 0, "no injected script");
  clean(seen);
  await context.close();
});

test("the dashboard's code never parses text as HTML", async () => {
  const web = path.resolve(here, "../../cloud-ingest/web");
  const files = [];
  const walk = async (dir) => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) { if (e.name !== "vendor") await walk(p); } else if (/\.(js|html)$/.test(e.name)) files.push(p);
    }
  };
  await walk(web);
  assert.ok(files.length > 3);
  for (const f of files) {
    const text = await fs.readFile(f, "utf8");
    assert.doesNotMatch(text, /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(/, f);
  }
});

// ── Pages ───────────────────────────────────────────────────────────────

test("a building's page shows its points, charts, parties and gateway", { timeout: TIMEOUT }, async () => {
  const user = userOf("admin") || USERS[0];
  const { context, page, seen } = await open();
  await signIn(page, user);
  const list = await getJson(page, "/api/buildings");
  let building = null;
  for (const b of list) {
    const d = await getJson(page, "/api/buildings/" + encodeURIComponent(b.id));
    if (d.points.length) { building = d; break; }
  }
  assert.ok(building, "some building has readings");
  await page.goto(BASE + "/#/buildings/" + encodeURIComponent(building.id));
  await page.waitForSelector("#building-points table");
  const shown = await page.locator("#building-points [data-point]").count();
  assert.equal(shown, building.points.length, "every point is shown");
  await page.waitForSelector("#building-charts .chart .uplot, #building-charts .notice");
  await page.waitForSelector("#building-gateway dl");
  await page.click("[data-range='7d']");
  await page.waitForSelector("#building-charts .chart .uplot, #building-charts .notice");
  await page.click("[data-range='24h']");
  await page.waitForSelector("#building-charts .chart .uplot, #building-charts .notice");
  await shot(page, "building");
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.waitForTimeout(300);
  await shot(page, "building-tablet");
  clean(seen);
  await context.close();
});

test("the overview is live over server-sent events", { timeout: TIMEOUT }, async () => {
  const user = userOf("admin") || USERS[0];
  const { context, page, seen } = await open();
  await signIn(page, user);
  await page.waitForSelector("#live.on", { timeout: 15_000 });
  clean(seen);
  await context.close();
});

test("English is chosen by the switch, remembered, and by ?lang=", { timeout: TIMEOUT }, async () => {
  const user = userOf("admin") || USERS[0];
  const { context, page, seen } = await open();
  await signIn(page, user);
  assert.equal(await page.textContent("a[data-nav=overview]"), "总览");
  await page.click("#lang-switch");
  await page.waitForFunction(() => document.querySelector("a[data-nav=overview]")?.textContent === "Overview");
  await page.reload();
  await page.waitForFunction(() => document.querySelector("a[data-nav=overview]")?.textContent === "Overview");
  await page.waitForSelector("#region-tree table");
  await shot(page, "overview-en");
  await page.goto(BASE + "/?lang=zh#/hazards");
  await page.waitForFunction(() => document.querySelector("a[data-nav=hazards]")?.textContent === "隐患");
  await page.waitForSelector("#hazard-list table");
  await shot(page, "hazards");
  await page.goto(BASE + "/#/buildings");
  await page.waitForSelector("#building-table table");
  await shot(page, "buildings");
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.goto(BASE + "/#/");
  await page.waitForSelector("#region-tree table");
  await shot(page, "overview-tablet");
  clean(seen);
  await context.close();
});

test("signing out ends the session", { timeout: TIMEOUT }, async () => {
  const user = USERS[0];
  const { context, page, seen } = await open();
  await signIn(page, user);
  await page.click("#logout");
  await page.waitForSelector("#username");
  const res = await page.request.get(BASE + "/api/me");
  assert.equal(res.status(), 401);
  await page.goto(BASE + "/#/hazards");
  await page.waitForSelector("#username");
  clean(seen);
  await context.close();
});
