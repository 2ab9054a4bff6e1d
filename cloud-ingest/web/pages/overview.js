// #/ — counts by status per district → town → community (an expandable
// tree), the failing and warning buildings first; kept current by the
// `building` server-sent events (GET /api/events), without a reload.

import { h, mount, hashHref } from "../lib/dom.js";
import { t, lang, fmtTime } from "../lib/i18n.js";
import { api, onBuilding, live } from "../lib/api.js";
import { STATUSES, statusRank, statusBadge, loading, panel, notice } from "../lib/ui.js";

// Kept across visits so the tree opens as it was left.
const expanded = new Set();
let expandedInit = false;

export async function render(ctx) {
  ctx.setTitle(t("nav.overview"));
  const cards = h("div", { class: "cards", id: "status-cards" });
  const attention = h("div", { id: "attention" }, loading());
  const tree = h("div", { id: "region-tree" });
  const updated = h("span", { class: "muted", id: "overview-updated" });
  mount(ctx.root,
    h("div", { class: "page-head" }, h("h1", null, t("overview.title")), updated),
    cards,
    h("div", { class: "overview-grid" },
      panel(t("overview.attention"), attention),
      panel(t("overview.regions"), tree)));

  let buildings = [];
  const changed = new Set(); // ids to flash once

  async function load() {
    buildings = await api("/api/buildings?lang=" + lang(), { signal: ctx.signal });
    paint();
  }

  function paint() {
    updated.textContent = t("updated", { time: fmtTime(new Date(), true) });
    paintCards();
    paintAttention();
    paintTree();
    changed.clear();
  }

  function paintCards() {
    const counts = count(buildings);
    mount(cards,
      h("a", { class: "card total", href: "#/buildings", "data-count": buildings.length, id: "count-total" },
        h("span", { class: "card-label" }, t("overview.buildings")), h("span", { class: "card-value" }, String(buildings.length))),
      STATUSES.map((s) =>
        h("a", { class: "card status-" + s, href: hashHref("/buildings", { status: s }), "data-count": counts[s], id: "count-" + s },
          h("span", { class: "card-label" }, t("status." + s)), h("span", { class: "card-value" }, String(counts[s])))));
  }

  function paintAttention() {
    const list = buildings
      .filter((b) => b.status === "failing" || b.status === "warning")
      .sort((a, b) => statusRank(a.status) - statusRank(b.status) || a.id.localeCompare(b.id));
    if (!list.length) return mount(attention, notice(t("overview.attentionNone"), "ok"));
    mount(attention,
      h("table", { class: "table attention" },
        h("thead", null, h("tr", null, h("th", null, t("col.status")), h("th", null, t("col.building")),
          h("th", null, t("col.reasons")), h("th", { class: "nowrap" }, t("col.updated")))),
        h("tbody", null, list.map((b) =>
          h("tr", { "data-id": b.id, class: changed.has(b.id) ? "flash" : null },
            h("td", null, statusBadge(b.status)),
            h("td", { class: "bcell" }, h("a", { href: "#/buildings/" + encodeURIComponent(b.id) }, b.name),
              h("div", { class: "sub" }, [b.town, b.community].filter(Boolean).join(" · "))),
            h("td", { class: "reasons" }, reasonLines(b.reasons)),
            h("td", { class: "nowrap muted" }, fmtTime(b.updated_at)))))));
  }

  function paintTree() {
    const root = group(buildings);
    if (!expandedInit) {
      for (const d of root.children) expanded.add(d.key);
      expandedInit = true;
    }
    const rows = [];
    const walk = (node, depth) => {
      for (const child of node.children) {
        rows.push(nodeRow(child, depth));
        if (expanded.has(child.key)) {
          if (child.children.length) walk(child, depth + 1);
          else for (const b of child.buildings) rows.push(buildingRow(b, depth + 1));
        }
      }
    };
    walk(root, 0);
    mount(tree,
      h("div", { class: "tree-tools" },
        h("button", { type: "button", class: "link", onclick: () => { allKeys(root).forEach((k) => expanded.add(k)); paintTree(); } },
          t("overview.expandAll")),
        h("button", { type: "button", class: "link", onclick: () => { expanded.clear(); paintTree(); } },
          t("overview.collapseAll"))),
      h("table", { class: "table tree" },
        h("thead", null, h("tr", null, h("th", null, t("overview.region")), h("th", { class: "num" }, t("overview.count")),
          STATUSES.map((s) => h("th", { class: "num" }, t("status." + s))), h("th", { class: "bar-col" }))),
        h("tbody", null, rows)));
  }

  function nodeRow(node, depth) {
    const open = expanded.has(node.key);
    const toggle = () => { open ? expanded.delete(node.key) : expanded.add(node.key); paintTree(); };
    return h("tr", { class: "node depth-" + depth, "data-key": node.key },
      h("td", { style: { paddingLeft: 0.6 + depth * 1.3 + "rem" } },
        h("button", { type: "button", class: "toggle", "aria-expanded": String(open), onclick: toggle },
          h("span", { class: "caret", "aria-hidden": "true" }, open ? "▾" : "▸"), node.name || "—"),
        h("a", { class: "drill", href: hashHref("/buildings", node.filter), title: t("nav.buildings") }, "›")),
      h("td", { class: "num" }, String(node.total)),
      STATUSES.map((s) => h("td", { class: "num" + (node.counts[s] && s !== "ok" ? " hot-" + s : "") },
        node.counts[s] ? String(node.counts[s]) : "·")),
      h("td", { class: "bar-col" }, stackBar(node.counts, node.total)));
  }

  function buildingRow(b, depth) {
    return h("tr", { class: ["leaf", changed.has(b.id) && "flash"], "data-id": b.id },
      h("td", { style: { paddingLeft: 0.6 + depth * 1.3 + "rem" } },
        h("a", { href: "#/buildings/" + encodeURIComponent(b.id) }, b.name), h("span", { class: "sub inline" }, b.id)),
      h("td", { class: "num" }),
      h("td", { colspan: 4, class: "num" }, statusBadge(b.status)),
      h("td", { class: "bar-col muted small" }, fmtTime(b.updated_at)));
  }

  // Live: patch the status at once, then fetch the reasons shortly after.
  let refetch = null;
  const scheduleLoad = (ms) => {
    clearTimeout(refetch);
    refetch = setTimeout(() => load().catch(() => {}), ms);
  };
  ctx.onCleanup(onBuilding((ev) => {
    if (ev.resync) return scheduleLoad(0);
    const b = buildings.find((x) => x.id === ev.id);
    if (b) {
      b.status = ev.status;
      if (ev.updated_at) b.updated_at = ev.updated_at;
      changed.add(b.id);
      paint();
    }
    scheduleLoad(1500);
  }));
  // Without the event stream (or as a safety net) refresh every minute.
  const timer = setInterval(() => { if (!live.connected) load().catch(() => {}); }, 60000);
  ctx.onCleanup(() => { clearInterval(timer); clearTimeout(refetch); });

  await load();
}

