// The dashboard: a top bar and hash routes, each page a module under pages/.
//   #/login  #/  #/buildings  #/buildings/{id}  #/hazards  #/statistics
// A page's filters live in the hash's query (#/buildings?status=failing), so
// links and the back button keep them.

import { h, mount } from "./lib/dom.js";
import { showError } from "./lib/ui.js";
import { t, lang, setLang } from "./lib/i18n.js";
import { session, loadMe, logout, whenUnauthorized, connectLive, disconnectLive, onLiveState, live } from "./lib/api.js";
import * as loginPage from "./pages/login.js";
import * as overviewPage from "./pages/overview.js";
import * as buildingsPage from "./pages/buildings.js";
import * as buildingPage from "./pages/building.js";
import * as hazardsPage from "./pages/hazards.js";
import * as statisticsPage from "./pages/statistics.js";

const routes = [
  { re: /^\/login$/, page: loginPage, public: true },
  { re: /^\/$/, page: overviewPage, nav: "overview" },
  { re: /^\/buildings$/, page: buildingsPage, nav: "buildings" },
  { re: /^\/buildings\/([^/]+)$/, page: buildingPage, nav: "buildings" },
  { re: /^\/hazards$/, page: hazardsPage, nav: "hazards" },
  { re: /^\/statistics$/, page: statisticsPage, nav: "statistics" },
];

const topbar = document.getElementById("topbar");
const main = document.getElementById("main");
let current = null; // { controller, cleanups }

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path: path || "/", query: Object.fromEntries(new URLSearchParams(query)) };
}

function renderTopbar(active) {
  if (!session.me || active === undefined) {
    topbar.hidden = true;
    return;
  }
  topbar.hidden = false;
  const me = session.me;
  const link = (name, href) =>
    h("a", { href, class: active === name ? "active" : null, "data-nav": name }, t("nav." + name));
  const liveBadge = h("span", { class: "live", id: "live", title: "/api/events" });
  const paintLive = () => {
    liveBadge.className = "live " + (live.connected ? "on" : "off");
    liveBadge.textContent = live.connected ? t("live") : t("offline");
  };
  paintLive();
  mount(
    topbar,
    h("a", { class: "brand", href: "#/" }, h("span", { class: "logo", "aria-hidden": "true" }), h("span", { class: "brand-text" }, t("app"))),
    h("nav", null, link("overview", "#/"), link("buildings", "#/buildings"), link("hazards", "#/hazards"),
      link("statistics", "#/statistics")),
    h("div", { class: "spacer" }),
    me.dev ? h("span", { class: "dev-badge" }, t("devNoAuth")) : liveBadge,
    h("span", { class: "user", id: "user" },
      h("strong", null, me.display_name || me.username),
      h("span", { class: "muted" }, " · " + t("role." + me.role) + (me.scope ? " · " + me.scope : ""))),
    h("button", { type: "button", class: "ghost", id: "lang-switch", onclick: switchLang }, t("switchLang")),
    me.dev ? null : me.csrf
      ? h("button", { type: "button", class: "ghost", id: "logout", onclick: signOut }, t("logout"))
      // Signed in by the server's `auth.anonymous`, not a session: offer to sign in.
      : h("a", { class: "button ghost", id: "login-link", href: "#/login" }, t("login.submit")),
  );
  topbar.paintLive = paintLive;
}

onLiveState(() => topbar.paintLive?.());

function switchLang() {
  setLang(lang() === "zh" ? "en" : "zh");
  route();
}

async function signOut() {
  disconnectLive();
  await logout();
  location.hash = "#/login";
}

/** Replaces the hash's query without adding to the history or re-rendering. */
function setQuery(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v != null && v !== "") q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", "#" + path + (s ? "?" + s : ""));
}

async function route() {
  if (current) {
    current.controller.abort();
    for (const fn of current.cleanups) fn();
  }
  const { path, query } = parseHash();
  const found = routes.find((r) => r.re.test(path));
  if (!found) {
    location.replace("#/");
    return;
  }
  if (!found.public && !session.me) {
    location.replace("#/login" + (path !== "/" ? "?next=" + encodeURIComponent(path) : ""));
    return;
  }
  if (found.page === loginPage && session.me?.csrf) {
    location.replace("#/");
    return;
  }
  const params = path.match(found.re).slice(1).map(decodeURIComponent);
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  renderTopbar(found.public ? undefined : found.nav);
  if (session.me && !found.public) connectLive();
  document.title = t("app");
  main.className = "page-" + (found.nav || "login");
  mount(main);
  try {
    await found.page.render({
      root: main,
      params,
      query,
      signal: controller.signal,
      onCleanup: (fn) => cleanups.push(fn),
      setQuery: (q) => setQuery(path, q),
      setTitle: (title) => { document.title = title + " · " + t("app"); },
      afterLogin: () => {
        const next = query.next && query.next.startsWith("/") ? query.next : "/";
        location.replace("#" + next);
      },
    });
  } catch (e) {
    if (e.name === "AbortError" || controller.signal.aborted) return;
    showError(main, e);
  }
}

whenUnauthorized(() => {
  disconnectLive();
  const { path } = parseHash();
  if (path !== "/login") location.replace("#/login" + (path !== "/" ? "?next=" + encodeURIComponent(path) : ""));
});

window.addEventListener("hashchange", route);

(async function start() {
  try {
    await loadMe();
  } catch (e) {
    showError(main, e);
    return;
  }
  route();
})();
