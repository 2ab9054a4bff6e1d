// #/buildings — every building the user may see (GET /api/buildings),
// filtered by region, status and contractor, searched by name, address or
// id, sorted by any column and paged here in the browser.

import { h, mount, select } from "../lib/dom.js";
import { t, lang, fmtTime } from "../lib/i18n.js";
import { api, onBuilding } from "../lib/api.js";
import { STATUSES, statusRank, statusBadge, loading, pager, sortTh, notice } from "../lib/ui.js";

const PAGE = 25;

/** The contractor's name however the list carries it (`contractor` or `parties.contractor`). */
export function contractorOf(b) {
  const c = b.contractor ?? b.parties?.contractor;
  if (typeof c === "string") return c;
  return c && typeof c.name === "string" ? c.name : "";
}

const distinct = (list, f) => [...new Set(list.map(f).filter(Boolean))].sort((a, b) => a.localeCompare(b, "zh"));

export async function render(ctx) {
  ctx.setTitle(t("nav.buildings"));
  const q = { district: "", town: "", community: "", status: "", contractor: "", q: "", sort: "status", page: "1", ...ctx.query };
  const filters = h("div", { class: "filters", id: "building-filters" });
  const table = h("div", { id: "building-table" }, loading());
  mount(ctx.root, h("div", { class: "page-head" }, h("h1", null, t("buildings.title"))), filters, table);

  let buildings = await api("/api/buildings?lang=" + lang(), { signal: ctx.signal });
  const hasCommunity = buildings.some((b) => b.community);
  const hasContractor = buildings.some((b) => contractorOf(b));
  const hasAddress = buildings.some((b) => b.address);

  function save() { ctx.setQuery(q); }

  function paintFilters() {
    const inDistrict = buildings.filter((b) => !q.district || b.district === q.district);
    const inTown = inDistrict.filter((b) => !q.town || b.town === q.town);
    const change = (key, resets = []) => (ev) => {
      q[key] = ev.target.value;
      for (const r of resets) q[r] = "";
      q.page = "1";
      save();
      paintFilters();
      paintTable();
    };
    const search = h("input", { type: "search", id: "building-search", placeholder: t("buildings.search"), value: q.q,
      oninput: (ev) => { q.q = ev.target.value; q.page = "1"; save(); paintTable(); } });
    mount(filters,
      select({ id: "f-district", onchange: change("district", ["town", "community"]), "aria-label": t("col.district") },
        [["", t("buildings.anyDistrict")], ...distinct(buildings, (b) => b.district).map((d) => [d, d])], q.district),
      select({ id: "f-town", onchange: change("town", ["community"]), "aria-label": t("col.town") },
        [["", t("buildings.anyTown")], ...distinct(inDistrict, (b) => b.town).map((d) => [d, d])], q.town),
      hasCommunity
        ? select({ id: "f-community", onchange: change("community"), "aria-label": t("col.community") },
          [["", t("buildings.anyCommunity")], ...distinct(inTown, (b) => b.community).map((d) => [d, d])], q.community)
        : null,
      select({ id: "f-status", onchange: change("status"), "aria-label": t("col.status") },
        [["", t("buildings.anyStatus")], ...STATUSES.map((s) => [s, t("status." + s)])], q.status),
      hasContractor
        ? select({ id: "f-contractor", onchange: change("contractor"), "aria-label": t("col.contractor") },
          [["", t("buildings.anyContractor")], ...distinct(buildings, contractorOf).map((d) => [d, d])], q.contractor)
        : null,
      search);
  }

  const sorters = {
    status: (a, b) => statusRank(a.status) - statusRank(b.status),
    name: (a, b) => a.name.localeCompare(b.name, "zh"),
    id: (a, b) => a.id.localeCompare(b.id),
    district: (a, b) => (a.district || "").localeCompare(b.district || "", "zh"),
    town: (a, b) => (a.town || "").localeCompare(b.town || "", "zh"),
    community: (a, b) => (a.community || "").localeCompare(b.community || "", "zh"),
    contractor: (a, b) => contractorOf(a).localeCompare(contractorOf(b), "zh"),
    updated: (a, b) => String(a.updated_at || "").localeCompare(String(b.updated_at || "")),
  };

  function matching() {
    const needle = q.q.trim().toLowerCase();
    const list = buildings.filter((b) =>
      (!q.district || b.district === q.district) && (!q.town || b.town === q.town) &&
      (!q.community || b.community === q.community) && (!q.status || b.status === q.status) &&
      (!q.contractor || contractorOf(b) === q.contractor) &&
      (!needle || [b.name, b.id, b.address, b.community].some((f) => f && String(f).toLowerCase().includes(needle))));
    const key = q.sort.replace(/^-/, "");
    const by = sorters[key] || sorters.status;
    const sign = q.sort.startsWith("-") ? -1 : 1;
    return list.sort((a, b) => sign * by(a, b) || a.id.localeCompare(b.id));
  }

  function paintTable() {
    const list = matching();
    const pages = Math.max(1, Math.ceil(list.length / PAGE));
    const page = Math.min(Math.max(1, parseInt(q.page, 10) || 1), pages);
    const offset = (page - 1) * PAGE;
    const onSort = (s) => { q.sort = s; q.page = "1"; save(); paintTable(); };
    const th = (label, key) => sortTh(label, key, q.sort, onSort);
    const rows = list.slice(offset, offset + PAGE).map((b) =>
      h("tr", { "data-id": b.id },
        h("td", null, statusBadge(b.status)),
        h("td", null, h("a", { href: "#/buildings/" + encodeURIComponent(b.id), class: "bname" }, b.name),
          h("div", { class: "sub" }, b.id), hasAddress && b.address ? h("div", { class: "sub" }, b.address) : null),
        h("td", { class: "nowrap" }, b.district),
        h("td", { class: "nowrap" }, b.town),
        hasCommunity ? h("td", { class: "nowrap" }, b.community || "—") : null,
        hasContractor ? h("td", { class: "contractor" }, contractorOf(b) || "—") : null,
        h("td", { class: "reasons" }, (b.reasons || []).slice(0, 2).map((r) => h("div", null, r.message)),
          (b.reasons || []).length > 2 ? h("div", { class: "muted" }, t("buildings.more", { n: b.reasons.length - 2 })) : null),
        h("td", { class: "nowrap muted" }, fmtTime(b.updated_at))));
    mount(table,
      h("div", { class: "table-wrap" },
        h("table", { class: "table buildings" },
          h("thead", null, h("tr", null, th(t("col.status"), "status"), th(t("col.building"), "name"),
            th(t("col.district"), "district"), th(t("col.town"), "town"),
            hasCommunity ? th(t("col.community"), "community") : null,
            hasContractor ? th(t("col.contractor"), "contractor") : null,
            h("th", null, t("col.reasons")), th(t("col.updated"), "updated"))),
          h("tbody", null, rows))),
      list.length ? null : notice(t("buildings.empty")),
      pager({ total: list.length, offset, limit: PAGE, onPage: (o) => { q.page = String(o / PAGE + 1); save(); paintTable(); } }));
  }

  ctx.onCleanup(onBuilding(async (ev) => {
    if (ev.resync) {
      try { buildings = await api("/api/buildings?lang=" + lang(), { signal: ctx.signal }); } catch { return; }
      return paintTable();
    }
    const b = buildings.find((x) => x.id === ev.id);
    if (!b) return;
    b.status = ev.status;
    if (ev.updated_at) b.updated_at = ev.updated_at;
    paintTable();
  }));

  paintFilters();
  paintTable();
}