function reasonLines(reasons) {
  const list = (reasons || []).filter((r) => r.code !== "maintenance");
  return list.slice(0, 2).map((r) => h("div", null, r.message))
    .concat(list.length > 2 ? [h("div", { class: "muted" }, t("buildings.more", { n: list.length - 2 }))] : []);
}

function count(list) {
  const c = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const b of list) c[STATUSES.includes(b.status) ? b.status : "unknown"]++;
  return c;
}

/** district → town → community (when the list has communities) → buildings. */
function group(list) {
  const withCommunity = list.some((b) => b.community);
  const levels = withCommunity ? ["district", "town", "community"] : ["district", "town"];
  const root = { key: "", children: [], buildings: list };
  const build = (node, depth, filter) => {
    if (depth === levels.length) { node.children = []; return; }
    const field = levels[depth];
    const by = new Map();
    for (const b of node.buildings) {
      const name = b[field] || "";
      if (!by.has(name)) by.set(name, []);
      by.get(name).push(b);
    }
    node.children = [...by.entries()].map(([name, bs]) => {
      const f = { ...filter, [field]: name };
      const child = { key: node.key + "/" + name, name, filter: f, buildings: bs, counts: count(bs), total: bs.length };
      child.buildings.sort((a, b) => statusRank(a.status) - statusRank(b.status) || a.name.localeCompare(b.name, "zh"));
      build(child, depth + 1, f);
      return child;
    });
    node.children.sort((a, b) =>
      b.counts.failing - a.counts.failing || b.counts.warning - a.counts.warning ||
      b.counts.unknown - a.counts.unknown || a.name.localeCompare(b.name, "zh"));
  };
  build(root, 0, {});
  return root;
}

function allKeys(node, out = []) {
  for (const c of node.children) { out.push(c.key); allKeys(c, out); }
  return out;
}

function stackBar(counts, total) {
  return h("div", { class: "stack", "aria-hidden": "true" },
    STATUSES.filter((s) => counts[s]).map((s) =>
      h("span", { class: "seg status-" + s, style: { width: (100 * counts[s]) / total + "%" } })));
}
